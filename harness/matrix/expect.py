"""The `expect:` entries of a matrix file: known incompatibilities, which cells may fail and why."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from harness.agent.protocol import DEFAULT_FORMATS, DEFAULT_LOADERS, DEFAULT_MODELS, FORMATS, LOADERS, PROBES
from harness.matrix.environments import version_text
from harness.matrix.model import EnvSelector, Expectation
from harness.matrix.problems import MISSING as _MISSING
from harness.matrix.problems import Raw
from harness.matrix.problems import check_keys as _check_keys
from harness.matrix.problems import did_you_mean as _suggest
from harness.matrix.problems import found as _found
from harness.matrix.problems import string as _string
from harness.report.statuses import EXPECTABLE, STATUS_ORDER

_EXPECT_KEYS = ("source", "target", "model", "format", "loader", "status", "cause", "reason")
_SELECTOR_FIELDS = ("id", "python", "tensorflow", "keras", "keras_major", "keras_package")
_GLOB = re.compile(r"[*?\[]")

# Top-level list key -> (what one entry is, the catalog it names, the default list).
CATALOGS: dict[str, tuple[str, Mapping[str, object], tuple[str, ...]]] = {
    "models": ("probe", PROBES, DEFAULT_MODELS),
    "formats": ("format", FORMATS, DEFAULT_FORMATS),
    "loaders": ("loader", LOADERS, DEFAULT_LOADERS),
}


def parse_expect(raw: object, env_ids: Sequence[str], user_models: Sequence[str],
            problems: list[str]) -> tuple[Expectation, ...]:
    """The `expect` list: which cells may fail, with which statuses, and why."""
    if raw is _MISSING:
        return ()
    if not isinstance(raw, list):
        problems.append(f"expect: expected a list of mappings, found {_found(raw)}")
        return ()
    out = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict) or not entry:
            problems.append(f"expect[{i}]: expected a non-empty mapping, found {_found(entry)}")
        elif (expectation := _expectation(entry, f"expect[{i}]", env_ids, user_models, problems)) is not None:
            out.append(expectation)
    return tuple(out)


def _expectation(entry: Raw, at: str, env_ids: Sequence[str], user_models: Sequence[str],
                 problems: list[str]) -> Expectation | None:
    """One `expect` entry; None when any of its keys is invalid."""
    before = len(problems)
    _check_keys(entry, _EXPECT_KEYS, at, problems)
    if "reason" not in entry:
        problems.append(f"{at}.reason: required key missing; say why these cells are expected to fail")
    reason = _string(entry["reason"], f"{at}.reason", problems) if "reason" in entry else None
    envs = {role: _env_selector(entry[role], f"{at}.{role}", env_ids, problems)
            for role in ("source", "target") if role in entry}
    names = {key: _name_pattern(entry[key], f"{at}.{key}", key, user_models if key == "model" else (), problems)
             for key in ("model", "format", "loader") if key in entry}
    status = _expect_status(entry["status"], f"{at}.status", problems) if "status" in entry else ()
    cause = _string(entry["cause"], f"{at}.cause", problems) if "cause" in entry else "*"
    if len(problems) > before or reason is None:
        return None
    return Expectation(
        reason=reason, source=envs.get("source", ()), target=envs.get("target", ()),
        model=names.get("model") or "*", format=names.get("format") or "*", loader=names.get("loader") or "*",
        status=status, cause=cause or "*",
    )


def _env_selector(value: object, at: str, env_ids: Sequence[str], problems: list[str]) -> EnvSelector:
    """An environment id or glob, or a mapping of report fields such as {keras_major: 3}."""
    if isinstance(value, str):
        pattern = _env_pattern(value, at, env_ids, problems)
        return () if pattern is None else (("id", pattern),)
    if not isinstance(value, dict) or not value:
        problems.append(f"{at}: expected an environment id, a glob like 'py3.11-*' or a mapping like "
                        f"{{keras_major: 3}}, found {_found(value)}")
        return ()
    _check_keys(value, _SELECTOR_FIELDS, at, problems)
    pairs = [(key, _selector_value(key, wanted, f"{at}.{key}", env_ids, problems))
             for key, wanted in value.items() if key in _SELECTOR_FIELDS]
    return tuple((key, wanted) for key, wanted in pairs if wanted is not None)


def _selector_value(key: str, value: object, at: str, env_ids: Sequence[str], problems: list[str]) -> str | None:
    """The wanted value of one environment field, as text: "3.9" also selects Python 3.9.2."""
    if key == "id":
        return _env_pattern(value, at, env_ids, problems)
    if key == "keras_major":
        if not isinstance(value, bool) and value in (2, 3, "2", "3"):
            return str(value)
        problems.append(f"{at}: expected 2 or 3, found {_found(value)}")
        return None
    if key == "keras_package":
        return _string(value, at, problems)
    return version_text(value, at, problems)


def _env_pattern(value: object, at: str, env_ids: Sequence[str], problems: list[str]) -> str | None:
    """An environment id of this matrix, or an fnmatch glob over ids."""
    text = _string(value, at, problems)
    if text is not None and env_ids and not _GLOB.search(text) and text not in env_ids:
        problems.append(f"{at}: no environment {text!r} in this matrix{_suggest(text, env_ids)}")
        return None
    return text


def _name_pattern(value: object, at: str, key: str, extra: Sequence[str], problems: list[str]) -> str | None:
    """A model (probe or user model), format or loader name, or an fnmatch glob."""
    what, catalog, _ = CATALOGS[f"{key}s"]
    known = [*catalog, *extra]
    text = _string(value, at, problems)
    if text is not None and not _GLOB.search(text) and text not in known:
        problems.append(f"{at}: unknown {what} {text!r}{_suggest(text, known)}")
        return None
    return text


def _expect_status(value: object, at: str, problems: list[str]) -> tuple[str, ...]:
    """One status or a list of them, each a failure that can be expected."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        problems.append(f"{at}: expected a status or a list of statuses ({', '.join(EXPECTABLE)}), "
                        f"found {_found(value)}")
        return ()
    for j, item in enumerate(items):
        where = at if isinstance(value, str) else f"{at}[{j}]"
        if not isinstance(item, str):
            problems.append(f"{where}: expected a status name, found {_found(item)}")
        elif item in STATUS_ORDER and item not in EXPECTABLE:
            problems.append(f"{where}: {item!r} is not a failure; expected one of: {', '.join(EXPECTABLE)}")
        elif item not in EXPECTABLE:
            problems.append(f"{where}: unknown status {item!r}{_suggest(item, EXPECTABLE)}")
    return tuple(dict.fromkeys(item for item in items if item in EXPECTABLE))
