"""The environments of a matrix file: keys, versions and specifiers, include/exclude expansion, consistency."""

from __future__ import annotations

import dataclasses
import itertools
import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from harness.agent.protocol import ARTIFACT_PREFIX
from harness.matrix.model import TF_PACKAGES, Environment
from harness.matrix.problems import MAX_NAME, Raw
from harness.matrix.problems import MISSING as _MISSING
from harness.matrix.problems import check_keys as _check_keys
from harness.matrix.problems import found as _found
from harness.matrix.problems import shown as _shown
from harness.matrix.problems import string as _string
from harness.matrix.problems import suggest as _suggest

_ENV_KEYS = ("python", "tensorflow", "keras", "backend", "tensorflow_package", "packages", "env", "base_image", "name")
_AXES = tuple(key for key in _ENV_KEYS if key != "name")
_REQUIRED = ("python", "tensorflow")

_PYTHON = re.compile(r"^3\.[0-9]{1,2}$")  # ASCII digits: \d takes any script's
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_TF_KERAS = re.compile(r"^tf[-_]keras\s*(.*)$", re.IGNORECASE)
_CLAUSE = re.compile(r"^(===|~=|==|!=|<=|>=|<|>)(.*)$")
_OPERATOR_WORDS = {"===": "arb", "~=": "compat", "==": "", "!=": "ne", "<=": "le", ">=": "ge", "<": "lt", ">": "gt"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Set by the harness itself in every container (KERAS_BACKEND comes from `backend:`).
_RESERVED_VARIABLES = ("PYTHONPATH", "PYTHONHASHSEED", "PYTHONDONTWRITEBYTECODE", "HOME", "KERAS_BACKEND",
                       "HARNESS_RESULT_FD")
BACKENDS = ("tensorflow", "jax")
_NO_BACKEND = {"torch": "torch is not offered: its PyPI wheel bundles CUDA (gigabytes) and the CPU wheel "
                        "lives on another index"}
# Pythons each TensorFlow minor has wheels for (PyPI, Linux x86_64): (lowest, highest).
TF_PYTHONS: dict[tuple[int, int], tuple[str, str]] = {
    (2, 12): ("3.8", "3.11"), (2, 13): ("3.8", "3.11"), (2, 14): ("3.9", "3.11"), (2, 15): ("3.9", "3.11"),
    (2, 16): ("3.9", "3.12"), (2, 17): ("3.9", "3.12"), (2, 18): ("3.9", "3.12"), (2, 19): ("3.9", "3.12"),
    (2, 20): ("3.9", "3.13"), (2, 21): ("3.10", "3.13"),
}
# The lowest Python of Keras 3 minors that dropped one: (keras major, minor) from which it applies.
KERAS_MIN_PYTHON: tuple[tuple[tuple[int, int], str], ...] = (((3, 13), "3.11"), ((3, 11), "3.10"))
MAX_VERSION = 64
# Versions that follow the package index: resolved at plan time (harness/selectors.py), per Python.
SELECTORS = ("latest", "latest-pre")
# What a resolver is asked: (package, selector or specifier, Python, key path, problems) -> the exact version, or
# None with the reason in problems.
Resolve = Callable[[str, str, str, str, list[str]], "str | None"]
# An image reference as Docker's reference grammar has it: [host[:port]/]path[:tag][@digest]. Nothing else
# reaches the Dockerfile's FROM line (a newline there would add instructions).
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_PATH_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE = re.compile(
    rf"(?:(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9a-fA-F:]+\])(?::[0-9]{{1,5}})?/)?"
    rf"{_PATH_PART}(?:/{_PATH_PART})*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?",
    re.ASCII)


# ---------------------------------------------------------------------------- scalar fields


def version_text(value: object, at: str, problems: list[str]) -> str | None:
    """A version string; numbers get the 'quote your versions' explanation."""
    if isinstance(value, float):
        problems.append(f'{at}: found the number {value!r}; quote versions ("3.10"), YAML reads 3.10 as 3.1')
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        problems.append(f'{at}: found the number {value!r}; quote versions ("{value}"), YAML reads it as a number')
        return None
    if not isinstance(value, str):
        problems.append(f"{at}: expected a string, found {_found(value)}")
        return None
    if len(value) > MAX_VERSION:
        problems.append(f"{at}: expected a version or specifier of at most {MAX_VERSION} characters, found "
                        f"{len(value)} characters")
        return None
    return _string(value, at, problems)


def _specifier(text: str, at: str, problems: list[str]) -> str | None:
    """A pip specifier starting with an operator; a bare version becomes '==version'."""
    spec = re.sub(r"\s+", "", text)
    if spec.lower() in SELECTORS:
        return spec.lower()
    if spec[:1].isdigit():
        spec = "==" + spec
    if "===" in spec:
        problems.append(f"{at}: '===' compares version strings literally and pip rarely matches it; use '==', "
                        f"found {text!r}")
        return None
    try:
        valid = bool(spec) and "" not in spec.split(",") and len(SpecifierSet(spec)) > 0
    except InvalidSpecifier:
        valid = False
    if not valid:
        problems.append(
            f'{at}: expected a version like "2.16.2", a pip specifier like ">=2.16,<2.17", or latest or '
            f'latest-pre, found {text!r}'
        )
        return None
    return spec


def _parse_python(value: object, at: str, problems: list[str]) -> str | None:
    """Python major.minor such as "3.11"."""
    text = version_text(value, at, problems)
    if text is not None and not _PYTHON.match(text):
        problems.append(f'{at}: expected a Python version "3.X" like "3.11", found {text!r}')
        return None
    return text


def _parse_tensorflow(value: object, at: str, problems: list[str]) -> str | None:
    """TensorFlow version or specifier, normalized to a specifier."""
    text = version_text(value, at, problems)
    return None if text is None else _specifier(text, at, problems)


@dataclass(frozen=True)
class _Keras:
    """The `keras` key: Keras 3 (or standalone 2) package, or legacy tf-keras."""

    legacy: bool
    spec: str | None  # None only for a bare "tf-keras"


def _parse_keras(value: object, at: str, problems: list[str]) -> _Keras | None:
    """A keras version/specifier, or "tf-keras" optionally followed by a version/specifier."""
    text = version_text(value, at, problems)
    if text is None:
        return None
    legacy = _TF_KERAS.match(text)
    if legacy is not None and not legacy.group(1):
        return _Keras(legacy=True, spec=None)
    spec = _specifier(legacy.group(1) if legacy else text, at, problems)
    return None if spec is None else _Keras(legacy=legacy is not None, spec=spec)


def parse_tf_package(value: object, at: str, problems: list[str]) -> str | None:
    """'tensorflow-cpu' or 'tensorflow'."""
    text = _string(value, at, problems)
    if text is not None and text not in TF_PACKAGES:
        problems.append(f"{at}: unknown TensorFlow package {text!r}{_suggest(text, TF_PACKAGES)}")
        return None
    return text


def _parse_packages(value: object, at: str, problems: list[str]) -> tuple[str, ...] | None:
    """A list of pip requirement strings."""
    if not isinstance(value, list):
        problems.append(f"{at}: expected a list of requirement strings, found {_found(value)}")
        return None
    before = len(problems)
    for i, item in enumerate(value):
        if not isinstance(item, str):
            problems.append(f'{at}[{i}]: expected a requirement string like "h5py==3.8.0", found {_found(item)}')
            continue
        try:
            Requirement(item)
        except InvalidRequirement as exc:
            reason = str(exc).splitlines()[0]  # packaging adds a caret drawing on later lines
            problems.append(f"{at}[{i}]: invalid requirement {item!r} ({reason})")
    return tuple(item.strip() for item in value) if len(problems) == before else None


def parse_base_image(value: object, at: str, problems: list[str]) -> str | None:
    """An image name, optionally with a {python} placeholder."""
    text = _string(value, at, problems)
    if text is None:
        return None
    try:
        fields = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(text) if name is not None]
    except ValueError as exc:
        problems.append(f"{at}: bad image template {text!r} ({exc})")
        return None
    for name, spec, conv in fields:
        if name != "python" or spec or conv:
            problems.append(f"{at}: unknown placeholder '{{{name}}}' in {text!r}; only {{python}} is allowed")
            return None
    if not _IMAGE.fullmatch(text.replace("{python}", "3.11")):
        problems.append(f"{at}: expected an image reference like 'python:{{python}}-slim' or "
                        f"'registry.example:5000/team/python:{{python}}', found {text!r}")
        return None
    return text


