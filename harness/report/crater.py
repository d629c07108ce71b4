"""Real files, crater-style: each file on each path sorted into regressed, fixed, spurious, still broken or unchanged.

Rust's crater builds every public crate with two toolchains and sorts each one. Here a corpus file
is checked from its home into every environment: each of its routes (format, loader) on a path
home -> target is a pair of cells, the home's and the target's, sorted by diff.category() exactly as
two runs are; the file takes the gravest of its routes' categories. Across two runs the same sort
is made per file over the cells both reports hold (diff.files()). Failures are grouped by cause and by
message, and a file that breaks for one cause is counted under it once, however many of its routes
and targets show it; a failure whose message no hint rule names is listed under "no cause yet".
Pure functions over report cells.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from harness.advisor import ranking
from harness.report.causes import normalised
from harness.report.diff import GRAVITY, category, gravest
from harness.report.schema import Cell
from harness.report.statuses import FAILING, WORKING


def _route_category(home: Cell | None, cell: Cell, tolerance: Mapping[str, float]) -> str:
    """A route on a path, as two runs would sort the cell: the home's cell is the old toolchain's."""
    if home is None:  # the route does not exist at home (TFSMLayer in Keras 2): it works or not in the target alone
        return "fixed" if cell["status"] == "pass" else "broken" if cell["status"] in FAILING else "unchanged"
    return category(home, cell, dict(tolerance))


def corpus_section(plan: Any, cells: Sequence[Cell], tolerance: Mapping[str, float],
                   targets: Sequence[str]) -> dict[str, Any]:
    """report.json's `corpus`: every file (run or left out), its category per target, causes, messages."""
    index: dict[tuple[str, ...], Cell] = {_key(c): c for c in cells}
    mine: dict[str, list[Cell]] = defaultdict(list)
    for c in cells:
        mine[c["model"]].append(c)
    files, failures = [], []
    for entry in plan.files:
        row: dict[str, Any] = {"name": entry.name, "package": entry.package, "version": entry.version,
                               "licence": entry.licence, "format": entry.format, "kind": entry.kind,
                               "saved_by": entry.saved_by, "member": entry.member, "home": entry.home,
                               "left_out": entry.left_out, "paths": {}}
        if entry.home is not None:
            for target in targets:
                path, failed = _file_path(entry.home, target, mine[entry.name], index, tolerance)
                if path is not None:
                    row["paths"][target] = path
                    failures += failed
        files.append(row)
    counts = {t: {c: sum(1 for f in files if (f["paths"].get(t) or {}).get("category") == c) for c in GRAVITY}
              for t in targets}
    return {"name": plan.name, "path": plan.path, "sha256": plan.sha256, "files": files, "targets": list(targets),
            "run": sum(1 for f in files if f["home"] is not None), "left_out": sum(1 for f in files if f["left_out"]),
            "packages": len({f["package"] for f in files}), "counts": counts,
            "causes": _causes(failures), "messages": _messages(failures), "no_cause": _no_cause(failures)}


def _file_path(home: str, target: str, cells: Sequence[Cell], index: Mapping[tuple[str, ...], Cell],
               tolerance: Mapping[str, float]) -> tuple[dict[str, Any] | None, list[Cell]]:
    """One file on home -> target: its category, whether a route still works, the best one, and its failures."""
    there = [c for c in cells if c["target"] == target and c["status"] not in ("skipped", "unsupported")]
    if not there:
        return None, []
    categories = {}
    for c in there:
        at_home = index.get((c["source"], home, c["model"], c["format"], c["loader"]))
        categories[(c["format"], c["loader"])] = _route_category(
            at_home if at_home is not None and at_home["status"] != "unsupported" else None, c, tolerance)
    working = [c for c in there if c.get("route_status") in WORKING]
    best = min(working, key=ranking.cell_key) if working else None
    failed = [c for c in there if c["status"] in FAILING]
    return {"category": gravest(categories.values()), "works": bool(working),
            "route": None if best is None else f"{best['format']}/{best['loader']}",
            "routes": {f"{fmt}/{loader}": cat for (fmt, loader), cat in sorted(categories.items())},
            "causes": sorted({str(c.get("cause")) for c in failed if c.get("cause")})}, failed


def has_fix(cell: Mapping[str, Any]) -> bool:
    """Whether a failing cell's cause is a known one with a fix (a hint rule, or a drift's hazard)."""
    return bool((cell.get("error") or {}).get("hint") or cell.get("hint"))


def _causes(failures: Sequence[Cell]) -> list[dict[str, Any]]:
    """Per cause with a fix: the files it breaks, each counted once, the targets, the fix and one message."""
    groups: dict[str, list[Cell]] = defaultdict(list)
    for c in failures:
        if has_fix(c) and c.get("cause"):
            groups[str(c["cause"])].append(c)
    out = []
    for name, members in groups.items():
        example = members[0]
        out.append({"name": name, "files": sorted({c["model"] for c in members}), "cells": len(members),
                    "targets": sorted({c["target"] for c in members}),
                    "fix": (example.get("error") or {}).get("hint") or example.get("hint"),
                    "message": _message(example)})
    return sorted(out, key=lambda c: (-len(c["files"]), c["name"]))


