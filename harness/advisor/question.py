"""An upgrade question as `harness check` is asked it: two environment SPECs and one model, as a matrix.

SPEC syntax (comma-separated parts; TensorFlow is required):

    2.15.1                           TensorFlow 2.15.1 with the Keras it bundles
    tf==2.15.1, tensorflow==2.15.1   the same (tensorflow-cpu is installed, as in matrices)
    tensorflow==2.16.2,keras==3.3.3  TensorFlow 2.16.2 with Keras 3.3.3
    2.16.2+keras3.3.3                the same, short
    2.16.2+tf-keras                  TensorFlow 2.16.2 with legacy tf-keras (Keras 2)
    tf>=2.16,<2.17                   pip specifiers work as in matrices
    2.12.1,python==3.9  /  2.12.1,py3.9   another Python than --python
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.agent.protocol import FORMATS, LOADERS, PROBES
from harness.errors import UsageError
from harness.matrix.problems import MAX_NAME, shown
from harness.matrix.user_models import (
    ARTIFACT_FORMATS,
    USER_FORMATS,
    USER_LOADERS,
    format_by_name,
    resavable,
    too_broad,
)

MAX_DERIVED_NAME = 64  # a model name taken from a file or function name (it names the run directory too)
DEFAULT_FACTORY_FORMAT = "keras"  # what Keras recommends since 2.13, and the full-model format Keras 3 writes
_LEGACY_NAMES = ("tf-keras", "tf_keras")
# NAME of NAME==VERSION -> (the matrix key it sets, the prefix of its value)
_NAMED = {"tf": ("tensorflow", ""), "tensorflow": ("tensorflow", ""), "tensorflow-cpu": ("tensorflow", ""),
          "keras": ("keras", ""), "tf-keras": ("keras", "tf-keras"), "tf_keras": ("keras", "tf-keras"),
          "python": ("python", ""), "py": ("python", "")}
_PART = re.compile(r"^(?P<name>[A-Za-z][A-Za-z0-9_-]*?)\s*(?P<op>===|==|~=|!=|<=|>=|<|>|=)\s*(?P<version>\S.*)$")
_SHORT = re.compile(r"^(?P<version>[0-9][0-9A-Za-z.*]*)(?:\+(?P<keras>.+))?$")
_PY = re.compile(r"^py(?:thon)?(?P<version>3\.[0-9]{1,2})$")
_SHAPE = re.compile(r"^(?P<dims>[0-9]{1,12}(?:x[0-9]{1,12})*)(?::(?P<dtype>[a-z0-9]+))?$")
_OPERATORS = re.compile(r"^(===|==|~=|!=|<=|>=|<|>)")


@dataclass(frozen=True)
class EnvRequest:
    """One side of the check, as matrix environment keys."""

    tensorflow: str
    keras: str | None = None
    python: str | None = None
    packages: tuple[str, ...] = ()  # other pins (a project's NumPy, h5py, protobuf): the matrix's `packages:`
    name: str | None = None  # the environment id, where the versions alone would not tell two apart

    def entry(self, default_python: str) -> dict[str, Any]:
        """A matrix `environments:` entry."""
        entry: dict[str, Any] = {"python": self.python or default_python, "tensorflow": self.tensorflow}
        if self.keras is not None:
            entry["keras"] = self.keras
        if self.packages:
            entry["packages"] = list(self.packages)
        if self.name is not None:
            entry["name"] = self.name
        return entry

    def tf_keras(self) -> EnvRequest | None:
        """The same TensorFlow with the matching tf-keras release, when this environment's Keras is Keras 3 (TF >=
        2.16 without tf-keras): where a file Keras 3 cannot read may still load. None otherwise, or when the
        TensorFlow release is not pinned (the tf-keras release to match would be a guess)."""
        tf = pinned_minor(self.tensorflow)
        keras = self.keras or ""
        if tf is None or tf < KERAS3_TF or keras.startswith("tf-keras"):
            return None
        major = pinned_minor(keras[len("keras"):] if keras.startswith("keras") else keras) if keras else None
        if keras and (major is None or major[0] < 3):
            return None
        return EnvRequest(tensorflow=self.tensorflow, keras="tf-keras", python=self.python, packages=self.packages,
                          name=None if self.name is None else self.name + "-tfkeras")

    def key(self, default_python: str) -> tuple[str, str, str, tuple[str, ...]]:
        """What tells two requests for the same environment apart, however they were written."""
        def norm(text: str) -> str:
            text = re.sub(r"\s+", "", text)
            return "==" + text if text[:1].isdigit() else text

        return (self.python or default_python, norm(self.tensorflow), norm(self.keras or ""),
                tuple(sorted(self.packages)))


KERAS3_TF = (2, 16)  # the first TensorFlow whose own Keras is Keras 3


def pinned_minor(spec: str) -> tuple[int, int] | None:
    """(major, minor) of a version pinned with '==' (or written bare), such as 2.16.2 or ==2.16.*; else None."""
    text = re.sub(r"\s+", "", spec)
    text = text[2:] if text.startswith("==") and not text.startswith("===") else text
    match = re.match(r"^([0-9]{1,4})\.([0-9]{1,4})(?:\.(?:[0-9]+|\*))*$", text)
    return (int(match.group(1)), int(match.group(2))) if match else None


def parse_spec(text: str, flag: str) -> EnvRequest:
    """An environment SPEC (see the module docstring); UsageError names the flag."""
    fields: dict[str, str] = {}
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise UsageError(f"{flag}: empty environment SPEC; expected e.g. tf==2.15.1 or 2.16.2+keras3.3.3")
    for part in _merge_specifier_clauses(parts):
        for key, value in _part(part, flag).items():
            if key in fields:
                raise UsageError(f"{flag} {text!r}: {key} is given twice")
            fields[key] = value
    if "tensorflow" not in fields:
        raise UsageError(f"{flag} {text!r}: no TensorFlow version; expected e.g. tf==2.15.1 or 2.16.2")
    return EnvRequest(tensorflow=fields["tensorflow"], keras=fields.get("keras"), python=fields.get("python"))


def _merge_specifier_clauses(parts: list[str]) -> list[str]:
    """'tf>=2.16', '<2.17' -> 'tf>=2.16,<2.17': a bare clause continues the part before it."""
    merged: list[str] = []
    for part in parts:
        if merged and _OPERATORS.match(part):
            merged[-1] += "," + part
        else:
            merged.append(part)
    return merged


def _part(part: str, flag: str) -> dict[str, str]:
    py, short = _PY.match(part), _SHORT.match(part)
    if py:
        return {"python": py.group("version")}
    if short:
        keras = short.group("keras")
        return {"tensorflow": short.group("version"), **({"keras": _keras_suffix(keras, part, flag)} if keras else {})}
    if part.lower() in _LEGACY_NAMES:
        return {"keras": "tf-keras"}
    match = _PART.match(part)
    if match is None:
        raise UsageError(f"{flag}: cannot read {part!r}; expected NAME==VERSION (tf, keras, tf-keras, python) or "
                         "a TensorFlow version such as 2.16.2+keras3.3.3")
    name, version = match.group("name").lower(), match.group("version").strip()
    op = "==" if match.group("op") == "=" else match.group("op")
    if name not in _NAMED or (_NAMED[name][0] == "python" and op != "=="):
        raise UsageError(f"{flag}: cannot read {part!r}; the names are tf, tensorflow, keras, tf-keras and "
                         "python (python==X.Y)")
    key, prefix = _NAMED[name]
    return {key: version if key == "python" else prefix + op + version}


def _keras_suffix(text: str, part: str, flag: str) -> str:
    """The part after '+': tf-keras[VERSION], keras[==]VERSION, or a bare Keras version."""
    lowered = text.lower()
    for legacy in _LEGACY_NAMES:
        if lowered.startswith(legacy):
            rest = text[len(legacy):]
            return "tf-keras" + (rest if not rest or _OPERATORS.match(rest) else "==" + rest)
    rest = text[len("keras"):] if lowered.startswith("keras") else text
    if re.match(r"^[0-9]", rest):
        return "==" + rest
    if _OPERATORS.match(rest):
        return rest
    raise UsageError(f"{flag}: cannot read the Keras part of {part!r}; expected +keras3.3.3 or +tf-keras")


def parse_inputs(text: str) -> str | dict[str, Any]:
    """--inputs: a .npy/.npz file, or SHAPE[:DTYPE] such as 8x64x64x1:float32 (seeded random inputs)."""
    shape = _SHAPE.match(text)
    if shape and not _exists(text):
        return {"shape": [int(n) for n in shape.group("dims").split("x")], "dtype": shape.group("dtype") or "float32"}
    return str(_path(text, "--inputs"))


def _path(text: str, flag: str) -> Path:
    """The resolved path a flag names (~ expanded); UsageError naming the flag when it cannot be one."""
    try:
        return Path(text).expanduser().resolve()
    except RuntimeError:  # ~nosuchuser, or a symbolic link loop
        raise UsageError(f"{flag} {shown(text)}: no such user's home directory, or a symbolic link loop") from None
    except (OSError, ValueError) as exc:  # a NUL byte, a name too long
        raise UsageError(f"{flag} {shown(text)}: not a usable path ({getattr(exc, 'strerror', None) or exc})") from None


def _exists(text: str) -> bool:
    try:
        return _path(text, "").exists()
    except (UsageError, OSError):
        return False


@dataclass(frozen=True)
class CodeRef:
    """'module:attribute' in a user directory."""

    root: Path
    ref: str


def code_ref(text: str, flag: str, attribute: bool) -> CodeRef:
    """FILE.py[:ATTR] (its folder is the user directory) or MODULE[:ATTR] (found from the current directory)."""
    head, sep, attr = text.rpartition(":") if ":" in text else (text, "", "")
    if attribute and not sep:
        raise UsageError(f"{flag} {text!r}: expected MODULE:FUNCTION or path/to/file.py:FUNCTION")
    if head.endswith(".py"):
        path = _path(head, flag)
        if not _exists(str(path)) or not path.is_file():
            raise UsageError(f"{flag}: file not found: {shown(str(path))}")
        return CodeRef(root=path.parent, ref=path.stem + (":" + attr if sep else ""))
    here = Path.cwd()
    broad = too_broad(here)
    if broad:  # the folder holding the module is mounted into every container
        raise UsageError(f"{flag} {text!r}: the module is looked up in the current directory {here}, which is "
                         f"{broad}: run check from the folder that holds the code, or name the file "
                         "(path/to/module.py:FUNCTION)")
    return CodeRef(root=here, ref=text)


def _is_artifact(model: str) -> bool:
    if not model.strip():  # Path("") is the current folder: it would be copied as an artifact, walked whole
        raise UsageError("--model: empty; name a saved model or MODULE:FUNCTION")
    if _exists(model):
        return not model.endswith(".py")
    if ":" in model:
        return False  # MODULE:FUNCTION or FILE.py:FUNCTION
    raise UsageError(f"--model {shown(model)}: no such file, and not MODULE:FUNCTION")


def user_model_entry(model: str, *, custom_objects: str | None, factory: str | None, inputs: str | None,
                     reference: str | None) -> dict[str, Any]:
    """The matrix `models:` entry of --model: an existing artifact (a path) or a factory (MODULE:FUNCTION)."""
    is_artifact = _is_artifact(model)
    artifact = _path(model, "--model") if is_artifact else Path(model)
    refs: dict[str, CodeRef] = {}
    if not is_artifact:
        if factory:
            raise UsageError("--factory is for an existing artifact; --model already names the factory")
        refs["factory"] = code_ref(model, "--model", attribute=True)
    elif factory:
        refs["factory"] = code_ref(factory, "--factory", attribute=True)
    if custom_objects:
        refs["custom_objects"] = code_ref(custom_objects, "--custom-objects", attribute=False)
    roots = {r.root for r in refs.values()}
    if len(roots) > 1:
        raise UsageError("--model, --factory and --custom-objects must live in one directory (it is mounted into "
                         f"the containers); found {', '.join(sorted(map(str, roots)))}")
    entry: dict[str, Any] = {key: r.ref for key, r in refs.items()}
    if roots:
        entry["path"] = str(roots.pop())
    name = artifact.name.split(".")[0] if is_artifact else refs["factory"].ref.split(":")[-1]
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip("._-")[:MAX_DERIVED_NAME] or "model"
    entry["name"] = f"{name}-model" if name in PROBES else name  # a built-in probe's name is taken
    if is_artifact:
        entry["artifact"] = str(artifact)
        if reference:
            entry["reference"] = str(_path(reference, "--reference"))
    elif reference:
        raise UsageError("--reference is for an existing artifact; a factory model's reference is what it predicts")
    if inputs:
        entry["inputs"] = parse_inputs(inputs)
    return entry


def current_route(artifact_format: str | None, fmt: str | None, has_factory: bool) -> tuple[str, str]:
    """(format, loader) of the user's current route: the artifact's format, else --format, else a .keras file."""
    chosen = artifact_format or fmt or DEFAULT_FACTORY_FORMAT
    loader = FORMATS[chosen].loader
    if LOADERS[loader].needs_code and not has_factory:
        raise UsageError(f"--format {chosen}: weights alone are loaded by rebuilding the model: give --factory")
    return chosen, loader


def add_routes(entry: dict[str, Any], fmt: str | None, unsafe: bool = False) -> None:
    """Every format a factory can save in and every loader that applies: the other routes to try.

    load_model(safe_mode=False) runs whatever code the file holds: it is tried only when `unsafe`.
    """
    if fmt is not None:
        allowed = ARTIFACT_FORMATS if "artifact" in entry else USER_FORMATS
        if fmt not in allowed:
            raise UsageError(f"--format {fmt!r}: expected one of {', '.join(allowed)}")
    if "artifact" in entry:
        if fmt is not None:
            entry["format"] = fmt
    else:
        entry["formats"] = list(USER_FORMATS)
    entry["loaders"] = [loader for loader in USER_LOADERS if (not LOADERS[loader].needs_code or "factory" in entry)
                        and (not LOADERS[loader].runs_file_code or unsafe)]


MIGRATED = "-migrated"  # the migrated model's name: the artifact's, and this


def migration_entry(entry: dict[str, Any]) -> dict[str, Any] | None:
    """The `models:` entry that migrates an existing artifact (loaded where it works, saved there again in every
    format); None for a factory's model, which every environment saves in every format already."""
    if "artifact" not in entry:
        return None
    fmt = entry.get("format") or format_by_name(Path(entry["artifact"]))
    if fmt is not None and not resavable(fmt):
        return None  # nothing gives back a Keras model from it (a .tflite file): there is no migration to try
    # Its files are loaded by the usual loaders; the serving and conversion routes, and adapting a copy for the
    # target, stay the original's own.
    loaders = [x for x in entry.get("loaders", ()) if not LOADERS[x].named_only and not LOADERS[x].adapts]
    return {"name": entry["name"][:MAX_NAME - len(MIGRATED)] + MIGRATED, "migrate": entry["name"],
            **({"loaders": loaders} if loaders else {})}


