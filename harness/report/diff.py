"""What changed between two reports, sorted as crater sorts crates: regressed, fixed, spurious, still broken.

A regression is a cell present in both reports that got worse: it passed and now does not; it drifted and
its max abs diff grew beyond the tolerance; or it fails with a new error type. What changes by itself is
spurious, never a regression: a hazard probe's cells (their failures are their point, and some, such as a
TF1 re-initialisation, change from run to run), and a cell whose change is within its measured noise (the
spread of its predictions over repeated loads in one run: `noise`). A cell the newer report expects (its
matrix's `expect:`) is never a regression, and neither is a cell the older report lacks.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from harness.report.schema import KEY_FIELDS, cell_id
from harness.report.statuses import FAILING, RAISED

FIGURES = ("max_abs_diff", "max_rel_diff", "max_ulp", "bit_exact", "argmax_agreement")
Cell = dict[str, Any]


CATEGORIES = ("regressed", "fixed", "spurious", "broken", "unchanged")  # what happened to a cell between two runs
# The gravest first: a model (a corpus file) on a path takes the first of these one of its cells has.
GRAVITY = CATEGORIES


def _noise(*cells: Cell) -> float:
    """The largest spread of predictions measured for a cell over repeated loads, in either run (0: none seen)."""
    return max((float(c["noise"]) for c in cells if isinstance(c.get("noise"), (int, float))), default=0.0)


def _grown(old: float | None, new: float | None, tolerance: dict[str, float], noise: float = 0.0) -> bool:
    if old is None:
        return False
    if new is None:  # NaN or infinity now, a number before
        return True
    return new - old > tolerance["atol"] + tolerance["rtol"] * abs(old) + noise


def _within_noise(cell: Cell, tolerance: dict[str, float], noise: float) -> bool:
    """Whether a drift is no further from its reference than the tolerance plus the noise measured for it."""
    diff = cell.get("max_abs_diff")
    return noise > 0 and isinstance(diff, (int, float)) and diff <= tolerance["atol"] + noise


def _hazard(*cells: Cell) -> bool:
    return any(c.get("route_status") == "hazard" for c in cells)


def _failure_type(cell: Cell) -> str:
    return str((cell.get("error") or {}).get("type") or cell["status"])


def _regression(old: Cell, new: Cell, tolerance: dict[str, float]) -> tuple[str, Any, Any] | None:
    """(kind, old, new) when the cell got worse, else None (see category() for what is spurious instead)."""
    if old["status"] == "pass":
        return None if new["status"] == "pass" else ("stopped_passing", "pass", new["status"])
    if old["status"] == new["status"] == "drift" and _grown(old.get("max_abs_diff"), new.get("max_abs_diff"),
                                                            tolerance):
        return "drift_grown", old.get("max_abs_diff"), new.get("max_abs_diff")
    if old["status"] in FAILING and new["status"] in RAISED and _failure_type(old) != _failure_type(new):
        return "new_error_type", _failure_type(old), _failure_type(new)
    return None


def _worse(old: Cell, new: Cell, tolerance: dict[str, float], noise: float) -> str:
    """A cell that got worse: regressed, or spurious when the change is within its noise."""
    change = _regression(old, new, tolerance)
    assert change is not None
    if change[0] == "drift_grown":
        grown = _grown(old.get("max_abs_diff"), new.get("max_abs_diff"), tolerance, noise)
        return "regressed" if grown else "spurious"
    if change[0] == "stopped_passing" and new["status"] == "drift" and _within_noise(new, tolerance, noise):
        return "spurious"
    return "regressed"


def category(old: Cell, new: Cell, tolerance: dict[str, float]) -> str:
    """One of CATEGORIES for a cell in both reports (an expected cell never regresses: it is still broken)."""
    same = old["status"] == new["status"] and old.get("max_abs_diff") == new.get("max_abs_diff")
    if _hazard(old, new):
        return "unchanged" if same else "spurious"
    noise = _noise(old, new)
    if _regression(old, new, tolerance) is not None and new.get("expected") is not True:
        return _worse(old, new, tolerance, noise)
    if old["status"] in FAILING and new["status"] == "pass":
        return "spurious" if old["status"] == "drift" and _within_noise(old, tolerance, noise) else "fixed"
    return "broken" if new["status"] in FAILING or not (same or new["status"] == "pass") else "unchanged"


def _pairs(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[Cell, Cell]]:
    """(old cell, new cell) for every cell both reports hold, in `new`'s order."""
    before = {cell_id(c): c for c in old["cells"]}
    return [(before[cell_id(c)], c) for c in new["cells"] if cell_id(c) in before]