def _parse_name(value: object, at: str, problems: list[str]) -> str | None:
    """An explicit, filename-safe environment id."""
    text = _string(value, at, problems)
    if text is not None and (not _NAME.match(text) or len(text) > MAX_NAME):
        problems.append(f"{at}: expected at most {MAX_NAME} letters, digits, '.', '_' or '-' (starting with a letter "
                        f"or digit), found {_shown(text)}")
        return None
    if text is not None and text.startswith(ARTIFACT_PREFIX):
        problems.append(f"{at}: names starting with {ARTIFACT_PREFIX!r} are reserved for existing user artifacts")
        return None
    return text


def _parse_backend(value: object, at: str, problems: list[str]) -> str | None:
    """A Keras 3 backend name."""
    text = _string(value, at, problems)
    if text is None:
        return None
    if text in _NO_BACKEND:
        problems.append(f"{at}: backend {text!r}: {_NO_BACKEND[text]}; use one of {', '.join(BACKENDS)}")
        return None
    if text not in BACKENDS:
        problems.append(f"{at}: unknown backend {text!r}{_suggest(text, BACKENDS)}; use one of {', '.join(BACKENDS)}")
        return None
    return text


def _parse_env(value: object, at: str, problems: list[str]) -> tuple[tuple[str, str], ...] | None:
    """Environment variables of the containers: a mapping of names to string values."""
    if not isinstance(value, dict):
        problems.append(f'{at}: expected a mapping of variable names to strings, like {{TF_ENABLE_ONEDNN_OPTS: "0"}}, '
                        f"found {_found(value)}")
        return None
    before = len(problems)
    for name, text in value.items():
        where = f"{at}.{name}"
        if not isinstance(name, str) or not _VARIABLE.match(name):
            problems.append(f"{at}: {name!r} is not an environment variable name (letters, digits and _)")
        elif name in _RESERVED_VARIABLES or name.startswith("HARNESS_"):
            instead = " (use backend:)" if name == "KERAS_BACKEND" else ""
            problems.append(f"{where}: set by the harness itself{instead}")
        elif not isinstance(text, str):
            problems.append(f'{where}: expected a string, found {_found(text)}; quote it ("{text}")')
        elif "\0" in text or "\n" in text:
            problems.append(f"{where}: a value cannot hold a NUL or a newline")
    if len(problems) > before:
        return None
    return tuple(sorted((str(k), str(v)) for k, v in value.items()))


