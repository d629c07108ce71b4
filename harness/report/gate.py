"""The report's exit code, and exactly what decides it (`--fail-on`, or a check's answer).

- breaks (the default): a route that works at home breaks in a target and no expectation covers
  it; an environment that did not build; a regression against the baseline. Routes that never
  work, even at home, and hazard probes never fail a run: they are properties of the model.
- unexpected: every failing or never-run cell no expectation covers (the strictest).
- regressions: only cells that got worse than in the baseline, beyond their measured noise (what changes
  by itself, hazard probes and changes within a cell's noise, is counted as `spurious` and never fails).
- a check run: the check's answer: the user's route must survive in every target.
An unfinished run fails under every mode: nothing unchecked passes as "as expected".

The gate names the cells that count against the run (`failing`) and the reasons that are not cells
(`reasons`); the exit code is 1 exactly when either is non-empty. JUnit marks exactly those cells as
failures or errors, so a CI view and the exit code never disagree.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from harness.report.causes import cell_label
from harness.report.statuses import FAILING

FAIL_ON = ("breaks", "unexpected", "regressions")
DEFAULT_FAIL_ON = FAIL_ON[0]
CHECK = "check"  # what a check run's gate follows: its answer, not a --fail-on mode



def _never_ran(cells: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Cells that were never checked and no expectation covers (a failed build is named on its own)."""
    return [c for c in cells if c.get("route_status") == "skipped" and c["expected"] is False]


def _counted(cells: Sequence[Mapping[str, Any]], fail_on: str) -> list[Mapping[str, Any]]:
    """The cells `fail_on` counts against the run (regressions aside)."""
    if fail_on == "breaks":
        return [c for c in cells if c.get("route_status") == "breaks" and not c.get("expected")] + _never_ran(cells)
    if fail_on == "unexpected":
        return [c for c in cells if c["status"] in FAILING and c["expected"] is False] + _never_ran(cells)
    return []


def _lines(counted: Sequence[Mapping[str, Any]], fail_on: str) -> list[str]:
    """One line per path and cause (breaks), or per cell (unexpected); never-run cells once per reason."""
    ran = [c for c in counted if c.get("route_status") != "skipped"]
    if fail_on == "breaks":
        breaking = Counter((c["source"], c["target"], str(c.get("cause"))) for c in ran)
        found = [f"{s} -> {t}: {n} route(s) break ({cause})" for (s, t, cause), n in sorted(breaking.items())]
    else:
        found = [f"{cell_label(c)} {c['status']}" for c in ran]
    return found + sorted({str(c["reason"]) for c in counted if c.get("route_status") == "skipped"})


def _check_line(target: Mapping[str, Any]) -> str:
    """'py3.11-tf2.16.2: untested by h5/load_model (custom-objects)'."""
    cause = target.get("home_cause") or {}
    return (f"{target['target']}: {target['verdict']} by {target['route'][0]}/{target['route'][1]}"
            + (f" ({cause['name']})" if cause.get("name") else ""))


def decide(cells: Sequence[Mapping[str, Any]], environments: Sequence[Mapping[str, Any]], *, fail_on: str,
           run_status: str | None,
           unused: list[dict[str, Any]], regressed: list[dict[str, Any]],
           check: Mapping[str, Any] | None = None, spurious: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """report.json's `verdict`: the exit code, the cells that decide it and every reason for it."""
    if check is not None:
        from harness.advisor.answer import failing_cells

        keys = set(failing_cells(check))
        counted = [c for c in cells if (c["source"], c["target"], c["model"], c["format"], c["loader"]) in keys]
        unexpected = [_check_line(t) for t in check["targets"] if t["exit_code"]]
        fail_on = CHECK
    else:
        counted = _counted(cells, fail_on)
        unexpected = _lines(counted, fail_on)
    reasons = [] if fail_on == "regressions" else [f"{e['id']}: {e['status']}" for e in environments
                                                    if e["status"] != "ok"]
    if run_status in ("running", "interrupted"):
        reasons.append(f"the run is {run_status}, not complete: continue it with run --resume")
    if check is not None:  # a target whose answer no cell carries (nothing works at home): a reason of its own
        reasons += [_check_line(t) for t in check["targets"]
                    if t["exit_code"] and not any(c["target"] == t["target"] for c in counted)]
    failing = sorted({cell_label(c) for c in counted} | {cell_label(r) for r in regressed})
    unexpected += [r for r in reasons if r not in unexpected]
    return {"exit_code": 1 if failing or reasons else 0, "fail_on": fail_on, "unexpected": unexpected,
            "regressions": regressed, "unused_expectations": unused, "failing": failing, "reasons": reasons,
            "spurious": [cell_label(c) for c in spurious]}
