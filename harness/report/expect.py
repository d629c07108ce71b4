"""Which cells the matrix's `expect:` entries cover, decided on the report's own data."""

from __future__ import annotations

import itertools
from collections import Counter
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
        and (expectation.cause == "*" or fnmatchcase(str(cell.get("cause") or ""), expectation.cause))
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
    """Set each cell's `expected` and `expectation` (the first covering entry's reason).

    Returns every entry with the number of cells it covers (0: it matched nothing).
    """
    envs = {e["id"]: e for e in environments}
    failed_builds = {e["id"] for e in environments if e["status"] != "ok"}
    used: Counter[int] = Counter()
    for cell in cells:
        index = next((i for i, e in enumerate(expectations) if covers(e, cell, envs)), None)
        if index is None:
            cell.update(expected=_flag(cell, failed_builds), expectation=None)
        else:
            used[index] += 1
            cell.update(expected=True, expectation=expectations[index].reason)
    return [{"index": i, "reason": e.reason, "cells": used[i]} for i, e in enumerate(expectations)]


# ---------------------------------------------------------------------------- writing expectations

# Environment fields an expectation can select by, most general first; ids only when nothing else fits.
SELECTOR_FIELDS = ("keras_major", "keras_package", "python", "tensorflow", "keras")


def _selects(selector: Mapping[str, str], env: Mapping[str, Any]) -> bool:
    return all(_value_matches(env.get(k), v) for k, v in selector.items())


def _value(env: Mapping[str, Any], field: str) -> str | None:
    value = env.get(field)
    if value is None:
        return None
    return ".".join(str(value).split(".")[:2]) if field == "python" else str(value)


def selector_for(chosen: set[str], universe: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Selectors that together pick exactly `chosen` out of `universe`: by fields when that covers the same
    environments, else one id each. [{}] selects every environment."""
    ids = {str(e["id"]) for e in universe}
    if chosen >= ids:
        return [{}]
    members = [e for e in universe if e["id"] in chosen]
    singles: list[dict[str, str]] = []
    for field in SELECTOR_FIELDS:
        values = {_value(e, field) for e in members}
        if len(values) == 1 and None not in values:
            singles.append({field: str(values.pop())})
    candidates = singles + [{**a, **b} for a, b in itertools.combinations(singles, 2)]
    for selector in candidates:
        if {str(e["id"]) for e in universe if _selects(selector, e)} == chosen:
            return [selector]
    return [{"id": env_id} for env_id in sorted(chosen)]


def _yaml_selector(selector: dict[str, str]) -> object:
    if list(selector) == ["id"]:
        return selector["id"]
    return {k: int(v) if k == "keras_major" else v for k, v in selector.items()}


def _field_selectors(envs: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Every selector by one or two environment fields that selects at least one of `envs`, simplest first."""
    singles = [{field: value} for field in SELECTOR_FIELDS
               for value in sorted({str(_value(e, field)) for e in envs if _value(e, field) is not None})]
    pairs = [{**a, **b} for a, b in itertools.combinations(singles, 2) if not set(a) & set(b)]
    return [*singles, *pairs]


def _one_entry(cells: Sequence[Mapping[str, Any]], same_cause: Sequence[Mapping[str, Any]],
               sources: Sequence[Mapping[str, Any]], targets: Sequence[Mapping[str, Any]]
               ) -> tuple[dict[str, str], dict[str, str]] | None:
    """(source, target) selectors of one entry that covers exactly `cells` among `same_cause` (the cells of this
    cause that fail the same way), by environment fields where they can: an entry with a cause covers nothing
    else, so environments where the cause never shows may be selected too."""
    by_id = {str(e["id"]): e for e in (*sources, *targets)}
    wanted = {(c["source"], c["target"]) for c in cells}
    candidates = [(a, b) for a in [*_field_selectors(sources), {}] for b in [*_field_selectors(targets), {}]]
    candidates.sort(key=lambda pair: (not pair[0], not pair[1]))  # both sides named first
    for src, tgt in candidates:
        covered = {(c["source"], c["target"]) for c in same_cause
                   if _selects(src, by_id.get(c["source"], {})) and _selects(tgt, by_id.get(c["target"], {}))}
        if covered == wanted:
            return src, tgt
    return None


def suggest(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One `expect:` entry per cause that fails the report now (a few when no single one covers exactly its cells)."""
    fail_on = report["verdict"].get("fail_on", "breaks")
    if fail_on == "regressions":
        return []
    envs = report["environments"]
    loaded_in = {c["target"] for c in report["cells"]}
    targets = [e for e in envs if e["id"] in loaded_in]  # existing artifacts' pseudo-sources are never targets

    def failing(c: Mapping[str, Any]) -> bool:
        return c.get("route_status") == "breaks" if fail_on == "breaks" else c["status"] in FAILING

    out: list[dict[str, Any]] = []
    for cause in report["causes"]:
        same_cause = [c for c in report["cells"] if c.get("cause") == cause["name"] and failing(c)]
        cells = [c for c in same_cause if not c.get("expected")]
        if not cells:
            continue
        reason = cause.get("fix") or cause.get("message") or cause["name"]
        one = _one_entry(cells, same_cause, envs, targets)
        for src_sel, tgt_sel in [one] if one else _per_group(cells, envs, targets):
            entry: dict[str, Any] = {"cause": cause["name"]}
            if src_sel:
                entry["source"] = _yaml_selector(src_sel)
            if tgt_sel:
                entry["target"] = _yaml_selector(tgt_sel)
            entry["reason"] = reason
            out.append(entry)
    return out


def _per_group(cells: Sequence[Mapping[str, Any]], envs: Sequence[Mapping[str, Any]],
               targets: Sequence[Mapping[str, Any]]) -> list[tuple[dict[str, str], dict[str, str]]]:
    """Selectors for several entries: sources that fail towards the same targets go together."""
    by_source: dict[str, set[str]] = {}
    for c in cells:
        by_source.setdefault(c["source"], set()).add(c["target"])
    groups: dict[frozenset[str], set[str]] = {}
    for source, reached in by_source.items():
        groups.setdefault(frozenset(reached), set()).add(source)
    return [(src, tgt) for group_targets, group_sources in sorted(groups.items(), key=lambda kv: sorted(kv[1]))
            for src in selector_for(group_sources, envs) for tgt in selector_for(set(group_targets), targets)]


def render_suggestions(report: Mapping[str, Any]) -> str:
    """The suggested entries as YAML to paste under a matrix's `expect:`."""
    import yaml

    entries = suggest(report)
    if not entries:
        return "# nothing to expect: no cause fails this report\n"
    head = ("# Paste under `expect:` in the matrix; each entry expects one cause between the environments it\n"
            "# names (environment fields select the same environments as the ids would).\n")
    return head + yaml.safe_dump(entries, sort_keys=False, allow_unicode=True, width=110)