_PARSERS: dict[str, Callable[[object, str, list[str]], object]] = {
    "python": _parse_python,
    "tensorflow": _parse_tensorflow,
    "keras": _parse_keras,
    "backend": _parse_backend,
    "tensorflow_package": parse_tf_package,
    "packages": _parse_packages,
    "env": _parse_env,
    "base_image": parse_base_image,
    "name": _parse_name,
}


# ---------------------------------------------------------------------------- one environment


@dataclass(frozen=True)
class _Fields:
    """The parsed keys of one environment, before defaults are applied."""

    python: str
    tensorflow: str
    keras: _Keras | None
    tensorflow_package: str | None
    packages: tuple[str, ...]
    base_image: str | None
    name: str | None
    backend: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    tf_keras_pin: str | None = None  # a bare tf-keras's exact version, once resolved (its id stays "tfkeras")
    selectors: tuple[tuple[str, str], ...] = ()  # (package, as written) for every version the index decided
    slot: str | None = None  # the id as written, before versions were resolved into it


@dataclass(frozen=True)
class Defaults:
    """Top-level settings that fill in what an environment leaves out."""

    tensorflow_package: str
    base_image: str
    override: str | None  # --base-image: wins over every other base_image


def _parse_fields(raw: Raw, at: str, problems: list[str]) -> _Fields | None:
    """Parse the known keys of one environment; None if one is invalid or a required one missing."""
    before = len(problems)
    got = {key: _PARSERS[key](value, f"{at}.{key}", problems) for key, value in raw.items() if key in _PARSERS}
    if len(problems) > before or any(got.get(key) is None for key in _REQUIRED):
        return None
    return _Fields(
        python=cast(str, got["python"]),
        tensorflow=cast(str, got["tensorflow"]),
        keras=cast("_Keras | None", got.get("keras")),
        tensorflow_package=cast("str | None", got.get("tensorflow_package")),
        packages=cast("tuple[str, ...]", got.get("packages", ())),
        base_image=cast("str | None", got.get("base_image")),
        name=cast("str | None", got.get("name")),
        backend=cast("str | None", got.get("backend")),
        env=cast("tuple[tuple[str, str], ...]", got.get("env", ())),
    )


