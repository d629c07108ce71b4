"""`models:` entries that are mappings: a user's own factory or existing artifact, validated with key paths.

Each becomes a ModelSpec, the same concept as a built-in probe: its code references name the
user's modules (mounted read-only into the containers), its origin the files the host stages.
Every file and module is checked here, before anything is built: a missing one is exit 2.
User code is never imported on the host (it may import TensorFlow); modules are found by file
and read with `ast` to catch a misspelt function name.
"""

from __future__ import annotations

import ast
import math
import re
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

import numpy as np

from harness.agent.protocol import (
    FORMATS,
    LOADERS,
    PROBES,
    Code,
    Migration,
    ModelSpec,
    Origin,
    RandomInputs,
    ReferenceEnv,
    applies,
    missing,
    routes,
    trust_order,
    user_code_dir,
)
from harness.matrix.problems import (
    MAX_NAME,
    MISSING,
    Raw,
    check_keys,
    existing_file,
    finite,
    found,
    host_path,
    shown,
    string,
    suggest,
    tolerance,
)
from harness.untrusted import MAX_DIMS, UnsafeFile, npy_header, odd_entry, read_named

USER_KEYS = ("name", "path", "factory", "custom_objects", "predict", "inputs", "labels", "tolerance", "formats",
             "loaders", "artifact", "format", "architecture", "reference", "migrate")
MIGRATION_KEYS = ("name", "migrate", "formats", "loaders", "tolerance")  # the rest comes from the artifact
ARTIFACT_FORMATS = ("h5", "keras", "savedmodel", "weights_h5", "json", "tflite")
USER_FORMATS = tuple(name for name, spec in FORMATS.items() if not spec.named_only)
# Probe-only loaders, and why a user model does without them.
PROBE_LOADERS = {name: spec.probes_only for name, spec in LOADERS.items() if spec.probes_only}
USER_LOADERS = tuple(name for name in LOADERS if name not in PROBE_LOADERS)
USER_DEFAULT_EXTRA = tuple(name for name, spec in LOADERS.items() if spec.users_default)  # beside the matrix's
MAX_SOURCE = 8 << 20  # a module read with ast to check a name it defines; a larger one is not parsed here
MAX_VALUES = 1 << 26  # inputs the host prepares for one model (256 MiB of float32): a generous bound
MAX_BYTES = 1 << 30  # and of bytes: a value of a wide string or void dtype holds many
MAX_MEMBERS = 1000  # arrays in one .npz: a model's named inputs
DTYPES = ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool")
HASHSEED_HINT = ("the predict hook gives other numbers in a fresh process of the same environment (saved under "
                 "PYTHONHASHSEED=0, loaded under 1): a class or vocabulary order built from a set or dict of strings "
                 "(list(set(...))) changes between processes; sort it, or store the list with the model")
CROSS_HOOK_HINT = ("predictions through the predict hook differ; if this model's same-environment cells drift too, the "
                   "hook's own ordering is the cause, not the upgrade")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_CODE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*(:[A-Za-z_]\w*)?$")


@dataclass(frozen=True)
class Context:
    """What a user model entry is checked against."""

    base: Path  # the matrix file's directory: relative paths start there
    formats: tuple[str, ...]  # the matrix's formats and loaders: the defaults
    loaders: tuple[str, ...]
    env_ids: tuple[str, ...]  # an artifact's reference environment is one of them (default: the first)
    earlier: tuple[ModelSpec, ...] = ()  # the models listed before this entry: a migration names one of them


def parse_user_model(entry: Raw, at: str, ctx: Context, problems: list[str]) -> ModelSpec | None:
    """A user's model from its `models:` mapping; None (with the problems named by key path) when invalid."""
    return _user_model(entry, at, ctx, problems)


def artifact_sources(models: Sequence[ModelSpec], env_ids: Sequence[str]) -> list[str]:
    """Pseudo-environment ids of the existing artifacts among the models: sources that are no environment."""
    return [source for m in models for source in m.homes(env_ids) if source not in env_ids]


def reference_loaders(model: ModelSpec) -> list[str]:
    """The loaders whose predictions in the reference environment are an existing artifact's reference, in turn:
    the one the matrix names, else the format's usual loader, then the others tried on it (when the usual one
    writes nothing there, as for a SavedModel only tf.saved_model.load reads), in trust order (spec.trust_order)."""
    ref = model.origin.reference_env if model.origin else None
    if ref and ref.loader:
        return [ref.loader]
    fmt = model.artifact_format or "h5"
    tried = [x for x in model.loaders or () if applies(model, fmt, x)]
    usual = FORMATS[fmt].loader
    candidates = [usual, *tried] if not tried or usual in tried else tried
    return sorted(trust_order(dict.fromkeys(candidates)), key=lambda x: x != usual)