@dataclass(frozen=True)
class CheckEnvironments:
    """The environments of a check, as matrix entries (the source first), and where each --to is among them."""

    entries: list[dict[str, Any]]
    targets: list[tuple[int, int | None]]  # per --to: its entry's index, and its tf-keras environment's (or None)


def check_environments(source: EnvRequest, targets: list[EnvRequest], python: str,
                       tf_keras: bool = True) -> CheckEnvironments:
    """The source, then each target followed by the tf-keras environment beside a Keras 3 target (`tf_keras`);
    an environment asked for twice (a --to that is another's tf-keras environment) is one entry. A target that is
    the source stays a second entry, for the matrix to refuse by name; a tf-keras environment that is the source
    is not added (its routes are the ones at home)."""
    entries: list[dict[str, Any]] = [source.entry(python)]
    keys: list[tuple[str, str, str, tuple[str, ...]]] = [source.key(python)]

    def index(request: EnvRequest) -> int:
        key = request.key(python)
        if key not in keys[1:]:
            keys.append(key)
            entries.append(request.entry(python))
            return len(keys) - 1
        return keys.index(key, 1)

    placed = []
    for target in targets:
        at = index(target)
        variant = target.tf_keras() if tf_keras else None
        beside = None if variant is None or variant.key(python) == keys[0] else index(variant)
        placed.append((at, beside))
    return CheckEnvironments(entries, placed)


