"""report.html: one self-contained page (inline CSS and JS, nothing fetched) rendered from report.json."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2

from harness.report.markdown import outcome
from harness.report.statuses import FAILING, MEANINGS, STATUS_ORDER, all_expected, worst

TEMPLATES = Path(__file__).parent / "templates"
FILTERS = ("model", "format", "loader", "status")
MESSAGE_PREVIEW = 240


def counts_text(statuses: Sequence[str]) -> str:
    """'1 error · 3 pass': counts of a square, worst first (the page's script writes the same)."""
    counts = Counter(statuses)
    return " · ".join(f"{counts[s]} {s}" for s in reversed(STATUS_ORDER) if counts[s])


def _square(pair_id: str, cells: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {"id": pair_id, "worst": worst(c["status"] for c in cells) or "none",
            "counts": counts_text([c["status"] for c in cells]), "expected": all_expected(cells)}


def _pairs(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per (source, target) in grid order, with its cells and its square."""
    index = {e["id"]: i for i, e in enumerate(report["environments"])}
    by_pair: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for cell in report["cells"]:
        by_pair.setdefault((cell["source"], cell["target"]), []).append(cell)
    return [
        {"source": s["id"], "target": t["id"], "cells": by_pair.get((s["id"], t["id"]), []),
         **_square(f"p{index[s['id']]}-{index[t['id']]}", by_pair.get((s["id"], t["id"]), []))}
        for s in report["environments"] for t in report["environments"]
    ]


def _options(report: dict[str, Any]) -> dict[str, list[str]]:
    """The values each filter offers: those present in the cells, in report order (statuses by severity)."""
    options = {key: list(dict.fromkeys(c[key] for c in report["cells"])) for key in FILTERS}
    options["status"] = [s for s in STATUS_ORDER if s in options["status"]]
    return options


def _figure(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["figure"] = _figure
    return env


def render_html(report: dict[str, Any], packages: Mapping[str, str] | None = None) -> str:
    """The whole report.html; `packages` maps an environment id to its pip freeze. Deterministic."""
    pairs = _pairs(report)
    return _environment().get_template("report.html.j2").render(
        report=report,
        verdict=report["verdict"],
        outcome=outcome(report["verdict"]),
        counts=[(s, n) for s, n in report["summary"]["counts"].items() if n],
        expected_count=sum(1 for c in report["cells"] if c["expected"]),
        ids=[e["id"] for e in report["environments"]],
        rows=[[p for p in pairs if p["source"] == e["id"]] for e in report["environments"]],
        pairs=[p for p in pairs if p["cells"]],
        options=_options(report),
        packages=packages or {},
        legend=[(s, MEANINGS[s]) for s in STATUS_ORDER],
        script_data={"order": list(STATUS_ORDER), "failing": sorted(FAILING)},
        preview=MESSAGE_PREVIEW,
    )