def reference_loader(model: ModelSpec) -> str:
    """The loader whose predictions in the reference environment are an artifact's reference (when it writes some)."""
    return reference_loaders(model)[0]


# ---------------------------------------------------------------------------- one entry


def _user_model(entry: Raw, at: str, ctx: Context, problems: list[str]) -> ModelSpec | None:
    if "migrate" in entry:
        return _migration(entry, at, ctx, problems)
    before = len(problems)
    check_keys(entry, USER_KEYS, at, problems)
    name = _name(entry.get("name", MISSING), f"{at}.name", problems)
    if "factory" not in entry and "artifact" not in entry:
        problems.append(f"{at}: give 'factory' (module:function building the model in each environment) or "
                        "'artifact' (an existing model file; a factory beside it adds the rebuild route)")
        return None
    root = _user_dir(entry, at, ctx.base, problems)
    refs = {key: _code(entry[key], f"{at}.{key}", root, key != "custom_objects", problems)
            for key in ("factory", "custom_objects", "predict") if key in entry}
    inputs, random = _inputs(entry.get("inputs", MISSING), f"{at}.inputs", ctx.base, problems)
    name = name or "?"
    labels = _file(entry["labels"], f"{at}.labels", ctx.base, (".npy",), problems) if "labels" in entry else None
    hook = refs.get("predict")
    common = ModelSpec(
        name=name, kind="factory",
        code=Code(root=user_code_dir(name) if root else None, factory=refs.get("factory"),
                  custom_objects=refs.get("custom_objects"), predict=hook),
        hazards=("hash-seed",) if hook else (),
        drift_hint=CROSS_HOOK_HINT if hook else None, drift_hint_home=HASHSEED_HINT if hook else None,
        tolerance=tolerance(entry["tolerance"], problems, f"{at}.tolerance") if "tolerance" in entry else None,
        origin=Origin(root=str(root) if root else None, inputs=inputs, random_inputs=random, labels=labels),
    )
    model = (_artifact(entry, at, common, ctx, problems) if "artifact" in entry
             else _factory(entry, at, common, ctx, problems))
    if model is not None:
        model = replace(model, loaders=_loaders(entry, at, model, ctx, problems), description=_description(model))
        if len(problems) == before:
            _check_cells(model, at, ctx, problems)
    return model if len(problems) == before else None


# ---------------------------------------------------------------------------- a migrated model


def _migration(entry: Raw, at: str, ctx: Context, problems: list[str]) -> ModelSpec | None:
    """`migrate: NAME`: the existing artifact NAME, loaded where its reference comes from and saved again there in
    every format; its files are loaded everywhere and compared with the artifact's own reference."""
    before = len(problems)
    for key in entry:
        if key in USER_KEYS and key not in MIGRATION_KEYS:
            problems.append(f"{at}.{key}: not for a migrated model: it takes its code, inputs and reference from "
                            "the artifact it migrates")
        elif key not in MIGRATION_KEYS:
            problems.append(f"{at}.{key}: unknown key{suggest(key, MIGRATION_KEYS)}")
    name = _name(entry.get("name", MISSING), f"{at}.name", problems)
    original = _migrated_artifact(entry["migrate"], f"{at}.migrate", ctx, problems)
    if original is None or name is None or len(problems) > before or not ctx.env_ids:
        return None  # (no environment: their problems are said where they are listed)
    fmt = original.artifact_format or "h5"
    # The loaders a migration tries at home, in turn: the first that gives back a Keras model makes it.
    candidates = tuple(trust_order(x for x in original.loaders or () if LOADERS[x].resaves
                                   and (fmt, x) in routes(original)))
    if not candidates:
        problems.append(f"{at}.migrate: none of {original.name!r}'s loaders {list(original.loaders or ())} gives "
                        "back a Keras model to save again")
        return None
    home = original.home(ctx.env_ids) or ctx.env_ids[0]
    origin = original.origin or Origin()
    model = ModelSpec(
        name=name, kind="migration", code=replace(original.code, root=user_code_dir(name) if origin.root else None),
        description=f"{original.name}'s {FORMATS[fmt].words} loaded in {home} and saved there again",
        tolerance=(tolerance(entry["tolerance"], problems, f"{at}.tolerance") if "tolerance" in entry
                   else original.tolerance),
        evaluate=False, origin=Origin(root=origin.root),
        migrates=Migration(model=original.name, env=home, format=fmt, loaders=candidates, weights=original.weights))
    loaders = _loaders(entry, at, replace(model, code=original.code), ctx, problems) if "loaders" in entry \
        else original.loaders or ()
    chosen = _choices(entry, "formats", at, allowed=USER_FORMATS, refused={"seed": "only probes are rebuilt from "
                                                                                  "a seed"}, problems=problems)
    model = replace(model, loaders=loaders)
    # By default every format some loader reads (weights alone only where a factory rebuilds the model).
    formats = chosen if chosen is not None else tuple(f for f in USER_FORMATS if any(
        applies(model, f, x) for x in loaders))
    model = replace(model, formats=formats)
    if len(problems) == before:
        _check_cells(model, at, ctx, problems)
    return model if len(problems) == before else None