def _pinned(spec: str) -> tuple[int, int] | None:
    """(major, minor) of an exact or wildcard '==' pin such as ==2.16.2 or ==2.16.*, else None."""
    if "," in spec or not spec.startswith("==") or spec.startswith("==="):
        return None
    try:
        release = Version(spec[2:].removesuffix(".*")).release
    except (InvalidVersion, ValueError):  # ValueError: a release number too long to convert
        return None
    return (release[0], release[1]) if len(release) >= 2 else None


def _python_tuple(text: str) -> tuple[int, int]:
    major, minor = text.split(".")
    return int(major), int(minor)


def _check_available(fields: _Fields, label: str, problems: list[str]) -> None:
    """Combinations with no wheel to install, named before a build fails on them."""
    tf = _pinned(fields.tensorflow)
    python = _python_tuple(fields.python)
    if tf is not None and tf in TF_PYTHONS:
        low, high = TF_PYTHONS[tf]
        if not _python_tuple(low) <= python <= _python_tuple(high):
            problems.append(f"{label}.python: tensorflow {tf[0]}.{tf[1]} has wheels for Python {low} to {high} only, "
                            f"found Python {fields.python}")
    keras = fields.keras
    pinned = None if keras is None or keras.legacy or keras.spec is None else _pinned(keras.spec)
    for since, lowest in KERAS_MIN_PYTHON:
        if pinned is not None and pinned >= since and python < _python_tuple(lowest):
            problems.append(f"{label}.python: keras {pinned[0]}.{pinned[1]} needs Python >= {lowest}, "
                            f"found Python {fields.python}")
            break
    if fields.backend not in (None, "tensorflow"):
        if keras is not None and keras.legacy:
            keras2 = True
        elif pinned is not None:
            keras2 = pinned[0] < 3
        else:  # the Keras TensorFlow bundles, when TensorFlow is pinned
            keras2 = tf is not None and tf < (2, 16)
        if keras2:
            problems.append(f"{label}.backend: the {fields.backend} backend needs Keras 3 (keras >= 3, or tensorflow "
                            ">= 2.16 without tf-keras)")


def _check_consistency(fields: _Fields, label: str, problems: list[str]) -> None:
    """Keras / TensorFlow pairs that cannot install together, when both are pinned; combinations without wheels."""
    _check_available(fields, label, problems)
    tf = _pinned(fields.tensorflow)
    keras = fields.keras
    if tf is None or keras is None:
        return
    if keras.legacy and tf < (2, 14):
        problems.append(
            f"{label}.keras: tf-keras exists only for tensorflow >= 2.14, found tensorflow{fields.tensorflow}"
        )
    pinned = None if keras.legacy or keras.spec is None else _pinned(keras.spec)
    if pinned is not None and pinned[0] >= 3 and tf < (2, 16):
        problems.append(
            f"{label}.keras: keras 3 needs tensorflow >= 2.16; use tf-keras for Keras 2 on new TF, "
            "or drop keras to use the bundled Keras 2"
        )


def _spec_part(spec: str) -> str:
    """Id fragment of a specifier: ==2.16.* -> 2.16.x, >=2.16,<2.17 -> ge2.16-lt2.17."""
    words = []
    for clause in spec.split(","):
        match = _CLAUSE.match(clause)
        operator, version = (match.group(1), match.group(2)) if match else ("", clause)
        words.append(_OPERATOR_WORDS.get(operator, "") + version.replace("*", "x"))
    return _UNSAFE.sub("_", "-".join(words))


