"""The compatibility site's files: index.html (a table per format), a page per path, history.html, a shields.io
endpoint per path (badges/<path>.json) and one stylesheet. Everything is static and relative: the folder can be
served from anywhere (GitHub Pages) or opened from disk, and nothing is fetched from elsewhere."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import jinja2

from harness import __version__
from harness.agent.protocol import write_text_atomic
from harness.site.build import site

TEMPLATES = Path(__file__).parent / "templates"


def short_label(label: str) -> str:
    """A column header: '3.15.1', 'tfk 2.21.0', 'tf 2.12.0'."""
    return label.replace("Keras ", "").replace("tf-keras ", "tfk ").replace("tf.keras ", "tf ")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True, trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["short"] = short_label
    return env


def write_site(reports: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    """Build the site of these reports (oldest first) into `out`, replacing what an earlier build left there."""
    data = site(reports)
    templates = _environment()
    for sub in ("paths", "badges"):
        shutil.rmtree(out / sub, ignore_errors=True)
        (out / sub).mkdir(parents=True)
    common = {"site": data, "version": __version__}
    write_text_atomic(out / "style.css", (TEMPLATES / "style.css").read_text(encoding="utf-8"))
    write_text_atomic(out / "index.html", templates.get_template("index.html.j2").render(**common, root=""))
    write_text_atomic(out / "history.html", templates.get_template("history.html.j2").render(**common, root=""))
    page = templates.get_template("path.html.j2")
    for entry in data["pages"]:
        write_text_atomic(out / "paths" / f"{entry['name']}.html", page.render(**common, page=entry, root="../"))
        write_text_atomic(out / "badges" / f"{entry['name']}.json", json.dumps(entry["badge"], sort_keys=True) + "\n")
    return data
