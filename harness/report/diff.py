"""What changed between two reports: regressions (for --baseline and `diff`), new failures, fixed cells, figures.

A regression is a cell present in both reports that got worse: it passed and now does not; it drifted and
its max abs diff grew beyond the tolerance; or it fails with a new error type. A cell the newer report
expects (its matrix's `expect:`) is never a regression, and neither is a cell the older report lacks.
"""

from __future__ import annotations

from typing import Any

from harness.report.schema import KEY_FIELDS, cell_id
from harness.report.statuses import FAILING, RAISED

FIGURES = ("max_abs_diff", "max_rel_diff", "max_ulp", "bit_exact", "argmax_agreement")
Cell = dict[str, Any]


def _grown(old: float | None, new: float | None, tolerance: dict[str, float]) -> bool:
    if old is None:
        return False
    if new is None:  # NaN or infinity now, a number before
        return True
    return new - old > tolerance["atol"] + tolerance["rtol"] * abs(old)


def _failure_type(cell: Cell) -> str:
    return str((cell.get("error") or {}).get("type") or cell["status"])


def _regression(old: Cell, new: Cell, tolerance: dict[str, float]) -> tuple[str, Any, Any] | None:
    """(kind, old, new) when the cell got worse, else None."""
    if old["status"] == "pass":
        return None if new["status"] == "pass" else ("stopped_passing", "pass", new["status"])
    if old["status"] == new["status"] == "drift" and _grown(old.get("max_abs_diff"), new.get("max_abs_diff"),
                                                            tolerance):
        return "drift_grown", old.get("max_abs_diff"), new.get("max_abs_diff")
    if old["status"] in FAILING and new["status"] in RAISED and _failure_type(old) != _failure_type(new):
        return "new_error_type", _failure_type(old), _failure_type(new)
    return None


def regressions(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """The cells of `new` that got worse than in `old`, in `new`'s order."""
    before = {cell_id(c): c for c in old["cells"]}
    found = []
    for cell in new["cells"]:
        prior = before.get(cell_id(cell))
        change = None if prior is None or cell.get("expected") is True else _regression(prior, cell, new["tolerance"])
        if change is not None:
            found.append({**{k: cell[k] for k in KEY_FIELDS}, "kind": change[0], "old": change[1], "new": change[2]})
    return found


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
                              "only_old": sum(1 for key in before if key not in after),
                              "only_new": sum(1 for key in after if key not in before)}
    for cell in new["cells"]:
        prior = before.get(cell_id(cell))
        entry = {**{k: cell[k] for k in KEY_FIELDS}, "old": prior and prior["status"], "new": cell["status"],
                 "error": (cell.get("error") or {}).get("type"), "expected": cell.get("expected")}
        if cell["status"] in FAILING and (prior is None or prior["status"] not in FAILING):
            result["new_failures"].append(entry)
        elif prior is not None and prior["status"] in FAILING and cell["status"] == "pass":
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
    worse = f"{len(diff['regressions'])} cell(s) got worse" if diff["regressions"] else "nothing got worse"
    lines.append(f"{worse}; {diff['only_old']} cell(s) only in the old report, {diff['only_new']} only in the new")
    return "\n".join(lines) + "\n"