def _env_id(fields: _Fields, package: str) -> str:
    """Readable id derived from what the user wrote (not from resolved versions)."""
    parts = [f"py{fields.python}", "tf" + _spec_part(fields.tensorflow)]
    if fields.keras is not None:
        prefix = "tfkeras" if fields.keras.legacy else "keras"
        parts.append(prefix + (_spec_part(fields.keras.spec) if fields.keras.spec else ""))
    if package == "tensorflow":
        parts.append("full")
    if fields.backend not in (None, "tensorflow"):
        parts.append(str(fields.backend))
    parts.extend(_UNSAFE.sub("_", f"{name}{value}") for name, value in fields.env)
    return "-".join(parts)


def _tf_keras_spec(fields: _Fields) -> str | None:
    """The tf-keras specifier: as given (or resolved), else TF's major.minor when TF is pinned."""
    if fields.tf_keras_pin is not None:
        return fields.tf_keras_pin
    if fields.keras is not None and fields.keras.spec is not None:
        return fields.keras.spec
    tf = _pinned(fields.tensorflow)
    return None if tf is None else f"=={tf[0]}.{tf[1]}.*"


def _make_env(fields: _Fields, defaults: Defaults) -> Environment:
    """The frozen Environment for parsed fields plus top-level defaults."""
    package = fields.tensorflow_package or defaults.tensorflow_package
    template = defaults.override or fields.base_image or defaults.base_image
    legacy = fields.keras is not None and fields.keras.legacy
    env_id = fields.name or _env_id(fields, package)
    return Environment(
        id=env_id,
        python=fields.python,
        tensorflow=fields.tensorflow,
        tensorflow_package=package,
        keras=fields.keras.spec if fields.keras is not None and not legacy else None,
        legacy_keras=legacy,
        tf_keras=_tf_keras_spec(fields) if legacy else None,
        packages=fields.packages,
        base_image=template.format(python=fields.python),
        backend=fields.backend,
        env=fields.env,
        slot="" if fields.name or fields.slot in (None, env_id) else str(fields.slot),
        selectors=fields.selectors,
    )


def _exact(spec: str) -> bool:
    """Whether a specifier pins one release (==2.16.2), so that the index has nothing to decide."""
    return spec.startswith("==") and not spec.startswith("===") and "," not in spec and "*" not in spec


def _resolved(fields: _Fields, package: str, label: str, resolve: Resolve | None,
              problems: list[str]) -> _Fields | None:
    """The fields with every version the index decides (latest, latest-pre, a specifier) made exact, TensorFlow
    first (a bare tf-keras follows its minor); None when one cannot be resolved (the reason is in problems)."""
    if resolve is None:
        return fields
    written = _env_id(fields, package)
    chosen: list[tuple[str, str]] = []

    def exact(name: str, spec: str, at: str) -> str | None:
        if _exact(spec):
            return spec
        version = resolve(name, spec, fields.python, at, problems)
        if version is not None:
            chosen.append((name, spec))
        return None if version is None else f"=={version}"

    tensorflow = exact(package, fields.tensorflow, f"{label}.tensorflow")
    if tensorflow is None:
        return None
    fields = dataclasses.replace(fields, tensorflow=tensorflow)
    keras, pin = fields.keras, None
    if keras is not None and keras.legacy:
        spec = _tf_keras_spec(fields)
        pin = None if spec is None else exact("tf-keras", spec, f"{label}.keras")
        if spec is not None and pin is None:
            return None
        if keras.spec is not None:
            keras, pin = _Keras(legacy=True, spec=pin), None
    elif keras is not None and keras.spec is not None:
        spec = exact("keras", keras.spec, f"{label}.keras")
        if spec is None:
            return None
        keras = _Keras(legacy=False, spec=spec)
    return dataclasses.replace(fields, keras=keras, tf_keras_pin=pin, selectors=tuple(chosen), slot=written)


# ---------------------------------------------------------------------------- matrix expansion


@dataclass
class _Combo:
    """One matrix combination, still as raw YAML values."""

    values: dict[str, object]
    origin: str  # "matrix" for product combinations, "matrix.include[i]" for appended ones


def _axes(raw: Raw, problems: list[str]) -> dict[str, list[object]]:
    """The axes in the order written; reports structural problems only."""
    axes: dict[str, list[object]] = {}
    for key, values in raw.items():
        at = f"matrix.{key}"
        if key in ("include", "exclude"):
            continue
        if key == "name":
            problems.append(f"{at}: 'name' cannot be an axis; set names in include entries or environments")
        elif key not in _AXES:
            problems.append(f"{at}: unknown key{_suggest(key, (*_AXES, 'include', 'exclude'))}")
        elif not isinstance(values, list):
            problems.append(f"{at}: expected a list of values, found {_found(values)}")
        elif not values:
            problems.append(f"{at}: expected a non-empty list of values, found an empty list")
        else:
            axes[key] = values
    return axes