DEFAULT_PYTHON = "3.11"  # TensorFlow 2.12 to 2.21 all have wheels for it


@dataclass(frozen=True)
class ModelQuestion:
    """The model a check or a bisect is asked about, and how it is loaded (the flags both share)."""

    model: str
    python: str = DEFAULT_PYTHON
    inputs: str | None = None
    custom_objects: str | None = None
    factory: str | None = None
    reference: str | None = None
    format: str | None = None
    unsafe: bool = False
    loaders: tuple[str, ...] | None = None  # only these of the loaders that apply (None: every one)
    name: str | None = None  # the model's name (default: from its file or function)
    tolerance: dict[str, float] | None = None  # rtol and/or atol, where the default is not the model's
    folder: str | None = None  # a project's folder: mounted, and where the model loads from, when no code is named

    def entry(self) -> dict[str, Any]:
        """The matrix `models:` entry, with every route that applies to it (of `loaders`, when given)."""
        entry = user_model_entry(self.model, custom_objects=self.custom_objects, factory=self.factory,
                                 inputs=self.inputs, reference=self.reference)
        add_routes(entry, self.format, unsafe=self.unsafe)
        if self.loaders is not None:
            entry["loaders"] = [x for x in entry["loaders"] if x in self.loaders]
        if self.name is not None:
            entry["name"] = self.name
        if self.tolerance is not None:
            entry["tolerance"] = dict(self.tolerance)
        if self.folder is not None:
            entry.setdefault("path", self.folder)
        return entry


