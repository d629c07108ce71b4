"""The report's exit code: what a CI gate fails on (`--fail-on`).

- breaks (the default): a route that works at home breaks in a target and no expectation covers
  it; an environment that did not build; a regression against the baseline. Routes that never
  work, even at home, and hazard probes never fail a run: they are properties of the model.
- unexpected: every failing or never-run cell no expectation covers (the strictest).
- regressions: only cells that got worse than in the baseline.
An unfinished run fails under every mode: nothing unchecked passes as "as expected".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from harness.report.causes import cell_id
from harness.report.statuses import FAILING

FAIL_ON = ("breaks", "unexpected", "regressions")
DEFAULT_FAIL_ON = FAIL_ON[0]


def _unexpected_cells(cells: Sequence[dict[str, Any]], fail_on: str) -> list[str]:
    if fail_on == "regressions":
        return []
    if fail_on == "breaks":  # one line per path and cause: the cells are in the report
        breaking: Counter[tuple[str, str, str]] = Counter(
            (c["source"], c["target"], str(c.get("cause"))) for c in cells
            if c.get("route_status") == "breaks" and not c.get("expected"))
        found = [f"{s} -> {t}: {n} route(s) break ({cause})" for (s, t, cause), n in sorted(breaking.items())]
    else:
        found = [f"{cell_id(c)} {c['status']}" for c in cells if c["status"] in FAILING and c["expected"] is False]
    # Cells that were never checked, other than those of a failed build (named on their own), are
    # listed once per reason, whatever the mode: nothing unchecked passes as "as expected".
    found += sorted({str(c["reason"]) for c in cells if c.get("route_status") == "skipped" and c["expected"] is False})
    return found


def verdict(cells: Sequence[dict[str, Any]], environments: Sequence[dict[str, Any]], *, fail_on: str,
            run_status: str | None, unused: list[dict[str, Any]], regressed: list[dict[str, Any]]) -> dict[str, Any]:
    """report.json's verdict: the exit code and every reason for it."""
    unexpected = _unexpected_cells(cells, fail_on)
    if fail_on != "regressions":
        unexpected += [f"{e['id']}: {e['status']}" for e in environments if e["status"] != "ok"]
    if run_status in ("running", "interrupted"):
        unexpected.append(f"the run is {run_status}, not complete: continue it with run --resume")
    return {"exit_code": 1 if unexpected or regressed else 0, "fail_on": fail_on, "unexpected": unexpected,
            "regressions": regressed, "unused_expectations": unused}