def _migrated_artifact(value: object, at: str, ctx: Context, problems: list[str]) -> ModelSpec | None:
    """The existing artifact a migration names: listed before it."""
    name = string(value, at, problems)
    if name is None:
        return None
    found = next((m for m in ctx.earlier if m.name == name), None)
    if found is None:
        artifacts = [m.name for m in ctx.earlier if m.is_existing_file]
        problems.append(f"{at}: no existing artifact {name!r} is listed before this entry"
                        f"{suggest(name, artifacts)}")
    elif not found.is_existing_file:
        problems.append(f"{at}: {name!r} is not an existing artifact ('artifact:'); a model built in every "
                        "environment is saved in every format already")
        found = None
    return found


def _description(model: ModelSpec) -> str:
    if not model.is_existing_file:
        return f"built by {model.code.factory} in every environment"
    artifact = Path(model.origin.artifact if model.origin and model.origin.artifact else "").name
    return f"existing {model.artifact_format} artifact {artifact}, loaded in every environment"


def _check_cells(model: ModelSpec, at: str, ctx: Context, problems: list[str]) -> None:
    """Some loader must read the model, and an artifact's reference must come from a cell that runs."""
    if not routes(model):
        problems.append(f"{at}: no loader of {list(model.loaders or ())} reads the formats "
                        f"{list(model.formats or ())}")
    ref = model.origin.reference_env if model.origin else None
    if ref is None:
        return
    if ref.env not in ctx.env_ids:
        problems.append(f"{at}.reference.env: no environment {ref.env!r} in this matrix{suggest(ref.env, ctx.env_ids)}")
    elif (model.artifact_format, reference_loader(model)) not in routes(model):
        problems.append(f"{at}.reference.loader: {reference_loader(model)!r} is not among the loaders tried on "
                        f"this {model.artifact_format} artifact: {list(model.loaders or ())}")


def _name(value: object, at: str, problems: list[str]) -> str | None:
    if value is MISSING:
        problems.append(f"{at}: required key missing; name the model (it names files and report rows)")
        return None
    text = string(value, at, problems)
    if text is None:
        return None
    if not _NAME.match(text) or len(text) > MAX_NAME:
        problems.append(f"{at}: expected at most {MAX_NAME} letters, digits, '.', '_' or '-', found {shown(text)}")
    elif text in PROBES:
        problems.append(f"{at}: {text!r} is the name of a built-in probe; choose another name")
    else:
        return text
    return None


def _user_dir(entry: Raw, at: str, base: Path, problems: list[str]) -> Path | None:
    needs = [key for key in ("factory", "custom_objects", "predict") if key in entry]
    if "path" not in entry:
        if needs:
            problems.append(f"{at}.path: required key missing; {needs[0]} names a module: give the directory "
                            "that holds it (mounted read-only into the containers)")
        return None
    path = host_path(entry["path"], f"{at}.path", base, problems)
    if path is None:
        return None
    if not path.is_dir():
        problems.append(f"{at}.path: directory not found: {path} (relative paths start at the matrix file's "
                        "directory)")
        return None
    broad = too_broad(path)
    if broad:
        problems.append(f"{at}.path: {path} is {broad}; it is mounted into every container: name the folder "
                        "that holds the model's code")
        return None
    return path


def too_broad(folder: Path) -> str | None:
    """Why a folder is too broad to mount into containers (the file system's root, a home directory or
    what holds one), or None."""
    if folder == Path(folder.anchor):
        return "the file system's root"
    try:
        home = Path.home().resolve()
    except (RuntimeError, KeyError, OSError):  # no home directory known
        return None
    if home == folder:
        return "your home directory"
    return "a folder holding your home directory" if home.is_relative_to(folder) else None