def _entries(raw: object, at: str, problems: list[str]) -> list[tuple[int, Raw]]:
    """(index, mapping) for each entry of an include/exclude list."""
    if raw is _MISSING:
        return []
    if not isinstance(raw, list):
        problems.append(f"{at}: expected a list of mappings, found {_found(raw)}")
        return []
    entries = []
    for i, entry in enumerate(raw):
        if isinstance(entry, dict) and entry:
            entries.append((i, entry))
        else:
            problems.append(f"{at}[{i}]: expected a non-empty mapping, found {_found(entry)}")
    return entries


def _check_excludes(excludes: list[tuple[int, Raw]], axes: Sequence[str], problems: list[str]) -> None:
    """Exclude entries may only name axes of this matrix."""
    for i, entry in excludes:
        for key in entry:
            if key not in axes:
                problems.append(f"matrix.exclude[{i}].{key}: not an axis of this matrix{_suggest(key, axes)}")


def _check_values(axes: dict[str, list[object]], entries: list[tuple[str, Raw]], problems: list[str]) -> None:
    """Check every axis value and include/exclude value where it was written."""
    for key, values in axes.items():
        for j, value in enumerate(values):
            _PARSERS[key](value, f"matrix.{key}[{j}]", problems)
    for at, entry in entries:
        for key, value in entry.items():
            if key in _PARSERS:
                _PARSERS[key](value, f"{at}.{key}", problems)


def _apply_includes(combos: list[_Combo], axes: Sequence[str], includes: list[tuple[int, Raw]]) -> list[_Combo]:
    """GitHub Actions include: merge where no original axis value changes, else append."""
    extra = []
    for i, entry in includes:
        hits = [c for c in combos if all(c.values[k] == v for k, v in entry.items() if k in axes)]
        for combo in hits:
            combo.values.update(entry)  # may overwrite keys added by earlier includes, like GitHub
        if not hits:
            extra.append(_Combo(dict(entry), f"matrix.include[{i}]"))
    return combos + extra


def _product(axes: dict[str, list[object]], excludes: list[tuple[int, Raw]]) -> list[_Combo]:
    """Cartesian product in written axis order, minus combinations matching an exclude entry."""
    if not axes:
        return []  # like GitHub: an include-only matrix has no base combinations
    combos = [dict(zip(axes, values)) for values in itertools.product(*axes.values())]
    return [
        _Combo(combo, "matrix")
        for combo in combos
        if not any(all(combo[k] == v for k, v in entry.items()) for _, entry in excludes)
    ]


def _expand(raw: object, problems: list[str]) -> list[_Combo]:
    """Matrix combinations: product of the axes, minus exclude, plus include."""
    if raw is _MISSING:
        return []
    if not isinstance(raw, dict):
        problems.append(f"matrix: expected a mapping of axis -> list of values, found {_found(raw)}")
        return []
    before = len(problems)
    axes = _axes(raw, problems)
    excludes = _entries(raw.get("exclude", _MISSING), "matrix.exclude", problems)
    includes = _entries(raw.get("include", _MISSING), "matrix.include", problems)
    _check_excludes(excludes, list(axes), problems)
    for i, entry in includes:
        _check_keys(entry, _ENV_KEYS, f"matrix.include[{i}]", problems)
    structural = len(problems) > before  # a broken shape would only add misleading follow-ups
    entries = [(f"matrix.exclude[{i}]", e) for i, e in excludes] + [(f"matrix.include[{i}]", e) for i, e in includes]
    _check_values(axes, entries, problems)
    if structural:
        return []
    return _apply_includes(_product(axes, excludes), list(axes), includes)


def _missing(origin: str, key: str) -> str:
    """Problem line for a required key absent from a combination or environment."""
    if origin == "matrix":
        return f"matrix.{key}: required key missing; add a '{key}' axis or set it in an include entry"
    if origin.startswith("matrix.include"):
        return f"{origin}.{key}: required key missing (this include entry matched no combination, so it is a new one)"
    return f"{origin}.{key}: required key missing"


