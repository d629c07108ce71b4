"""What the compatibility site shows, decided from report.json files alone: pure, deterministic.

The newest run is the table; older runs of the same matrix are its history. Environments are matched across runs
by the id as written (report/releases.py: a `keras: latest` environment is one environment from night to night),
so page names and badge URLs stay put while the versions move. Nothing here re-ranks a route or re-decides a
verdict: the per-path tables, verdicts, causes and fixes are the report's (report/routes.py, summary.caniuse), the
history's categories are diff.category()'s.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.advisor import words
from harness.agent.protocol import FORMATS
from harness.errors import UsageError
from harness.report import releases, summary
from harness.report.diff import category
from harness.report.schema import KEY_FIELDS, cell_id, load_report

Report = dict[str, Any]
BADGE_COLORS = {"safe": "brightgreen", "partial": "yellow", "broken": "red", "untested": "lightgrey"}
LISTED = ("regressed", "fixed", "spurious", "broken")  # the categories a run's history counts
MAX_CHANGES = 200  # cells a run's history entry lists (the counts cover all of them)


def load_runs(paths: Sequence[Path]) -> list[Report]:
    """The reports of these run directories (or report.json files), oldest first; UsageError for a path that holds
    none, or for runs of more than one matrix (a site shows one matrix)."""
    if not paths:
        raise UsageError("harness site: give at least one run directory")
    reports = [load_report(p, "run") for p in paths]
    names = sorted({str(r["matrix"]["name"]) for r in reports})
    if len(names) > 1:
        raise UsageError(f"harness site: the runs are of {len(names)} matrices ({', '.join(names)}); a site shows one "
                         "matrix's runs")
    return sorted(reports, key=lambda r: (str(r.get("created") or ""), str(r.get("run_id") or "")))


def _number(text: object) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", str(text or ""))[:3])


def keras_label(env: Mapping[str, Any]) -> str:
    """'Keras 3.15.1', 'tf-keras 2.21.0', 'tf.keras 2.12.0' (Keras 2 as TensorFlow bundles it)."""
    keras = env.get("keras") or "?"
    if str(env.get("keras_package") or "").replace("_", "-") == "tf-keras":
        return f"tf-keras {keras}"
    if env.get("keras_major") == 2:
        return f"tf.keras {keras}"
    return f"Keras {keras}"


def detail(env: Mapping[str, Any]) -> str:
    """'TensorFlow 2.21.0 · Python 3.13.5'."""
    return f"TensorFlow {env.get('tensorflow') or '?'} · Python {env.get('python') or '?'}"


def _age(env: Mapping[str, Any]) -> tuple[Any, ...]:
    legacy = str(env.get("keras_package") or "").replace("_", "-") == "tf-keras"
    return (int(env.get("keras_major") or 0), legacy, _number(env.get("keras")), _number(env.get("tensorflow")),
            _number(env.get("python")), str(env["id"]))


def page_name(source: Mapping[str, Any], target: Mapping[str, Any]) -> str:
    """A path's page and badge name, from the ids as written: the same while releases move the ids."""
    return f"{releases.slot(source)}--{releases.slot(target)}"


def _format_cell(path: Mapping[str, Any] | None, fmt: str, names: tuple[str, str], href: str) -> dict[str, Any] | None:
    """One square of a format's table: of the models the format's own loader (load_model for .keras and .h5,
    rebuild + load_weights for weights) loads where they were saved, how many it loads here as they were saved,
    shaded by share; the title says what other routes carry."""
    loader = FORMATS[fmt].loader if fmt in FORMATS else None
    table = (path or {}).get("table") or ()
    entry = next((e for e in table if e["format"] == fmt and e["loader"] == loader), None)
    if path is None or entry is None or not entry["of"]:
        return None
    share = entry["works"] / entry["of"]
    reader, writer = names
    title = (f"{reader} reads {words.format_words(fmt)} from {writer} with {words.loader_words(loader)}: "
             f"{entry['works']} of {entry['of']} model(s)")
    if entry["causes"]:
        title += f" ({', '.join(entry['causes'][:3])})"
    other = next((e for e in path.get("formats") or () if e["format"] == fmt), None)
    if other is not None and other["survive"] > entry["works"]:
        title += f"; {other['survive']} of {other['models']} by some route ({summary.formats_line(path)})"
    return {"text": f"{entry['works']}/{entry['of']}", "href": href, "title": title,
            "shade": "all" if share == 1 else "none" if share == 0 else "some"}


def _tables(report: Report, envs: list[dict[str, Any]], by_pair: Mapping[tuple[str, str], dict[str, Any]],
            hrefs: Mapping[tuple[str, str], str]) -> list[dict[str, Any]]:
    """Per format: rows read (targets), columns wrote (sources); and each row's count of the sources it reads."""
    present = {e["format"] for p in report["paths"] for e in p.get("table") or ()}
    tables = []
    for fmt in [f for f in FORMATS if f in present]:
        rows = []
        for target in envs:
            pairs = [(source, (source["id"], target["id"])) for source in envs]
            cells = [_format_cell(by_pair.get(pair), fmt, (keras_label(target), keras_label(source)),
                                  hrefs.get(pair, "")) for source, pair in pairs]
            tested = [c for c in cells if c is not None]
            rows.append({"env": target, "label": keras_label(target), "detail": detail(target), "cells": cells,
                         "reads": sum(1 for c in tested if c["shade"] == "all"), "of": len(tested)})
        tables.append({"format": fmt, "words": words.format_words(fmt), "rows": rows})
    return tables


