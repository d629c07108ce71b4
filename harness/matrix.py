"""Read, validate and expand a matrix file into the frozen `Matrix` every later step uses."""

# Hand-written checks, not pydantic: nearly every field needs its own message (the quoted-version
# hint, did-you-mean, key paths into matrix axes), so remapping pydantic's errors came out longer.
from __future__ import annotations

import hashlib
import itertools
import os
import re
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from harness.agent.catalog import DEFAULT_FORMATS, DEFAULT_LOADERS, DEFAULT_MODELS, FORMATS, LOADERS, PROBES
from harness.errors import MatrixError
from harness.matrix_checks import MISSING as _MISSING
from harness.matrix_checks import Raw, existing_file
from harness.matrix_checks import check_keys as _check_keys
from harness.matrix_checks import found as _found
from harness.matrix_checks import str_list as _str_list
from harness.matrix_checks import string as _string
from harness.matrix_checks import suggest as _suggest
from harness.matrix_checks import tolerance as _tolerance
from harness.matrix_types import (
    DEFAULT_BASE_IMAGE,
    DEFAULT_TF_PACKAGE,
    TF_PACKAGES,
    Environment,
    EnvSelector,
    Expectation,
    Matrix,
    PipSettings,
    Tolerance,
)
from harness.matrix_user import ARTIFACT_PREFIX, artifact_sources, parse_user_models
from harness.matrix_user import Context as UserContext
from harness.report.statuses import EXPECTABLE, STATUS_ORDER
from harness.yamlguard import shape_problem

__all__ = [
    "Environment",
    "Expectation",
    "Matrix",
    "MatrixError",
    "PipSettings",
    "Tolerance",
    "load_matrix",
    "parse_matrix",
]

_TOP_KEYS = (
    "name", "matrix", "environments", "models", "formats", "loaders", "tolerance",
    "base_image", "tensorflow_package", "pip", "expect",
)  # fmt: skip
_ENV_KEYS = ("python", "tensorflow", "keras", "tensorflow_package", "packages", "base_image", "name")
_AXES = tuple(key for key in _ENV_KEYS if key != "name")
_REQUIRED = ("python", "tensorflow")
_PIP_KEYS = ("index_url", "extra_index_urls", "trusted_hosts", "ca_bundle")
_EXPECT_KEYS = ("source", "target", "model", "format", "loader", "status", "reason")
_SELECTOR_FIELDS = ("id", "python", "tensorflow", "keras", "keras_major", "keras_package")
_GLOB = re.compile(r"[*?\[]")

