"""report.html: one self-contained page (inline CSS and JS, nothing fetched) rendered from report.json.

The first screen answers: a verdict per upgrade path with its top causes and what still works,
then the causes with their fixes. The grid is coloured by path verdict (the diagonal is each
environment's home); every cell follows, failing rows first, each pair folded.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2

from harness.advisor import words
from harness.report import summary
from harness.report.causes import shorten
from harness.report.routes import ROUTE_STATUSES
from harness.report.statuses import FAILING, MEANINGS, STATUS_ORDER

TEMPLATES = Path(__file__).parent / "templates"
# filter -> the cell field it selects on
FILTERS = {"model": "model", "format": "format", "loader": "loader", "status": "status", "route": "route_status",
           "cause": "cause"}
BRIEF = 60  # characters of an expectation's reason a cell shows; the whole one is in the expectations table
ORDER = {"breaks": 0, "never_works": 1, "hazard": 2, "skipped": 3, "unsupported": 4, "portable": 5}


def counts_text(statuses: Sequence[str]) -> str:
    """'1 error · 3 pass': counts of a square, worst first (the page's script writes the same)."""
    counts = Counter(statuses)
    return " · ".join(f"{counts[s]} {s}" for s in reversed(STATUS_ORDER) if counts[s])


def anchor(name: str) -> str:
    """An id for a cause's row."""
    return "cause-" + re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")


def _square(path: Mapping[str, Any] | None, cells: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    if path is None:
        return {"verdict": "none", "label": "–", "detail": ""}
    if path["source"] == path["target"]:
        never = path["routes_never_works"]
        return {"verdict": "home", "label": "home",
                "detail": f"{path['routes_portable']} work" + (f", {never} never" if never else "")}
    detail = f"{summary.broken_of(path)} break" if path["routes_breaks"] else f"{path['routes_portable']} portable"
    return {"verdict": path["verdict"], "label": path["verdict"], "detail": detail}


def _pairs(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per (source, target) in grid order: its cells, failing rows first, and its square."""
    index = {e["id"]: i for i, e in enumerate(report["environments"])}
    paths = {(p["source"], p["target"]): p for p in report["paths"]}
    by_pair: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for cell in report["cells"]:
        by_pair.setdefault((cell["source"], cell["target"]), []).append(cell)
    out = []
    for s in report["environments"]:
        for t in report["environments"]:
            cells = by_pair.get((s["id"], t["id"]), [])
            cells = sorted(cells, key=lambda c: (ORDER.get(c.get("route_status") or "", 9), c["status"] not in FAILING))
            pair_id = f"p{index[s['id']]}-{index[t['id']]}"
            out.append({"source": s["id"], "target": t["id"], "cells": cells, "id": pair_id,
                        "counts": counts_text([c["status"] for c in cells]),
                        **_square(paths.get((s["id"], t["id"])), cells)})
    return out


def _options(report: dict[str, Any]) -> dict[str, list[str]]:
    """The values each filter offers: those present in the cells, in report order (statuses by severity)."""
    options = {key: sorted({str(c.get(field)) for c in report["cells"] if c.get(field) is not None})
               for key, field in FILTERS.items()}
    options["status"] = [s for s in STATUS_ORDER if s in options["status"]]
    options["route"] = [s for s in ROUTE_STATUSES if s in options["route"]]
    for key in ("model", "format", "loader"):
        options[key] = list(dict.fromkeys(c[key] for c in report["cells"]))
    return options


def _figure(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _difference(cell: Mapping[str, Any]) -> str:
    """A compared cell's figures in a few characters: 'bit-exact', '≤ 1.2e-07', 'Δ 0.73 (argmax 16%)'."""
    if cell.get("bit_exact"):
        return "bit-exact"
    diff = cell.get("max_abs_diff")
    if diff is None:
        return "–" if cell["status"] not in ("pass", "drift") else "NaN or shape"
    text = f"Δ {diff:.2g}"
    argmax = cell.get("argmax_agreement")
    return text + (f" (argmax {argmax:.0%})" if isinstance(argmax, float) and argmax < 1 else "")


def _path(report: dict[str, Any], path: dict[str, Any]) -> dict[str, Any]:
    """A path as the page shows it: its sentence, how many routes break, its format x loader table."""
    fixes = {c["name"]: c.get("fix") for c in report["causes"]}
    return {**path, "sentence": summary.formats_sentence(path), "line": summary.formats_line(path),
            "broken": summary.broken_of(path),
            "table": summary.caniuse(path, fixes)}


def _releases(report: dict[str, Any]) -> dict[str, Any] | None:
    """What is new since the baseline, as the page lays it out (report/releases.py decided it)."""
    if not report.get("releases"):
        return None
    changes = [{**c, **{kind: [{"words": summary.release_route(e)} for e in c[kind]]
                        for kind in ("regressed", "fixed", "spurious")}} for c in report["releases"]["changes"]]
    return {"lines": summary.release_lines(report), "changes": changes}


def _check(report: dict[str, Any]) -> dict[str, Any] | None:
    """A check run's answer per target, as the page's first table shows it."""
    from harness.advisor import words
    from harness.advisor.screens import SHORT

    check = report.get("check")
    if not check:
        return None
    targets = []
    for t in check["targets"]:
        use, cause = t.get("use"), t.get("home_cause") or {}
        targets.append({"target": t["target"], "verdict": t["verdict"], "exit_code": t["exit_code"],
                        "short": SHORT[t["verdict"]],
                        "use": (use["words"] + (" (yours)" if t["exit_code"] == 0 else "")) if use else "none",
                        "difference": words.difference(use.get("bit_exact"), use.get("max_abs_diff")) if use else "-",
                        "cause": (f"does not load at home: {cause.get('name')}" + (
                            f"; fix: rerun with {cause['flag']}" if cause.get("flag") else "")
                            + (f" ({cause['fix']})" if cause.get("fix") else "")) if cause else ""})
    return {"model": check["model"], "home": check["home"], "targets": targets}


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["figure"] = _figure
    env.filters["difference"] = _difference
    env.filters["anchor"] = anchor
    env.filters["brief"] = lambda text: shorten(str(text), BRIEF)
    return env


def render_html(report: dict[str, Any], packages: Mapping[str, str] | None = None) -> str:
    """The whole report.html; `packages` maps an environment id to its pip freeze. Deterministic."""
    pairs = _pairs(report)
    ids = [e["id"] for e in report["environments"]]
    targets = [i for i in ids if any(p["target"] == i and p["cells"] for p in pairs)]
    names = summary.labels(report)
    return _environment().get_template("report.html.j2").render(
        report=report,
        verdict=report["verdict"],
        outcome=summary.outcome(report["verdict"]),
        gate=summary.gate_words(report["verdict"]),
        headline=summary.headline(report),
        check=_check(report),
        releases=_releases(report),
        upgrade_paths=[_path(report, p) for p in summary.split_paths(report)[0]],
        tables=[_path(report, p) for p in summary.by_interest(report, summary.split_paths(report)[0])
                if p["verdict"] in ("partial", "broken")],
        downgrade_paths=[_path(report, p) for p in summary.split_paths(report)[1]],
        migrations=words.migration_rows(report),
        bisect=words.bisect_rows(report),
        home=summary.at_home(report, {i: i for i in ids}),
        hazards=[summary.hazard_words(h, names) + (f" — {h['hint']}" if h.get("hint") else "")
                 for h in report.get("hazards", [])],
        counts=[(s, n) for s, n in report["summary"]["counts"].items() if n],
        expected_count=sum(1 for c in report["cells"] if c["expected"]),
        expectations=report.get("expectations") or [],
        # a cell names the first entry with its reason (the one that covered it)
        expect_index={e["reason"]: e["index"] for e in reversed(report.get("expectations") or [])},
        ids=ids,
        targets=targets,
        rows=[[p for p in pairs if p["source"] == i and p["target"] in targets] for i in ids],
        pairs=[p for p in pairs if p["cells"]],
        options=_options(report),
        packages=packages or {},
        tracebacks=report.get("tracebacks", {}),
        legend=[(s, MEANINGS[s]) for s in STATUS_ORDER],
    )