@dataclass(frozen=True)
class RunSettings:
    """Where a check's or a bisect's run goes and how it runs."""

    out: Path | None = None
    jobs: int = 1
    base_image: str | None = None
    cell_timeout: float = 300.0
    quiet: bool = False


@dataclass(frozen=True)
class CheckQuestion:
    """`check`: is it safe to move this model from one environment to each of the others?"""

    source: str  # --from SPEC (or how the project's side is named: 'origin/main (3f2a1c9)')
    targets: tuple[str, ...]  # --to SPEC, once or more
    model: ModelQuestion
    tf_keras: bool = True  # try the target's TensorFlow with tf-keras beside a Keras 3 target
    migrate: Path | None = None  # hand the best verified migrated file over to this folder
    migration: bool = True  # make a migrated model of an existing artifact (loaded at home, saved again there)
    # Each side already read (the source, then one per target), where SPECs do not say it: a project's files
    environments: tuple[EnvRequest | None, ...] = ()
    dependencies: dict[str, Any] | None = None  # what the project's files said (advisor/project.py), for the reports


# The loaders `adapt` tries: the plain ones a reference at home comes from, and those that adapt a copy.
ADAPT_LOADERS = ("load_model", "load_model_nocompile", "rebuild", "model_from_json",
                 *(name for name, spec in LOADERS.items() if spec.adapts))


@dataclass(frozen=True)
class AdaptQuestion:
    """`adapt`: a copy of this saved model edited for the target's Keras, verified there, written to `out`."""

    target: str  # --to SPEC
    model: ModelQuestion
    source: str | None = None  # --from SPEC: where its reference predictions come from (None: told by the file)
    out: Path | None = None  # --out FILE (None: beside the working directory, named after the model)


AXES = ("tensorflow", "keras")  # what changes between the releases a bisect walks


@dataclass(frozen=True)
class BisectQuestion:
    """`bisect`: which release between two broke this model's route?"""

    source: str  # --from SPEC: where the model works
    target: str  # --to SPEC: where it breaks (or may)
    model: ModelQuestion
    axis: str | None = None  # one of AXES; None: tensorflow when the two TensorFlow versions differ, else keras
    releases: str = "minor"  # one of releases.GRANULARITIES
    every: bool = False  # probe every listed release, not only what a binary search needs
