"""Problem messages shared by the matrix parsers: what a value looks like, key paths, did-you-mean."""

from __future__ import annotations

import difflib
import functools
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.agent.protocol import Tolerance

MISSING: Any = object()  # a key that is absent, as opposed to present with a null value
Raw = dict[Any, Any]

_KINDS = ((str, "string"), (list, "list"), (dict, "mapping"))
MAX_NAME = 100  # names and environment ids name files, containers and report rows
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_FLOAT_TEXT = re.compile(r"^[-+]?\d+(\.\d*)?[eE][-+]?\d+$")


def found(value: object) -> str:
    """How a YAML value reads in a message: 'the number 3.1', 'a list', 'null'."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int) and abs(value) >= 10**40:
        return f"a number of {len(str(abs(value)))} digits"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str) and value:
        return f"the string {value!r}"
    # YAML also makes dates and timestamps; name those by their Python type.
    kind = next((name for cls, name in _KINDS if isinstance(value, cls)), type(value).__name__)
    return f"an empty {kind}" if isinstance(value, (str, list, dict)) and not value else f"a {kind}"


def shown(text: str, width: int = 60) -> str:
    """A string as a message quotes it: repr, cut to `width` characters."""
    return repr(text) if len(text) <= width else repr(text[:width]) + f"... ({len(text)} characters)"


def suggest(word: object, choices: Sequence[str]) -> str:
    """'; did you mean 'x'?' for a near miss, else the list of valid choices."""
    close = difflib.get_close_matches(word, choices, n=1) if isinstance(word, str) else []
    if close:
        return f"; did you mean '{close[0]}'?"
    return "; expected one of: " + ", ".join(choices)


def join(at: str, key: object) -> str:
    """Key path of `key` inside the mapping at `at` ('' is the top level)."""
    return f"{at}.{key}" if at else str(key)


def check_keys(mapping: Raw, allowed: Sequence[str], at: str, problems: list[str]) -> None:
    """Report every key of `mapping` that is not in `allowed`."""
    for key in mapping:
        if key not in allowed:
            problems.append(f"{join(at, key)}: unknown key{suggest(key, allowed)}")


def string(value: object, at: str, problems: list[str]) -> str | None:
    """A non-empty string, else a problem."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    problems.append(f"{at}: expected a non-empty string, found {found(value)}")
    return None


def finite(value: object) -> float | None:
    """A YAML number as a finite float, or None: not a number, NaN, infinite, or an integer too large for a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)  # an integer of hundreds of digits overflows here
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def non_negative(value: object, at: str, problems: list[str]) -> float | None:
    """A finite number >= 0 (ints allowed)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        number = finite(value)
        if number is None:
            problems.append(f"{at}: expected a finite number, found {found(value)}")
        return number
    if isinstance(value, str) and _FLOAT_TEXT.match(value.strip()):
        # PyYAML only reads exponent floats with a dot: 1e-5 is text, 1.0e-5 is a number.
        problems.append(f"{at}: found the string {value!r}; YAML reads it as text, write it with a dot (1.0e-5)")
        return None
    problems.append(f"{at}: expected a non-negative number, found {found(value)}")
    return None


def tolerance(raw: object, problems: list[str], at: str = "tolerance") -> Tolerance:
    """rtol/atol for comparing predictions."""
    if raw is MISSING:
        return Tolerance()
    if not isinstance(raw, dict):
        problems.append(f"{at}: expected a mapping with rtol and/or atol, found {found(raw)}")
        return Tolerance()
    check_keys(raw, ("rtol", "atol"), at, problems)
    values = {key: non_negative(raw[key], f"{at}.{key}", problems) for key in ("rtol", "atol") if key in raw}
    return Tolerance(**{key: value for key, value in values.items() if value is not None})


def str_list(value: object, at: str, problems: list[str]) -> tuple[str, ...]:
    """A list of non-empty strings."""
    if not isinstance(value, list):
        problems.append(f"{at}: expected a list of strings, found {found(value)}")
        return ()
    items = [string(item, f"{at}[{i}]", problems) for i, item in enumerate(value)]
    return tuple(item for item in items if item is not None)


def existing_file(value: object, at: str, base: Path, problems: list[str]) -> Path | None:
    """An existing file named by a string; a relative path starts at `base`, the matrix file's directory."""
    path = host_path(value, at, base, problems)
    if path is None:
        return None
    if not path.is_file():
        problems.append(f"{at}: file not found: {path} (relative paths start at the matrix file's directory)")
        return None
    return path


def host_path(value: object, at: str, base: Path, problems: list[str]) -> Path | None:
    """The resolved host path a string names; a relative one starts at `base` and must stay in its project.

    A relative path may not climb out of the matrix's project (the git checkout holding the matrix file,
    else its directory): a matrix someone else wrote could otherwise reach any host file with `../..`.
    A path outside it is written absolute (or from ~), so reading the matrix shows every such path.
    """
    text = string(value, at, problems)
    if text is None:
        return None
    if _CONTROL.search(text):  # a folder may be mounted into containers, whose --mount option cannot carry one
        problems.append(f"{at}: expected a path, found " + ("a string with a NUL byte" if "\x00" in text else
                                                           f"{shown(text)}, which holds a control character"))
        return None
    try:
        raw = Path(text)
        explicit = raw.is_absolute() or text.startswith("~")
        path = (base / raw.expanduser()).resolve()
        path.exists()  # a name too long for the file system fails here, not later
    except RuntimeError:  # ~nosuchuser, or a symlink loop
        problems.append(f"{at}: cannot resolve {shown(text)}: no such user's home directory, or a symbolic link loop")
        return None
    except (OSError, ValueError) as exc:
        problems.append(f"{at}: not a usable path {shown(text)} ({getattr(exc, 'strerror', None) or exc})")
        return None
    root = project_root(base)
    if not explicit and not path.is_relative_to(root):
        problems.append(f"{at}: {shown(text)} leads out of the matrix's project {root} (to {path}); write the path "
                        "absolute to use a file outside it")
        return None
    return path


@functools.lru_cache(maxsize=64)
def project_root(base: Path) -> Path:
    """The git checkout holding a matrix file's directory, else that directory: where relative paths may go."""
    start = base.resolve()
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return start