def _code(value: object, at: str, root: Path | None, attribute: bool, problems: list[str]) -> str | None:
    """'module:attribute' (or 'module' where allowed) whose module file exists below root."""
    text = string(value, at, problems)
    if text is None:
        return None
    if not _CODE.match(text) or (attribute and ":" not in text):
        shape = "module:function" if attribute else "module:attribute or module"
        problems.append(f"{at}: expected {shape} such as 'my_models:build', found {text!r}")
        return None
    if root is None:
        return text  # the missing path: was reported
    module, _, name = text.partition(":")
    rel = Path(*module.split("."))
    source = next((p for p in (root / rel.with_suffix(".py"), root / rel / "__init__.py") if p.is_file()), None)
    if source is None:
        problems.append(f"{at}: no module {module!r} in {root} (looked for {rel.with_suffix('.py')} and "
                        f"{rel / '__init__.py'})")
        return None
    names = _top_level_names(source)
    if name and names is not None and name not in names:
        problems.append(f"{at}: {source.name} defines no {shown(name)}{suggest(name, sorted(names))}")
        return None
    return text


def _top_level_names(source: Path) -> set[str] | None:
    """Names a module binds at top level, or None when that cannot be told without running it."""
    try:
        tree = ast.parse(read_named(source, MAX_SOURCE).decode("utf-8"))
    except (SyntaxError, UnicodeDecodeError, OSError, ValueError, RecursionError, MemoryError, UnsafeFile):
        return None  # importing it in the container will say what is wrong (UnsafeFile: too large to parse here)
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            if any(alias.name == "*" for alias in node.names):
                return None
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif not isinstance(node, ast.Expr):
            return None  # conditional or looped definitions: do not guess
    return names


def _file(value: object, at: str, base: Path, suffixes: tuple[str, ...], problems: list[str]) -> str | None:
    """Absolute path of an existing file with one of the suffixes; relative paths start at the matrix file."""
    path = existing_file(value, at, base, problems)
    if path is None:
        return None
    if suffixes and path.suffix.lower() not in suffixes:
        problems.append(f"{at}: expected a {' or '.join(suffixes)} file, found {path.name!r}")
        return None
    if path.suffix.lower() not in (".npy", ".npz"):
        return str(path)
    try:
        values, size = _values(path)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError,
            UnsafeFile) as exc:
        problems.append(f"{at}: {path.name} is not a readable NumPy file without pickles ({str(exc)[:200]})")
        return None
    if values > MAX_VALUES or size > MAX_BYTES:
        problems.append(f"{at}: {path.name} holds {values} values ({size} bytes), more than the {MAX_VALUES} "
                        f"values or {MAX_BYTES} bytes the host prepares for a model")
        return None
    return str(path)


def _values(path: Path) -> tuple[int, int]:
    """How many values, and bytes, the arrays of a .npy or .npz file hold, read from their headers only.

    The host reads an .npz member the way numpy can (stored or deflated, not encrypted, a .npy each): a member
    in another compression or encrypted is refused here, before anything is built, rather than when staged.
    """
    if path.suffix.lower() == ".npy":
        with path.open("rb") as fh:
            return _header_size(fh)
    values = size = 0
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
        if len(members) > MAX_MEMBERS:
            raise ValueError(f"{len(members)} arrays, more than {MAX_MEMBERS}")
        for info in members:
            if info.flag_bits & 0x1 or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise ValueError(f"{info.filename[:60]!r} is encrypted or compressed in a way numpy cannot read")
            if not info.filename.endswith(".npy"):
                raise ValueError(f"{info.filename[:60]!r} is not a .npy array")
            with archive.open(info) as member:
                more_values, more_bytes = _header_size(member)
            values, size = values + more_values, size + more_bytes
    return values, size


def _header_size(fh: IO[bytes]) -> tuple[int, int]:
    """(values, bytes) an array's .npy header declares; every dimension bounded, a zero-size array's too."""
    shape, _, dtype = npy_header(fh)
    if len(shape) > MAX_DIMS or any(n < 0 for n in shape) or math.prod(max(n, 1) for n in shape) > MAX_VALUES:
        raise ValueError(f"its header declares the shape {str(shape)[:80]}")
    values = math.prod(shape, start=1)
    return values, values * dtype.itemsize


