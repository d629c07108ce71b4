"""What is new since the baseline: the releases that appeared (keras 3.15.1 → 3.16.0) and what each changed.

An environment whose versions the package index decides (`keras: latest`) has a new id when a release moves
it, so the baseline's environments are matched by the id as written (`slot`: py3.13-tflatest-keraslatest),
and the baseline's cells renamed to this report's ids before any comparison: a cell that passed with Keras
3.15.1 and fails with 3.16.0 is then a regression like any other (report/diff.py). For each environment
whose packages moved, the routes (model, format, loader on a path) of its row and its column are sorted as
crater sorts them: newly broken (regressed), fixed, spurious.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from harness.report.diff import CATEGORIES, category
from harness.report.schema import KEY_FIELDS, cell_id

Report = Mapping[str, Any]
PACKAGES = ("tensorflow", "keras")  # the versions compared (report environments' fields)
LISTED = ("regressed", "fixed", "spurious")  # the categories whose routes a change lists


def slot(env: Mapping[str, Any]) -> str:
    """An environment's id as its matrix wrote it (its id, in a report from before slots were kept)."""
    return str(env.get("slot") or (env.get("spec") or {}).get("slot") or env["id"])


def renames(baseline: Report, environments: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Baseline id -> this report's id, for each environment both hold under one slot and another id."""
    now = {slot(e): str(e["id"]) for e in environments}
    return {str(e["id"]): now[slot(e)] for e in baseline.get("environments") or ()
            if slot(e) in now and now[slot(e)] != e["id"]}


def aligned(baseline: dict[str, Any], environments: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The baseline with its environments' ids (in its cells too) replaced by this report's, matched by slot."""
    moved = renames(baseline, environments)
    if not moved:
        return baseline
    cells = [{**c, "source": moved.get(c["source"], c["source"]), "target": moved.get(c["target"], c["target"])}
             for c in baseline["cells"]]
    envs = [{**e, "id": moved.get(str(e["id"]), e["id"])} for e in baseline.get("environments") or ()]
    return {**baseline, "cells": cells, "environments": envs}


def _version(env: Mapping[str, Any], package: str) -> str | None:
    value = env.get(package)
    return None if value is None else str(value).removeprefix("==")


def _name(env: Mapping[str, Any], package: str) -> str:
    """How a package is named in words: tf-keras for a legacy environment's Keras."""
    if package == "keras" and str(env.get("keras_package") or "").replace("_", "-") == "tf-keras":
        return "tf-keras"
    return package


def _moves(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[dict[str, str]]:
    return [{"package": _name(new, p), "old": str(_version(old, p)), "new": str(_version(new, p))}
            for p in PACKAGES if _version(old, p) != _version(new, p)]


def _route(cell: Mapping[str, Any]) -> dict[str, Any]:
    return {**{k: cell[k] for k in KEY_FIELDS}, "status": cell["status"]}


def _change(env: Mapping[str, Any], was: Mapping[str, Any], pairs: list[tuple[dict[str, Any], dict[str, Any]]],
            tolerance: dict[str, float]) -> dict[str, Any]:
    """One environment whose packages moved: the releases, and what its row and column did."""
    moves = _moves(was, env)
    counts: Counter[str] = Counter()
    listed: dict[str, list[dict[str, Any]]] = {name: [] for name in LISTED}
    for old, new in pairs:
        if env["id"] not in (new["source"], new["target"]):
            continue
        kind = category(old, new, tolerance)
        counts[kind] += 1
        if kind in listed:
            listed[kind].append({**_route(new), "old": old["status"]})
    return {"env": env["id"], "slot": slot(env), "was": was["id"], "moves": moves,
            "words": "; ".join(f"{m['package']} {m['old']} → {m['new']}" for m in moves),
            "counts": {name: counts.get(name, 0) for name in CATEGORIES}, **listed}


def section(baseline: Report | None, environments: Sequence[Mapping[str, Any]], cells: Sequence[dict[str, Any]],
            tolerance: dict[str, float]) -> dict[str, Any] | None:
    """report.json's `releases`: null without a baseline; else the environments whose releases moved since it
    (each with what its row and column did), and the environments added and gone."""
    if baseline is None:
        return None
    before = {slot(e): e for e in baseline.get("environments") or ()}
    now = {slot(e) for e in environments}
    moved_from = {str(e["id"]): before[slot(e)] for e in environments if slot(e) in before
                  and _moves(before[slot(e)], e)}
    lined_up = aligned(dict(baseline), environments)
    old_cells = {cell_id(c): c for c in lined_up["cells"]}
    pairs = [(old_cells[cell_id(c)], c) for c in cells if cell_id(c) in old_cells]
    return {
        "baseline": {"run_id": baseline.get("run_id"), "created": baseline.get("created")},
        "changes": [_change(e, moved_from[str(e["id"])], pairs, tolerance) for e in environments
                    if str(e["id"]) in moved_from],
        "added": [str(e["id"]) for e in environments if slot(e) not in before],
        "removed": [str(e["id"]) for s, e in before.items() if s not in now],
    }