_PYTHON = re.compile(r"^3\.\d{1,2}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_TF_KERAS = re.compile(r"^tf[-_]keras\s*(.*)$", re.IGNORECASE)
_CLAUSE = re.compile(r"^(===|~=|==|!=|<=|>=|<|>)(.*)$")
_OPERATOR_WORDS = {"===": "arb", "~=": "compat", "==": "", "!=": "ne", "<=": "le", ">=": "ge", "<": "lt", ">": "gt"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


# ---------------------------------------------------------------------------- public API


def load_matrix(path: str | os.PathLike[str], *, base_image: str | None = None) -> Matrix:
    """Read, validate and expand the matrix file at `path`; MatrixError lists every problem."""
    where = os.fspath(path)
    raw = _read_bytes(where)
    data = _load_yaml(raw, where)
    return parse_matrix(data, path=where, sha256=hashlib.sha256(raw).hexdigest(), base_image=base_image)


def parse_matrix(data: object, *, path: str, sha256: str, base_image: str | None = None) -> Matrix:
    """Validate and expand already-loaded YAML data; raise MatrixError listing every problem."""
    if data is None:
        raise MatrixError(path, ["the file is empty; expected a mapping with 'matrix' or 'environments'"])
    if not isinstance(data, dict):
        found = _found(data)
        raise MatrixError(path, [f"top level: expected a mapping with 'matrix' or 'environments', found {found}"])
    problems: list[str] = []
    _check_keys(data, _TOP_KEYS, "", problems)
    defaults = _defaults(data, base_image, problems)
    environments = _environments(data, defaults, problems)
    env_ids = tuple(env.id for env in environments)
    formats = _names(data.get("formats", _MISSING), "formats", problems)
    loaders = _names(data.get("loaders", _MISSING), "loaders", problems)
    raw_models = data.get("models", _MISSING)
    user_models = parse_user_models(
        [(i, m) for i, m in enumerate(raw_models) if isinstance(m, dict)] if isinstance(raw_models, list) else [],
        UserContext(base=Path(path).parent, formats=formats, loaders=loaders, env_ids=env_ids), problems)
    matrix = Matrix(
        name=_top_name(data.get("name", _MISSING), path, problems),
        path=path,
        sha256=sha256,
        environments=environments,
        models=_names(raw_models, "models", problems),
        formats=formats,
        loaders=loaders,
        tolerance=_tolerance(data.get("tolerance", _MISSING), problems),
        pip=_pip(data.get("pip", _MISSING), Path(path).parent, problems),
        expect=_expect(data.get("expect", _MISSING), (*env_ids, *artifact_sources(user_models)),
                       [m.name for m in user_models], problems),
        user_models=user_models,
    )
    if problems:
        raise MatrixError(path, list(dict.fromkeys(problems)))  # matrix combos can repeat a problem
    return matrix


# ---------------------------------------------------------------------------- reading


def _read_bytes(path: str) -> bytes:
    """The file's bytes, or MatrixError with one readable line."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        problem = "file not found"
    except IsADirectoryError:
        problem = "is a directory, expected a YAML file"
    except OSError as exc:
        problem = f"cannot read the file: {exc.strerror or exc}"
    except ValueError as exc:  # e.g. a NUL byte in the path
        problem = f"not a usable path: {exc}"
    raise MatrixError(path, [problem])


def _load_yaml(raw: bytes, path: str) -> object:
    """Parsed YAML, or MatrixError naming the line of a syntax error."""
    try:
        text = raw.decode("utf-8")
        refused = shape_problem(text)
        if refused is None:
            return yaml.safe_load(text)
        problem = refused
    except UnicodeDecodeError as exc:
        problem = f"not UTF-8 text (bad byte at offset {exc.start})"
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = f"{where}invalid YAML: {exc.problem or exc.context or 'syntax error'}"
    except yaml.YAMLError as exc:
        problem = f"invalid YAML: {exc}"
    raise MatrixError(path, [problem])


# ---------------------------------------------------------------------------- scalar fields


def _version_text(value: object, at: str, problems: list[str]) -> str | None:
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
    return _string(value, at, problems)


def _specifier(text: str, at: str, problems: list[str]) -> str | None:
    """A pip specifier starting with an operator; a bare version becomes '==version'."""
    spec = re.sub(r"\s+", "", text)
    if spec[:1].isdigit():
        spec = "==" + spec
    try:
        valid = bool(spec) and len(SpecifierSet(spec)) > 0
    except InvalidSpecifier:
        valid = False
    if not valid:
        problems.append(
            f'{at}: expected a version like "2.16.2" or a pip specifier like ">=2.16,<2.17", found {text!r}'
        )
        return None
    return spec


def _parse_python(value: object, at: str, problems: list[str]) -> str | None:
    """Python major.minor such as "3.11"."""
    text = _version_text(value, at, problems)
    if text is not None and not _PYTHON.match(text):
        problems.append(f'{at}: expected a Python version "3.X" like "3.11", found {text!r}')
        return None
    return text


def _parse_tensorflow(value: object, at: str, problems: list[str]) -> str | None:
    """TensorFlow version or specifier, normalized to a specifier."""
    text = _version_text(value, at, problems)
    return None if text is None else _specifier(text, at, problems)


@dataclass(frozen=True)
class _Keras:
    """The `keras` key: Keras 3 (or standalone 2) package, or legacy tf-keras."""

    legacy: bool
    spec: str | None  # None only for a bare "tf-keras"


def _parse_keras(value: object, at: str, problems: list[str]) -> _Keras | None:
    """A keras version/specifier, or "tf-keras" optionally followed by a version/specifier."""
    text = _version_text(value, at, problems)
    if text is None:
        return None
    legacy = _TF_KERAS.match(text)
    if legacy is not None and not legacy.group(1):
        return _Keras(legacy=True, spec=None)
    spec = _specifier(legacy.group(1) if legacy else text, at, problems)
    return None if spec is None else _Keras(legacy=legacy is not None, spec=spec)


def _parse_tf_package(value: object, at: str, problems: list[str]) -> str | None:
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


def _parse_base_image(value: object, at: str, problems: list[str]) -> str | None:
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
    return text


def _parse_name(value: object, at: str, problems: list[str]) -> str | None:
    """An explicit, filename-safe environment id."""
    text = _string(value, at, problems)
    if text is not None and not _NAME.match(text):
        problems.append(
            f"{at}: expected letters, digits, '.', '_' or '-' (starting with a letter or digit), found {text!r}"
        )
        return None
    if text is not None and text.startswith(ARTIFACT_PREFIX):
        problems.append(f"{at}: names starting with {ARTIFACT_PREFIX!r} are reserved for existing user artifacts")
        return None
    return text


_PARSERS: dict[str, Callable[[object, str, list[str]], object]] = {
    "python": _parse_python,
    "tensorflow": _parse_tensorflow,
    "keras": _parse_keras,
    "tensorflow_package": _parse_tf_package,
    "packages": _parse_packages,
    "base_image": _parse_base_image,
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


@dataclass(frozen=True)
class _Defaults:
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
    )


def _pinned(spec: str) -> tuple[int, int] | None:
    """(major, minor) of an exact or wildcard '==' pin such as ==2.16.2 or ==2.16.*, else None."""
    if "," in spec or not spec.startswith("==") or spec.startswith("==="):
        return None
    try:
        release = Version(spec[2:].removesuffix(".*")).release
    except InvalidVersion:
        return None
    return (release[0], release[1]) if len(release) >= 2 else None


def _check_consistency(fields: _Fields, label: str, problems: list[str]) -> None:
    """Keras / TensorFlow pairs that cannot install together, when both are pinned."""
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
        words.append(_OPERATOR_WORDS[operator] + version.replace("*", "x"))
    return _UNSAFE.sub("_", "-".join(words))


def _env_id(fields: _Fields, package: str) -> str:
    """Readable id derived from what the user wrote (not from resolved versions)."""
    parts = [f"py{fields.python}", "tf" + _spec_part(fields.tensorflow)]
    if fields.keras is not None:
        prefix = "tfkeras" if fields.keras.legacy else "keras"
        parts.append(prefix + (_spec_part(fields.keras.spec) if fields.keras.spec else ""))
    if package == "tensorflow":
        parts.append("full")
    return "-".join(parts)


def _tf_keras_spec(fields: _Fields) -> str | None:
    """The tf-keras specifier: as given, else TF's major.minor when TF is pinned."""
    if fields.keras is not None and fields.keras.spec is not None:
        return fields.keras.spec
    tf = _pinned(fields.tensorflow)
    return None if tf is None else f"=={tf[0]}.{tf[1]}.*"


def _make_env(fields: _Fields, defaults: _Defaults) -> Environment:
    """The frozen Environment for parsed fields plus top-level defaults."""
    package = fields.tensorflow_package or defaults.tensorflow_package
    template = defaults.override or fields.base_image or defaults.base_image
    legacy = fields.keras is not None and fields.keras.legacy
    return Environment(
        id=fields.name or _env_id(fields, package),
        python=fields.python,
        tensorflow=fields.tensorflow,
        tensorflow_package=package,
        keras=fields.keras.spec if fields.keras is not None and not legacy else None,
        legacy_keras=legacy,
        tf_keras=_tf_keras_spec(fields) if legacy else None,
        packages=fields.packages,
        base_image=template.format(python=fields.python),
    )


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


def _combo_envs(combos: list[_Combo], defaults: _Defaults, problems: list[str]) -> list[tuple[str, Environment]]:
    """(label, Environment) per valid combination; invalid values were reported where written."""
    out = []
    for combo in combos:
        missing = [key for key in _REQUIRED if key not in combo.values]
        problems.extend(_missing(combo.origin, key) for key in missing)
        fields = _parse_fields(combo.values, combo.origin, [])
        if fields is None or missing:
            continue
        env = _make_env(fields, defaults)
        label = f"matrix[{env.id}]" if combo.origin == "matrix" else combo.origin
        _check_consistency(fields, label, problems)
        out.append((label, env))
    return out


def _explicit_envs(raw: object, defaults: _Defaults, problems: list[str]) -> list[tuple[str, Environment]]:
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
            _check_consistency(fields, at, problems)
            out.append((at, _make_env(fields, defaults)))
    return out


def _check_duplicates(labelled: list[tuple[str, Environment]], problems: list[str]) -> None:
    """Every environment id must be unique: it names files and result rows."""
    seen: dict[str, tuple[str, Environment]] = {}
    for label, env in labelled:
        if env.id not in seen:
            seen[env.id] = (label, env)
            continue
        first_label, first = seen[env.id]
        hint = " (ids ignore 'packages')" if env.packages != first.packages else ""
        problems.append(
            f"{label}: duplicate environment id '{env.id}' (same as {first_label}){hint}; "
            "set 'name:' in environments or include entries to tell them apart"
        )


def _environments(data: Raw, defaults: _Defaults, problems: list[str]) -> tuple[Environment, ...]:
    """Matrix combinations, then include-added ones, then explicit environments; ids unique."""
    before = len(problems)
    combos = _expand(data.get("matrix", _MISSING), problems)
    labelled = _combo_envs(combos, defaults, problems)
    labelled += _explicit_envs(data.get("environments", _MISSING), defaults, problems)
    _check_duplicates(labelled, problems)
    if not labelled and len(problems) == before:
        problems.append("no environments: give a 'matrix' with at least one combination or an 'environments' list")
    return tuple(env for _, env in labelled)


# ---------------------------------------------------------------------------- other top-level keys


def _defaults(data: Raw, override: str | None, problems: list[str]) -> _Defaults:
    """Top-level tensorflow_package and base_image, and the --base-image override."""
    package = DEFAULT_TF_PACKAGE
    if "tensorflow_package" in data:
        package = _parse_tf_package(data["tensorflow_package"], "tensorflow_package", problems) or package
    template = DEFAULT_BASE_IMAGE
    if "base_image" in data:
        template = _parse_base_image(data["base_image"], "base_image", problems) or template
    checked = None if override is None else _parse_base_image(override, "--base-image", problems)
    return _Defaults(tensorflow_package=package, base_image=template, override=checked)


def _top_name(raw: object, path: str, problems: list[str]) -> str:
    """The matrix name; defaults to the file stem."""
    stem = Path(path).stem or "matrix"
    if raw is _MISSING:
        return stem
    return _string(raw, "name", problems) or stem


# Top-level list key -> (what one entry is, the catalog it names, the default list).
_CATALOGS: dict[str, tuple[str, Mapping[str, object], tuple[str, ...]]] = {
    "models": ("probe", PROBES, DEFAULT_MODELS),
    "formats": ("format", FORMATS, DEFAULT_FORMATS),
    "loaders": ("loader", LOADERS, DEFAULT_LOADERS),
}


def _names(raw: object, key: str, problems: list[str]) -> tuple[str, ...]:
    """A non-empty list of catalog names (probes, formats or loaders)."""
    what, known, default = _CATALOGS[key]
    if raw is _MISSING:
        return default
    if not isinstance(raw, list) or not raw:
        problems.append(f"{key}: expected a non-empty list of {what} names, found {_found(raw)}")
        return default
    names: list[str] = []
    for i, name in enumerate(raw):
        if key == "models" and isinstance(name, dict):
            continue  # a user model: parsed by harness.matrix_user
        if not isinstance(name, str):
            problems.append(f"{key}[{i}]: expected a {what} name, found {_found(name)}")
        elif name not in known:
            problems.append(f"{key}[{i}]: unknown {what} {name!r}{_suggest(name, list(known))}")
        elif name in names:
            problems.append(f"{key}[{i}]: {what} {name!r} is listed twice")
        else:
            names.append(name)
    return tuple(names)


def _ca_bundle(value: object, base: Path, problems: list[str]) -> str | None:
    """Absolute path of an existing CA bundle; a relative one starts at the matrix file."""
    path = existing_file(value, "pip.ca_bundle", base, problems)
    return None if path is None else str(path)


def _pip(raw: object, base: Path, problems: list[str]) -> PipSettings:
    """Package index and CA bundle settings."""
    if raw is _MISSING:
        return PipSettings()
    if not isinstance(raw, dict):
        problems.append(f"pip: expected a mapping with {', '.join(_PIP_KEYS)}, found {_found(raw)}")
        return PipSettings()
    _check_keys(raw, _PIP_KEYS, "pip", problems)
    return PipSettings(
        index_url=_string(raw["index_url"], "pip.index_url", problems) if "index_url" in raw else None,
        extra_index_urls=_str_list(raw.get("extra_index_urls", []), "pip.extra_index_urls", problems),
        trusted_hosts=_str_list(raw.get("trusted_hosts", []), "pip.trusted_hosts", problems),
        ca_bundle=_ca_bundle(raw["ca_bundle"], base, problems) if "ca_bundle" in raw else None,
    )


# ---------------------------------------------------------------------------- expect: known incompatibilities


def _expect(raw: object, env_ids: Sequence[str], user_models: Sequence[str],
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
    if len(problems) > before or reason is None:
        return None
    return Expectation(
        reason=reason, source=envs.get("source", ()), target=envs.get("target", ()),
        model=names.get("model") or "*", format=names.get("format") or "*", loader=names.get("loader") or "*",
        status=status,
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
    return _version_text(value, at, problems)


def _env_pattern(value: object, at: str, env_ids: Sequence[str], problems: list[str]) -> str | None:
    """An environment id of this matrix, or an fnmatch glob over ids."""
    text = _string(value, at, problems)
    if text is not None and env_ids and not _GLOB.search(text) and text not in env_ids:
        problems.append(f"{at}: no environment {text!r} in this matrix{_suggest(text, env_ids)}")
        return None
    return text


def _name_pattern(value: object, at: str, key: str, extra: Sequence[str], problems: list[str]) -> str | None:
    """A model (probe or user model), format or loader name, or an fnmatch glob."""
    what, catalog, _ = _CATALOGS[f"{key}s"]
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