def _inputs(value: object, at: str, base: Path, problems: list[str]) -> tuple[str | None, RandomInputs | None]:
    if value is MISSING:
        return None, None
    if not isinstance(value, dict):
        return _file(value, at, base, (".npy", ".npz"), problems), None
    return None, _random_inputs(value, at, problems)


def _random_inputs(value: Raw, at: str, problems: list[str]) -> RandomInputs | None:
    check_keys(value, ("shape", "dtype", "low", "high"), at, problems)
    shape = value.get("shape", MISSING)
    if not isinstance(shape, list) or not shape or not all(
            isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape):
        problems.append(f"{at}.shape: expected a list of positive whole numbers like [32, 16], found {found(shape)}")
        return None
    if math.prod(shape) > MAX_VALUES:
        problems.append(f"{at}.shape: {shape} is {math.prod(shape)} values, more than the {MAX_VALUES} the host "
                        "prepares for a model")
        return None
    dtype = value.get("dtype", "float32")
    if dtype not in DTYPES:
        problems.append(f"{at}.dtype: unknown dtype {dtype!r}{suggest(dtype, DTYPES)}")
        return None
    low, high = (_bound(value.get(key), f"{at}.{key}", str(dtype), problems) for key in ("low", "high"))
    if low is MISSING or high is MISSING:
        return None
    if low is not None and high is not None and not low < high:
        problems.append(f"{at}: expected low < high, found low {low!r} and high {high!r}")
        return None
    return RandomInputs(shape=tuple(shape), dtype=str(dtype), low=low, high=high)


def _bound(value: object, at: str, dtype: str, problems: list[str]) -> Any:
    """low or high of random inputs: a finite number, whole and in range for an integer dtype; MISSING if not."""
    if value is None:
        return None
    number = finite(value)
    if number is None:
        problems.append(f"{at}: expected a finite number, found {found(value)}")
        return MISSING
    kind = np.dtype(dtype).kind
    if kind in "iu":
        limits = np.iinfo(dtype)
        if number != int(number) or not limits.min <= number <= limits.max + 1:
            problems.append(f"{at}: expected a whole number from {limits.min} to {limits.max + 1} for {dtype}, "
                            f"found {found(value)}")
            return MISSING
    return value


def _factory(entry: Raw, at: str, model: ModelSpec, ctx: Context, problems: list[str]) -> ModelSpec:
    for key in ("format", "architecture", "reference"):
        if key in entry:
            why = ("its reference is what the factory's model predicts in each environment" if key == "reference"
                   else "it belongs to an existing artifact")
            problems.append(f"{at}.{key}: not for a factory model: {why}")
    formats = _choices(entry, "formats", at, allowed=USER_FORMATS,
                       refused={"seed": "only probes are rebuilt from a seed"}, problems=problems)
    default = tuple(f for f in ctx.formats if f in USER_FORMATS)
    origin = model.origin or Origin()
    return replace(model, formats=formats if formats is not None else default,
                   has_inputs=bool(origin.inputs or origin.random_inputs), has_labels=bool(origin.labels))


def _loaders(entry: Raw, at: str, model: ModelSpec, ctx: Context, problems: list[str]) -> tuple[str, ...]:
    chosen = _choices(entry, "loaders", at, allowed=USER_LOADERS, refused=PROBE_LOADERS, problems=problems)
    if chosen is None:
        # The loaders users' models try by default join the matrix's where they read one of the model's formats.
        extra = (x for x in USER_DEFAULT_EXTRA if set(LOADERS[x].reads) & set(model.formats or ()))
        default = dict.fromkeys((*ctx.loaders, *extra))
        return tuple(name for name in default if name in USER_LOADERS and missing(model, name) is None)
    problems += [f"{at}.loaders: {name!r} needs {lacks}" for name in chosen if (lacks := missing(model, name))]
    return chosen


def _choices(entry: Raw, key: str, at: str, *, allowed: tuple[str, ...], refused: dict[str, str],
             problems: list[str]) -> tuple[str, ...] | None:
    """A non-empty list of names from `allowed`; None when the key is absent."""
    if key not in entry:
        return None
    raw = entry[key]
    if not isinstance(raw, list) or not raw:
        problems.append(f"{at}.{key}: expected a non-empty list of names, found {found(raw)}")
        return ()
    out: list[str] = []
    for j, name in enumerate(raw):
        where = f"{at}.{key}[{j}]"
        if isinstance(name, str) and name in refused:
            problems.append(f"{where}: {name!r} is for probes only: {refused[name]}")
        elif not isinstance(name, str) or name not in allowed:
            problems.append(f"{where}: unknown {key[:-1]} {name!r}{suggest(name, allowed)}")
        elif name not in out:
            out.append(name)
    return tuple(out)