def _combo_envs(combos: list[_Combo], defaults: Defaults, problems: list[str],
                resolve: Resolve | None = None) -> list[tuple[str, Environment]]:
    """(label, Environment) per valid combination; invalid values were reported where written."""
    out = []
    for combo in combos:
        missing = [key for key in _REQUIRED if key not in combo.values]
        problems.extend(_missing(combo.origin, key) for key in missing)
        fields = _parse_fields(combo.values, combo.origin, [])
        if fields is None or missing:
            continue
        written = _make_env(fields, defaults)
        label = f"matrix[{written.id}]" if combo.origin == "matrix" else combo.origin
        fields = _resolved(fields, written.tensorflow_package, label, resolve, problems)
        if fields is None:
            continue
        _check_consistency(fields, label, problems)
        out.append((label, _make_env(fields, defaults)))
    return out


def _explicit_envs(raw: object, defaults: Defaults, problems: list[str],
                   resolve: Resolve | None = None) -> list[tuple[str, Environment]]:
    """(label, Environment) for each entry of `environments`."""
    if raw is _MISSING:
        return []
    if not isinstance(raw, list):
        problems.append(f"environments: expected a list of mappings, found {_found(raw)}")
        return []
    out = []
    for i, entry in enumerate(raw):
        at = f"environments[{i}]"
        if not isinstance(entry, dict):
            problems.append(f"{at}: expected a mapping, found {_found(entry)}")
            continue
        _check_keys(entry, _ENV_KEYS, at, problems)
        problems.extend(_missing(at, key) for key in _REQUIRED if key not in entry)
        fields = _parse_fields(entry, at, problems)
        if fields is not None:
            fields = _resolved(fields, fields.tensorflow_package or defaults.tensorflow_package, at, resolve, problems)
        if fields is not None:
            _check_consistency(fields, at, problems)
            out.append((at, _make_env(fields, defaults)))
    return out


def _without_repeats(labelled: list[tuple[str, Environment]]) -> list[tuple[str, Environment]]:
    """A latest-pre environment that resolved to what an environment before it installs already (no release
    candidate is newer today) is left out: it would test the same thing twice under one id."""
    kept: list[tuple[str, Environment]] = []
    for label, env in labelled:
        pre = any(spec == SELECTORS[1] for _, spec in env.selectors)
        if pre and any(dataclasses.replace(env, slot=other.slot, selectors=other.selectors) == other
                       for _, other in kept):
            continue
        kept.append((label, env))
    return kept


def _check_duplicates(labelled: list[tuple[str, Environment]], problems: list[str]) -> None:
    """Every environment id must be unique: it names files and result rows."""
    seen: dict[str, tuple[str, Environment]] = {}
    for label, env in labelled:
        if max(len(env.id), len(env.as_written)) > MAX_NAME:
            problems.append(f"{label}: the environment id {env.as_written[:40]}... is longer than {MAX_NAME} "
                            "characters; set a shorter 'name:'")
        if env.id not in seen:
            seen[env.id] = (label, env)
            continue
        first_label, first = seen[env.id]
        hint = " (ids ignore 'packages')" if env.packages != first.packages else ""
        problems.append(
            f"{label}: duplicate environment id '{env.id}' (same as {first_label}){hint}; "
            "set 'name:' in environments or include entries to tell them apart"
        )


def parse_environments(data: Raw, defaults: Defaults, problems: list[str],
                       resolve: Resolve | None = None) -> tuple[Environment, ...]:
    """Matrix combinations, then include-added ones, then explicit environments; ids unique. With `resolve`, every
    version the index decides (latest, latest-pre, a specifier) is made exact, into the id too."""
    before = len(problems)
    combos = _expand(data.get("matrix", _MISSING), problems)
    labelled = _combo_envs(combos, defaults, problems, resolve)
    labelled += _explicit_envs(data.get("environments", _MISSING), defaults, problems, resolve)
    labelled = _without_repeats(labelled)
    _check_duplicates(labelled, problems)
    if not labelled and len(problems) == before:
        problems.append("no environments: give a 'matrix' with at least one combination or an 'environments' list")
    return tuple(env for _, env in labelled)