def _changes(older: Report, newer: Report, envs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The cells of `newer` whose category against `older` is not unchanged (both aligned to today's ids)."""
    before = {cell_id(c): c for c in releases.aligned(older, envs)["cells"]}
    out = []
    for cell in releases.aligned(newer, envs)["cells"]:
        prior = before.get(cell_id(cell))
        if prior is None:
            continue
        kind = category(prior, cell, newer["tolerance"])
        if kind != "unchanged":
            out.append({**{k: cell[k] for k in KEY_FIELDS}, "category": kind, "old": prior["status"],
                        "new": cell["status"]})
    return out


def _verdicts(report: Report, envs: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], str]:
    moved = releases.renames(report, envs)
    return {(moved.get(p["source"], p["source"]), moved.get(p["target"], p["target"])): p["verdict"]
            for p in report["paths"]}


def _history(reports: Sequence[Report], envs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every run, oldest first: when, its path verdicts, what the releases were, and which cells changed since the
    run before."""
    out = []
    for i, report in enumerate(reports):
        changes = [] if i == 0 else _changes(reports[i - 1], report, envs)
        counts = {c: sum(1 for x in changes if x["category"] == c) for c in LISTED}
        ups = summary.split_paths(report)[0]
        out.append({"run_id": report.get("run_id"), "created": str(report.get("created") or ""),
                    "date": str(report.get("created") or "")[:10], "verdicts": _verdicts(report, envs),
                    "paths": {v: sum(1 for p in ups if p["verdict"] == v) for v in summary.VERDICT_WORDS},
                    "releases": summary.release_lines(report) if report.get("releases") else [],
                    "changes": changes, "counts": counts})
    return out


def _path_page(report: Report, path: dict[str, Any], envs: Mapping[str, dict[str, Any]],
               history: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One path: its verdict and sentence, the report's format x loader table with causes and fixes, and when its
    cells changed across runs."""
    source, target = envs[path["source"]], envs[path["target"]]
    fixes = {c["name"]: c.get("fix") for c in report["causes"]}
    examples = {c["name"]: c.get("message") for c in report["causes"]}
    pair = (path["source"], path["target"])
    timeline = [{"date": h["date"], "run_id": h["run_id"], "verdict": h["verdicts"].get(pair),
                 "changes": [c for c in h["changes"] if (c["source"], c["target"]) == pair]} for h in history]
    return {
        "name": page_name(source, target), "source": source, "target": target,
        "title": f"{keras_label(target)} reads {keras_label(source)}",
        "source_label": keras_label(source), "target_label": keras_label(target),
        "source_detail": detail(source), "target_detail": detail(target),
        "verdict": path["verdict"], "sentence": summary.formats_sentence(path), "broken_of": summary.broken_of(path),
        "table": summary.caniuse(path, fixes),
        "causes": [{"name": c, "fix": fixes.get(c), "message": examples.get(c)} for c in path["causes"]],
        "home_causes": [{"name": c, "fix": fixes.get(c)} for c in path["home_causes"]],
        "timeline": timeline,
        "badge": badge(path, source, target),
    }


def badge(path: Mapping[str, Any], source: Mapping[str, Any], target: Mapping[str, Any]) -> dict[str, Any]:
    """A shields.io endpoint (https://shields.io/badges/endpoint-badge) for one path."""
    verdict = path["verdict"]
    message = verdict if verdict in ("safe", "untested") else f"{verdict}: {summary.broken_of(path)} routes break"
    return {"schemaVersion": 1, "label": f"{keras_label(source)} → {keras_label(target)}", "message": message,
            "color": BADGE_COLORS.get(verdict, "lightgrey")}


def site(reports: Sequence[Report]) -> dict[str, Any]:
    """Everything the site shows: the newest run's table per format, a page per path, the history of every run."""
    current = reports[-1]
    envs = sorted((e for e in current["environments"] if e.get("status") == "ok"), key=_age)
    by_id = {e["id"]: e for e in current["environments"]}
    paths = [p for p in current["paths"] if p["source"] in by_id and p["target"] in by_id]
    by_pair = {(p["source"], p["target"]): p for p in paths}
    hrefs = {pair: f"paths/{page_name(by_id[pair[0]], by_id[pair[1]])}.html" for pair in by_pair}
    history = _history(reports, current["environments"])
    for entry in history:
        entry["shown"] = entry["changes"][:MAX_CHANGES]
    return {
        "matrix": current["matrix"], "created": current.get("created"), "run_id": current.get("run_id"),
        "runs": len(reports), "environments": [{**e, "label": keras_label(e), "detail": detail(e)} for e in envs],
        "tables": _tables(current, envs, by_pair, hrefs),
        "pages": [_path_page(current, p, by_id, history) for p in paths],
        "history": list(reversed(history)),
        "releases": summary.release_lines(current) if current.get("releases") else [],
    }