def _artifact(entry: Raw, at: str, model: ModelSpec, ctx: Context, problems: list[str]) -> ModelSpec | None:
    origin = model.origin or Origin()
    if "formats" in entry:
        problems.append(f"{at}.formats: an existing artifact is loaded in its own format; use 'format' to name it")
    if "labels" in entry:
        problems.append(f"{at}.labels: not for an existing artifact: evaluate() needs the source's figures, which "
                        "only a factory model has")
    if "inputs" not in entry:
        problems.append(f"{at}.inputs: required for an existing artifact: a .npy/.npz file or "
                        "{shape: [...], dtype: ...}")
    path = host_path(entry["artifact"], f"{at}.artifact", ctx.base, problems)
    if path is None:
        return None
    if not path.exists():
        problems.append(f"{at}.artifact: not found: {path} (relative paths start at the matrix file's directory)")
        return None
    odd = odd_entry(path)
    if odd:
        problems.append(f"{at}.artifact: {odd}")
        return None
    architecture = (_file(entry["architecture"], f"{at}.architecture", ctx.base, (".json",), problems)
                    if "architecture" in entry else None)
    fmt = _artifact_format(path, entry.get("format"), architecture, at, problems)
    if fmt and FORMATS[fmt].weights_only and not model.code.factory:
        problems.append(f"{at}: {path.name} holds weights only: give 'architecture' (its model JSON) or a "
                        "'factory' that rebuilds the model")
    reference, reference_env = _reference(entry.get("reference", MISSING), f"{at}.reference", ctx.base, problems)
    if reference is None and reference_env is None and ctx.env_ids:
        reference_env = ReferenceEnv(env=ctx.env_ids[0])
    return replace(model, kind="artifact", formats=(fmt,) if fmt else (), artifact_format=fmt,
                   weights=path.name if architecture else None,
                   origin=replace(origin, artifact=str(path), architecture=architecture, reference=reference,
                                  reference_env=reference_env))


_SUFFIX_FORMATS = ((".keras", "keras"), (".weights.h5", "weights_h5"), (".h5", "h5"), (".hdf5", "h5"),
                   (".tflite", "tflite"))


def _artifact_format(path: Path, explicit: object, architecture: str | None, at: str,
                     problems: list[str]) -> str | None:
    """The artifact's format: as named by `format`, else told by its name and the keys beside it."""
    if explicit is not None:
        if explicit in ARTIFACT_FORMATS:
            return str(explicit)
        problems.append(f"{at}.format: unknown artifact format {explicit!r}{suggest(explicit, ARTIFACT_FORMATS)}")
    elif path.is_dir():
        if (path / "saved_model.pb").is_file():
            return "savedmodel"
        problems.append(f"{at}.artifact: {path} is a directory but not a SavedModel (no saved_model.pb)")
    elif architecture is not None:
        return "json"
    else:
        fmt = format_by_name(path)
        if fmt is not None:
            return fmt
        problems.append(f"{at}.artifact: cannot tell the format of {path.name!r} from its name; name it with "
                        f"{at}.format, one of {', '.join(ARTIFACT_FORMATS)}")
    return None


def format_by_name(path: Path) -> str | None:
    """The artifact format a file's name says (a SavedModel folder's is told by its contents), or None."""
    return next((f for suffix, f in _SUFFIX_FORMATS if path.name.lower().endswith(suffix)), None)


def resavable(fmt: str) -> bool:
    """Whether some loader gives back a Keras model from this format: a migration can start from it."""
    return any(spec.resaves and fmt in spec.reads for spec in LOADERS.values())


def _reference(value: object, at: str, base: Path, problems: list[str]) -> tuple[str | None, ReferenceEnv | None]:
    if value is MISSING:
        return None, None
    if not isinstance(value, dict):
        return _file(value, at, base, (".npy",), problems), None
    check_keys(value, ("env", "loader"), at, problems)
    env = string(value.get("env"), f"{at}.env", problems)
    loader = value.get("loader")
    if loader is not None and loader not in USER_LOADERS:
        problems.append(f"{at}.loader: unknown loader {loader!r}{suggest(loader, USER_LOADERS)}")
        return None, None
    return None, None if env is None else ReferenceEnv(env=env, loader=loader)