def _messages(failures: Sequence[Cell]) -> list[dict[str, Any]]:
    """Failures grouped by their message (numbers, names and paths blanked): the files each one reaches."""
    groups: dict[str, list[Cell]] = defaultdict(list)
    for c in failures:
        groups[_normalised(c)].append(c)
    return sorted(({"message": text, "files": sorted({c["model"] for c in members}), "cells": len(members),
                    "cause": str(members[0].get("cause")) if has_fix(members[0]) else None}
                   for text, members in groups.items()), key=lambda m: (-len(m["files"]), m["message"]))


def _no_cause(failures: Sequence[Cell]) -> list[dict[str, Any]]:
    """Failures no rule explains yet, one per file and message: what to write a rule for."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for c in failures:
        if has_fix(c):
            continue
        key = (c["model"], _normalised(c))
        entry = seen.setdefault(key, {"file": c["model"], "message": _message(c), "targets": [], "routes": []})
        entry["targets"] = sorted({*entry["targets"], c["target"]})
        entry["routes"] = sorted({*entry["routes"], f"{c['format']}/{c['loader']}"})
    return sorted(seen.values(), key=lambda e: (e["file"], e["message"]))


def _normalised(cell: Mapping[str, Any]) -> str:
    error = cell.get("error") or {}
    if error:
        return normalised(str(error.get("type")), str(error.get("message")))
    return str(cell.get("reason") or cell["status"])


def _message(cell: Mapping[str, Any]) -> str:
    error = cell.get("error") or {}
    return f"{error.get('type')}: {error.get('message')}" if error else str(cell.get("reason") or cell["status"])


# ---------------------------------------------------------------------------- a table people read

LETTERS = {"regressed": "R", "fixed": "F", "spurious": "S", "broken": "B", "unchanged": "ok"}


def render_crater_markdown(section: Mapping[str, Any], escape: Callable[[object], str] = str,
                           labels: Mapping[str, str] | None = None) -> str:
    """The corpus as Markdown: files x environments, the causes with their fixes, then what has no cause yet.

    `escape` shows a run's text (messages, fixes) as written; `labels` name the environments.
    """
    labels = labels or {}

    def cell(text: Any, limit: int = 160) -> str:
        words = " ".join(str(text or "").split())
        return escape(words if len(words) <= limit else words[: limit - 1] + "…")

    targets = section["targets"]
    head = ["file", "package", "format", "saved by", *[labels.get(t, t) for t in targets]]
    lines = [f"**{section['run']} files from {section['packages']} packages** ({section['left_out']} left out). "
             "Each cell: the file from its home into that environment: `ok` unchanged, `R` regressed (a route that "
             "works at home breaks), `F` fixed (works there, not at home), `B` broken in both, `S` spurious (within "
             "noise), `home` its home; `+` another route still works; numbers are the causes below.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    numbers = {c["name"]: i + 1 for i, c in enumerate(section["causes"])}
    for f in section["files"]:
        row = [f"`{f['name']}`", f"{f['package']} {f['version']}", f["format"], f["saved_by"]]
        for t in targets:
            row.append(_square(f, t, numbers))
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "| # | cause | files | fix |", "|---|---|---|---|"]
    for c in section["causes"]:
        lines.append(f"| {numbers[c['name']]} | `{c['name']}` | {len(c['files'])} | {cell(c['fix'])} |")
    if section["no_cause"]:
        lines += ["", f"No cause yet ({len(section['no_cause'])}):", ""]
        lines += [f"- `{e['file']}` ({', '.join(e['routes'])}): {cell(e['message'], 200)}"
                  for e in section["no_cause"]]
    left = [f for f in section["files"] if f["left_out"]]
    if left:
        lines += ["", "Left out:", ""] + [f"- `{f['name']}` ({f['package']} {f['version']}): {cell(f['left_out'], 400)}"
                                          for f in left]
    return "\n".join(lines) + "\n"


def _square(file: Mapping[str, Any], target: str, numbers: Mapping[str, int]) -> str:
    if file["left_out"]:
        return "–"
    path = file["paths"].get(target)
    if path is None:
        return ""
    if target == file["home"]:
        return "home" + ("" if path["works"] else " (fails)")
    text = LETTERS[path["category"]]
    if path["category"] in ("regressed", "broken") and path["works"]:
        text += "+"
    marks = [str(numbers[c]) for c in path["causes"] if c in numbers]
    return text + (" " + ",".join(marks) if marks else "")


def _key(cell: Mapping[str, Any]) -> tuple[str, ...]:
    return (cell["source"], cell["target"], cell["model"], cell["format"], cell["loader"])
