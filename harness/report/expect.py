"""Which cells the matrix's `expect:` entries cover, decided on the report's own data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any

from harness.matrix import EnvSelector, Expectation
from harness.report.statuses import FAILING


def _value_matches(actual: object, wanted: str) -> bool:
    """Equal, an fnmatch glob, or a version prefix: "3.9" selects Python "3.9.2"."""
    if actual is None:
        return False
    text = str(actual)
    return text == wanted or text.startswith(wanted + ".") or fnmatchcase(text, wanted)


def env_matches(selector: EnvSelector, env: Mapping[str, Any]) -> bool:
    """True when every (field, wanted) pair matches the report's environment entry."""
    return all(_value_matches(env.get(key), wanted) for key, wanted in selector)


def covers(expectation: Expectation, cell: Mapping[str, Any], envs: Mapping[str, Mapping[str, Any]]) -> bool:
    """True when the expectation selects this cell and allows its status."""
    return (
        cell["status"] in (expectation.status or FAILING)
        and env_matches(expectation.source, envs[cell["source"]])
        and env_matches(expectation.target, envs[cell["target"]])
        and all(fnmatchcase(cell[key], pattern) for key, pattern in
                (("model", expectation.model), ("format", expectation.format), ("loader", expectation.loader)))
    )


def _flag(cell: Mapping[str, Any], failed_builds: set[str]) -> bool | None:
    """Not covered: False when the cell counts against the verdict, None when it cannot."""
    if cell["status"] in FAILING:
        return False
    # A cell of an environment that did not build is accounted for by that environment.
    if cell["status"] == "skipped" and not failed_builds & {cell["source"], cell["target"]}:
        return False
    return None


def mark_expected(cells: Sequence[dict[str, Any]], expectations: Sequence[Expectation],
                  environments: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Set each cell's `expected` and `expectation` (the first covering entry's reason); return unused entries."""
    envs = {e["id"]: e for e in environments}
    failed_builds = {e["id"] for e in environments if e["status"] != "ok"}
    used: set[int] = set()
    for cell in cells:
        index = next((i for i, e in enumerate(expectations) if covers(e, cell, envs)), None)
        if index is None:
            cell.update(expected=_flag(cell, failed_builds), expectation=None)
        else:
            used.add(index)
            cell.update(expected=True, expectation=expectations[index].reason)
    return [{"index": i, "reason": e.reason} for i, e in enumerate(expectations) if i not in used]