def regressions(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """The cells of `new` that got worse than in `old` beyond their noise, in `new`'s order."""
    found = []
    for prior, cell in _pairs(old, new):
        if category(prior, cell, new["tolerance"]) == "regressed":
            change = _regression(prior, cell, new["tolerance"])
            assert change is not None
            found.append({**{k: cell[k] for k in KEY_FIELDS}, "kind": change[0], "old": change[1], "new": change[2]})
    return found


def spurious(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """The cells whose figures or status changed by themselves: hazard probes, and changes within measured noise."""
    return [{**{k: cell[k] for k in KEY_FIELDS}, "old": prior["status"], "new": cell["status"],
             "old_diff": prior.get("max_abs_diff"), "new_diff": cell.get("max_abs_diff")}
            for prior, cell in _pairs(old, new) if category(prior, cell, new["tolerance"]) == "spurious"]


def categories(old: dict[str, Any], new: dict[str, Any]) -> dict[str, int]:
    """How many cells both reports hold fall in each of CATEGORIES."""
    counts = dict.fromkeys(CATEGORIES, 0)
    for prior, cell in _pairs(old, new):
        counts[category(prior, cell, new["tolerance"])] += 1
    return counts


def gravest(categories: Iterable[str]) -> str:
    """The category a model on a path takes from its routes' (crater sorts a crate by its worst outcome)."""
    found = set(categories)
    return next((c for c in GRAVITY if c in found), "unchanged")


def files(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Each model (a corpus file) on each path that both reports hold, sorted as the gravest of its cells is."""
    per: dict[tuple[str, str, str], list[str]] = {}
    for prior, cell in _pairs(old, new):
        key = (cell["model"], cell["source"], cell["target"])
        per.setdefault(key, []).append(category(prior, cell, new["tolerance"]))
    sorted_files = {key: gravest(found) for key, found in per.items()}
    counts = {c: sum(1 for v in sorted_files.values() if v == c) for c in GRAVITY}
    changed = [{"model": m, "source": s, "target": t, "category": v} for (m, s, t), v in sorted(sorted_files.items())
               if v in ("regressed", "fixed", "spurious")]
    return {"counts": counts, "changed": changed}


def _figures(old: Cell, new: Cell) -> dict[str, list[Any]]:
    """Figures that differ between two compared cells (both pass or drift), as name -> [old, new]."""
    if not {old["status"], new["status"]} <= {"pass", "drift"}:
        return {}

    def figures(cell: Cell) -> dict[str, Any]:
        return {**{n: cell.get(n) for n in FIGURES}, "evaluate": (cell.get("evaluate") or {}).get("max_abs_diff")}

    a, b = figures(old), figures(new)
    return {n: [a[n], b[n]] for n in a if a[n] != b[n]}


def diff_reports(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """New failures, fixed cells, changed figures and regressions of `new` against `old`."""
    before = {cell_id(c): c for c in old["cells"]}
    after = {cell_id(c) for c in new["cells"]}
    result: dict[str, Any] = {"new_failures": [], "fixed": [], "figures": [], "regressions": regressions(old, new),
                              "spurious": spurious(old, new), "categories": categories(old, new),
                              "files": files(old, new),
                              "only_old": sum(1 for key in before if key not in after),
                              "only_new": sum(1 for key in after if key not in before)}
    for cell in new["cells"]:
        prior = before.get(cell_id(cell))
        entry = {**{k: cell[k] for k in KEY_FIELDS}, "old": prior and prior["status"], "new": cell["status"],
                 "error": (cell.get("error") or {}).get("type"), "expected": cell.get("expected")}
        kind = None if prior is None else category(prior, cell, new["tolerance"])
        if cell["status"] in FAILING and kind != "spurious" and (prior is None or prior["status"] not in FAILING):
            result["new_failures"].append(entry)
        elif kind == "fixed":
            result["fixed"].append(entry)
        if prior is not None and (changes := _figures(prior, cell)):
            result["figures"].append({**{k: cell[k] for k in KEY_FIELDS}, "changes": changes})
    return result


def _fmt(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _where(entry: dict[str, Any]) -> str:
    return f"{entry['source']} -> {entry['target']} {entry['model']}/{entry['format']}/{entry['loader']}"


def _status_line(e: dict[str, Any]) -> str:
    return (f"  {_where(e)}: {e['old'] or 'absent'} -> {e['new']}" + (f" ({e['error']})" if e["error"] else "")
            + (" (expected)" if e["expected"] else ""))


def render_diff(diff: dict[str, Any]) -> str:
    """The diff as plain text, one line per cell, and a last line saying whether anything got worse."""
    lines = [f"new failures ({len(diff['new_failures'])}):", *map(_status_line, diff["new_failures"]),
             f"fixed ({len(diff['fixed'])}):", *map(_status_line, diff["fixed"]),
             f"changed figures ({len(diff['figures'])}):"]
    lines += [f"  {_where(f)}: " + ", ".join(f"{name} {_fmt(a)} -> {_fmt(b)}" for name, (a, b) in f["changes"].items())
              for f in diff["figures"]]
    lines.append(f"regressions ({len(diff['regressions'])}):")
    lines += [f"  {_where(r)}: {r['kind'].replace('_', ' ')}: {_fmt(r['old'])} -> {_fmt(r['new'])}"
              for r in diff["regressions"]]
    lines.append(f"spurious ({len(diff['spurious'])}: hazard probes, or within the noise measured for the cell):")
    lines += [f"  {_where(s)}: {s['old']} -> {s['new']}" + (f" ({_fmt(s['old_diff'])} -> {_fmt(s['new_diff'])})"
                                                           if s["old_diff"] != s["new_diff"] else "")
              for s in diff["spurious"]]
    counts = ", ".join(f"{n} {name}" for name, n in diff["categories"].items())
    lines.append(f"cells in both: {counts}")
    per_file = diff.get("files")
    if per_file:
        lines.append("models (files) x paths in both: "
                     + ", ".join(f"{n} {name}" for name, n in per_file["counts"].items()))
        lines += [f"  {f['source']} -> {f['target']} {f['model']}: {f['category']}" for f in per_file["changed"]
                  if f["category"] != "spurious"]
    worse = f"{len(diff['regressions'])} cell(s) got worse" if diff["regressions"] else "nothing got worse"
    lines.append(f"{worse}; {diff['only_old']} cell(s) only in the old report, {diff['only_new']} only in the new")
    return "\n".join(lines) + "\n"
