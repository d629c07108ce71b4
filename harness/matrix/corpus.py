"""A corpus manifest (`corpus:` in a matrix): pinned public model files, validated with key paths, and their cache.

Every file is a member of a distribution (a wheel or an sdist) on the package index, pinned by the
distribution's sha256 and the member's own; the manifest says its inputs (made deterministically),
its home (the environment where it is known to load, as matrix environment keys), its licence and,
for a weights-only file, the package code that rebuilds it. harness/corpus.py fetches the files into
the cache laid out here; a matrix naming the corpus reads only that cache (nothing is downloaded at run
time), and every fetched file becomes an existing-artifact model whose reference is what its home
predicts, so each file is checked from its home into every environment.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.agent.protocol import FORMATS, Tolerance, random_array, sha256_file
from harness.errors import MatrixError, UsageError
from harness.matrix.environments import Defaults, parse_environments
from harness.matrix.model import CorpusEntry, CorpusPlan, Environment, Matrix
from harness.matrix.problems import MISSING, Raw, check_keys, existing_file, found, string, suggest, tolerance

CORPUS_KEYS = ("name", "files")
FILE_KEYS = ("name", "package", "version", "licence", "dist", "member", "format", "kind", "saved_by", "home",
             "no_home", "inputs", "tolerance", "architecture", "code", "packages", "notes")
INPUT_KEYS = ("name", "shape", "dtype", "low", "high", "integers", "value")
CODE_KEYS = ("members", "shim", "factory", "custom_objects")
HOME_KEYS = ("python", "tensorflow", "keras")
CORPUS_FORMATS = ("h5", "keras", "savedmodel", "weights_h5", "tflite")  # what a file in a distribution can be
DTYPES = ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool")
MAX_INPUT_VALUES = 1 << 24
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_MEMBER = re.compile(r"^[A-Za-z0-9_.+-]+(/[A-Za-z0-9_.+-]+)*/?$")
_CODE_REF = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*(:[A-Za-z_]\w*)?$")
_DIST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+!-]*\.(whl|zip|tar\.gz|tgz|tar\.bz2)$")
SHIMS = "code"  # beside the manifest: small factories that call a package's own builder with its arguments


@dataclass(frozen=True)
class InputSpec:
    """One input of a file: seeded random values of a shape, or literal values (graph row splits)."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    low: float | None = None
    high: float | None = None
    integers: bool = False  # whole numbers in a float dtype (token ids fed to a float input)
    value: tuple[Any, ...] | None = None

    def array(self, seed: int) -> Any:
        """The input's values, the same on every host."""
        import numpy as np

        if self.value is not None:
            return np.asarray(self.value, dtype=self.dtype).reshape(self.shape)
        if self.integers:
            return random_array(list(self.shape), "int64", self.low, self.high, seed=seed).astype(self.dtype)
        return random_array(list(self.shape), self.dtype, self.low, self.high, seed=seed)


@dataclass(frozen=True)
class Member:
    """A path inside a distribution: one file with its sha256, or a SavedModel folder with each file's."""

    path: str
    sha256: str | None = None
    files: tuple[tuple[str, str], ...] = ()  # (path below the folder, sha256)

    @property
    def is_dir(self) -> bool:
        """A folder of files (a SavedModel)."""
        return bool(self.files)

    def wanted(self) -> list[tuple[str, str, str]]:
        """(path in the archive, path below the extracted member, sha256) of every file to extract."""
        if not self.is_dir:
            return [(self.path, Path(self.path).name, self.sha256 or "")]
        base = self.path.rstrip("/")
        return [(f"{base}/{rel}", f"{Path(base).name}/{rel}", digest) for rel, digest in self.files]


@dataclass(frozen=True)
class CodeSpec:
    """The package code that rebuilds a weights-only file (or defines a file's custom layers)."""

    members: tuple[tuple[str, str], ...] = ()  # (path in the distribution, sha256): extracted, importable
    shim: str | None = None  # a file in the corpus's code folder, beside the members
    factory: str | None = None  # module:function
    custom_objects: str | None = None  # module or module:attribute


@dataclass(frozen=True)
class CorpusFile:
    """One pinned model file."""

    name: str
    package: str
    version: str
    licence: str
    dist: str
    dist_sha256: str
    member: Member
    format: str
    kind: str
    saved_by: str
    home: tuple[tuple[str, str], ...] | None  # matrix environment keys; None: no environment here reads it
    no_home: str | None
    inputs: tuple[InputSpec, ...]
    tolerance: Tolerance | None = None
    architecture: Member | None = None  # the architecture JSON beside a weights file
    code: CodeSpec | None = None
    packages: tuple[str, ...] = ()  # what its code imports beyond TensorFlow (added to a corpus matrix's images)
    notes: str = ""

    def home_words(self) -> str:
        """'python 3.11, tensorflow 2.15.1' or why it has none."""
        if self.home is None:
            return "no home here: " + (self.no_home or "")
        return ", ".join(f"{k} {v}" for k, v in self.home)

    def description(self) -> str:
        """What a report says of it."""
        return (f"{self.package} {self.version}: {self.member.path} ({self.format}, {self.saved_by}; "
                f"{self.licence})")


@dataclass(frozen=True)
class Corpus:
    """A validated corpus manifest."""

    name: str
    path: str
    sha256: str
    files: tuple[CorpusFile, ...]

    def file(self, name: str) -> CorpusFile:
        """The file of this name."""
        return next(f for f in self.files if f.name == name)


# ---------------------------------------------------------------------------- the manifest


def load_corpus(path: str | Path) -> Corpus:
    """Read and validate a corpus manifest; MatrixError lists every problem by key path."""
    from harness.matrix.source import load_yaml, read_bytes

    where = str(path)
    raw = read_bytes(where)
    return parse_corpus(load_yaml(raw, where), path=where, sha256=hashlib.sha256(raw).hexdigest())


def parse_corpus(data: object, *, path: str, sha256: str) -> Corpus:
    """Validate already-loaded YAML; raise MatrixError naming every problem's key."""
    problems: list[str] = []
    if not isinstance(data, dict):
        raise MatrixError(path, [f"top level: expected a mapping with 'files', found {found(data)}"])
    check_keys(data, CORPUS_KEYS, "", problems)
    raw_files = data.get("files", MISSING)
    files: list[CorpusFile] = []
    if not isinstance(raw_files, list) or not raw_files:
        problems.append(f"files: expected a non-empty list of model files, found "
                        f"{'nothing' if raw_files is MISSING else found(raw_files)}")
    else:
        for i, entry in enumerate(raw_files):
            parsed = _file(entry, f"files[{i}]", problems)
            if parsed is None:
                continue
            if any(f.name == parsed.name for f in files):
                problems.append(f"files[{i}].name: {parsed.name!r} is listed twice")
                continue
            files.append(parsed)
    name = data.get("name", Path(path).parent.name or "corpus")
    if not isinstance(name, str) or not _NAME.match(name):
        problems.append(f"name: expected letters, digits, '.', '_' or '-', found {found(name)}")
    if problems:
        raise MatrixError(path, problems)
    return Corpus(name=str(name), path=path, sha256=sha256, files=tuple(files))


def _file(entry: object, at: str, problems: list[str]) -> CorpusFile | None:
    if not isinstance(entry, dict):
        problems.append(f"{at}: expected a mapping, found {found(entry)}")
        return None
    before = len(problems)
    check_keys(entry, FILE_KEYS, at, problems)
    for key in ("name", "package", "version", "licence", "dist", "member", "format", "kind", "saved_by", "home",
                "inputs"):
        if key not in entry:
            problems.append(f"{at}.{key}: required key missing")
    if len(problems) > before:
        return None
    name = _text(entry["name"], f"{at}.name", _NAME, "letters, digits, '.', '_' or '-'", problems)
    texts = {key: _version(entry[key], f"{at}.{key}", problems) if key == "version" else
             string(entry[key], f"{at}.{key}", problems) for key in ("package", "version", "licence", "kind",
                                                                    "saved_by")}
    dist, dist_sha = _dist(entry["dist"], f"{at}.dist", problems)
    member = _member(entry["member"], f"{at}.member", problems)
    fmt = entry["format"]
    if fmt not in CORPUS_FORMATS:
        problems.append(f"{at}.format: unknown format {found(fmt)}{suggest(fmt, CORPUS_FORMATS)}")
    elif member is not None and member.is_dir != FORMATS[fmt].folder:
        problems.append(f"{at}.member: a {fmt} member is " + ("a folder: give 'files'" if FORMATS[fmt].folder
                                                              else "one file: give 'sha256', not 'files'"))
    home, no_home = _home(entry, at, problems)
    inputs = _inputs(entry["inputs"], f"{at}.inputs", problems)
    architecture = _member(entry["architecture"], f"{at}.architecture", problems) if "architecture" in entry \
        else None
    code = _code(entry["code"], f"{at}.code", problems) if "code" in entry else None
    if fmt in FORMATS and FORMATS[fmt].weights_only and architecture is None and (code is None or code.factory is None):
        problems.append(f"{at}: a {fmt} file holds weights only: it needs 'architecture' (its model JSON) or 'code' "
                        "with a 'factory'")
    packages = _strings(entry.get("packages", []), f"{at}.packages", problems)
    notes = entry.get("notes", "")
    if not isinstance(notes, str):
        problems.append(f"{at}.notes: expected a string, found {found(notes)}")
    tol = tolerance(entry["tolerance"], problems, f"{at}.tolerance") if "tolerance" in entry else None
    if len(problems) > before:
        return None
    assert name and dist and dist_sha and member and inputs is not None
    return CorpusFile(name=name, package=str(texts["package"]), version=str(texts["version"]),
                      licence=str(texts["licence"]), dist=dist, dist_sha256=dist_sha, member=member, format=str(fmt),
                      kind=str(texts["kind"]), saved_by=str(texts["saved_by"]), home=home, no_home=no_home,
                      inputs=inputs, tolerance=tol, architecture=architecture, code=code, packages=packages,
                      notes=str(notes))


def _text(value: object, at: str, pattern: re.Pattern[str], what: str, problems: list[str]) -> str | None:
    if isinstance(value, str) and pattern.match(value):
        return value
    problems.append(f"{at}: expected {what}, found {found(value)}")
    return None


def _version(value: object, at: str, problems: list[str]) -> str | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        problems.append(f'{at}: found the number {value!r}; quote versions ("{value}")')
        return None
    return string(value, at, problems)


def _sha(value: object, at: str, problems: list[str]) -> str | None:
    return _text(value, at, _SHA256, "64 lowercase hex digits (a sha256)", problems)


def _dist(value: object, at: str, problems: list[str]) -> tuple[str | None, str | None]:
    if not isinstance(value, dict):
        problems.append(f"{at}: expected {{file: NAME, sha256: HEX}}, found {found(value)}")
        return None, None
    check_keys(value, ("file", "sha256"), at, problems)
    name = _text(value.get("file"), f"{at}.file", _DIST, "a wheel or sdist file name (.whl, .zip, .tar.gz)",
                 problems)
    return name, _sha(value.get("sha256"), f"{at}.sha256", problems)


def _member(value: object, at: str, problems: list[str]) -> Member | None:
    if not isinstance(value, dict):
        problems.append(f"{at}: expected {{path: PATH, sha256: HEX}} or {{path: FOLDER, files: {{...}}}}, found "
                        f"{found(value)}")
        return None
    check_keys(value, ("path", "sha256", "files"), at, problems)
    path = _member_path(value.get("path"), f"{at}.path", problems)
    if "files" in value:
        files = value["files"]
        if not isinstance(files, dict) or not files:
            problems.append(f"{at}.files: expected a mapping of paths below the folder to sha256, found "
                            f"{found(files)}")
            return None
        pairs = []
        for rel, digest in files.items():
            if _member_path(rel, f"{at}.files", problems) and _sha(digest, f"{at}.files.{rel}", problems):
                pairs.append((str(rel), str(digest)))
        return Member(path=path, files=tuple(sorted(pairs))) if path and len(pairs) == len(files) else None
    digest = _sha(value.get("sha256"), f"{at}.sha256", problems)
    return Member(path=path, sha256=digest) if path and digest else None


def _member_path(value: object, at: str, problems: list[str]) -> str | None:
    """A relative path inside an archive: no '..', no absolute path, no odd characters."""
    if isinstance(value, str) and _MEMBER.match(value) and ".." not in value.split("/"):
        return value
    problems.append(f"{at}: expected a relative path inside the distribution, found {found(value)}")
    return None


def _home(entry: Raw, at: str, problems: list[str]) -> tuple[tuple[tuple[str, str], ...] | None, str | None]:
    home = entry["home"]
    if home is None:
        reason = entry.get("no_home")
        if not isinstance(reason, str) or not reason.strip():
            problems.append(f"{at}.no_home: a file without a home says why (which environment reads it, and why "
                            "the harness cannot build that one)")
        return None, str(reason or "")
    if "no_home" in entry:
        problems.append(f"{at}.no_home: only for a file whose home is null")
    if not isinstance(home, dict) or "tensorflow" not in home or "python" not in home:
        problems.append(f"{at}.home: expected matrix environment keys {{python: \"3.11\", tensorflow: \"2.15.1\"[, "
                        f"keras: \"3.3.3\"]}}, found {found(home)}")
        return None, None
    check_keys(home, HOME_KEYS, f"{at}.home", problems)
    pairs = []
    for key in HOME_KEYS:
        if key in home:
            text = _version(home[key], f"{at}.home.{key}", problems)
            if text is not None:
                pairs.append((key, text))
    return tuple(pairs), None


def _inputs(value: object, at: str, problems: list[str]) -> tuple[InputSpec, ...] | None:
    if not isinstance(value, list) or not value:
        problems.append(f"{at}: expected a list of inputs ({{name, shape, dtype, low, high}}), found {found(value)}")
        return None
    out: list[InputSpec] = []
    for i, raw in enumerate(value):
        spec = _input(raw, f"{at}[{i}]", problems)
        if spec is not None:
            if any(s.name == spec.name for s in out):
                problems.append(f"{at}[{i}].name: {spec.name!r} is listed twice")
            out.append(spec)
    return tuple(out) if len(out) == len(value) else None


def _input(raw: object, at: str, problems: list[str]) -> InputSpec | None:
    if not isinstance(raw, dict):
        problems.append(f"{at}: expected a mapping {{name, shape, dtype, low, high}}, found {found(raw)}")
        return None
    before = len(problems)
    check_keys(raw, INPUT_KEYS, at, problems)
    name = raw.get("name")
    if not isinstance(name, str) or not re.match(r"^[A-Za-z_][\w.-]{0,99}$", name):
        problems.append(f"{at}.name: expected the input's name, found {found(name)}")
    shape = raw.get("shape")
    if not isinstance(shape, list) or not shape or not all(
            isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape):
        problems.append(f"{at}.shape: expected a list of positive whole numbers like [4, 64, 64, 1], found "
                        f"{found(shape)}")
        shape = None
    elif _product(shape) > MAX_INPUT_VALUES:
        problems.append(f"{at}.shape: {shape} is more than {MAX_INPUT_VALUES} values; keep corpus inputs small")
    dtype = raw.get("dtype", "float32")
    if dtype not in DTYPES:
        problems.append(f"{at}.dtype: unknown dtype {found(dtype)}{suggest(dtype, DTYPES)}")
    bounds = []
    for key in ("low", "high"):
        bound = raw.get(key)
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, (int, float))):
            problems.append(f"{at}.{key}: expected a number, found {found(bound)}")
        bounds.append(bound)
    value = raw.get("value")
    if value is not None and (not isinstance(value, list) or shape is None or len(value) != _product(shape)):
        problems.append(f"{at}.value: expected a flat list of {_product(shape or [0])} numbers, found "
                        f"{found(value)}")
    if not isinstance(raw.get("integers", False), bool):
        problems.append(f"{at}.integers: expected true or false, found {found(raw.get('integers'))}")
    if len(problems) > before:
        return None
    return InputSpec(name=str(name), shape=tuple(shape or ()), dtype=str(dtype), low=bounds[0], high=bounds[1],
                     integers=bool(raw.get("integers", False)), value=None if value is None else tuple(value))


def _product(shape: Sequence[int]) -> int:
    total = 1
    for n in shape:
        total *= n
    return total


def _code(raw: object, at: str, problems: list[str]) -> CodeSpec | None:
    if not isinstance(raw, dict):
        problems.append(f"{at}: expected a mapping with members, shim, factory, custom_objects, found {found(raw)}")
        return None
    check_keys(raw, CODE_KEYS, at, problems)
    members = raw.get("members", {})
    pairs: list[tuple[str, str]] = []
    if not isinstance(members, dict):
        problems.append(f"{at}.members: expected a mapping of paths in the distribution to sha256, found "
                        f"{found(members)}")
    else:
        for path, digest in members.items():
            if _member_path(path, f"{at}.members", problems) and _sha(digest, f"{at}.members.{path}", problems):
                pairs.append((str(path), str(digest)))
    shim = raw.get("shim")
    if shim is not None and (not isinstance(shim, str) or not re.match(r"^[A-Za-z_]\w*\.py$", shim)):
        problems.append(f"{at}.shim: expected a module file name in the corpus's {SHIMS}/ folder, found {found(shim)}")
    refs = {}
    for key in ("factory", "custom_objects"):
        ref = raw.get(key)
        if ref is not None and (not isinstance(ref, str) or not _CODE_REF.match(ref)):
            problems.append(f"{at}.{key}: expected module:attribute, found {found(ref)}")
        refs[key] = ref
    return CodeSpec(members=tuple(pairs), shim=shim, factory=refs["factory"], custom_objects=refs["custom_objects"])


def _strings(value: object, at: str, problems: list[str]) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        problems.append(f"{at}: expected a list of requirement strings, found {found(value)}")
        return ()
    return tuple(value)


# ---------------------------------------------------------------------------- the cache


@dataclass(frozen=True)
class CorpusCache:
    """Where fetched files live: dists/ (each distribution once), files/<name>/ (what a run reads)."""

    root: Path

    def dist(self, file: CorpusFile) -> Path:
        """The downloaded distribution."""
        return self.root / "dists" / file.dist

    def folder(self, file: CorpusFile) -> Path:
        """Everything a run reads of one file."""
        return self.root / "files" / file.name

    def artifact(self, file: CorpusFile) -> Path:
        """The model file (or SavedModel folder) as extracted."""
        return self.folder(file) / Path(file.member.path.rstrip("/")).name

    def architecture(self, file: CorpusFile) -> Path | None:
        """The architecture JSON beside a weights file."""
        return None if file.architecture is None else self.folder(file) / "architecture.json"

    def code(self, file: CorpusFile) -> Path | None:
        """The folder holding the code that rebuilds it (mounted read-only into the containers)."""
        return None if file.code is None else self.folder(file) / "code"

    def inputs(self, file: CorpusFile) -> Path:
        """Its inputs, named by a digest of their description: a changed description is a new file."""
        text = json.dumps([s.__dict__ for s in file.inputs], sort_keys=True, default=list)
        return self.folder(file) / f"inputs-{hashlib.sha256(text.encode()).hexdigest()[:12]}.npz"

    def record(self, file: CorpusFile) -> Path:
        """What was fetched: the sha256 the manifest pinned, kept with the files."""
        return self.folder(file) / "fetched.json"


def default_cache(environ: Mapping[str, str] = os.environ) -> CorpusCache:
    """The corpus cache under the harness cache directory: HARNESS_CACHE, else $XDG_CACHE_HOME/harness, else
    ~/.cache/harness (base_images.cache_dir's rule, restated: validating a matrix reaches no image code)."""
    if environ.get("HARNESS_CACHE"):
        return CorpusCache(Path(environ["HARNESS_CACHE"]) / "corpus")
    xdg = environ.get("XDG_CACHE_HOME")
    return CorpusCache((Path(xdg) if xdg else Path.home() / ".cache") / "harness" / "corpus")


def expected(file: CorpusFile, shims: Path) -> dict[str, str]:
    """What a fetched file's record must say: every pinned sha256, and the shim's."""
    want = {"dist": file.dist_sha256, **{f"member:{rel}": d for _, rel, d in file.member.wanted()}}
    if file.architecture is not None:
        want["architecture"] = file.architecture.sha256 or ""
    for path, digest in (file.code.members if file.code else ()):
        want[f"code:{path}"] = digest
    if file.code and file.code.shim:
        shim = shims / file.code.shim
        want[f"shim:{file.code.shim}"] = sha256_file(str(shim)) if shim.is_file() else "missing"
    return want


def fetched(file: CorpusFile, cache: CorpusCache, shims: Path) -> str | None:
    """None when a file is in the cache as pinned, else what is missing (its record, a file, a changed sha256)."""
    try:
        record = json.loads(cache.record(file).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "not fetched yet"
    if not isinstance(record, dict) or record.get("sha256") != expected(file, shims):
        return "fetched for another pin (the manifest changed since)"
    if not cache.inputs(file).is_file():
        return "its inputs were not made (the manifest's inputs changed since)"
    for _, rel, digest in file.member.wanted():
        path = cache.folder(file) / rel
        if not path.is_file() or sha256_file(str(path)) != digest:
            return f"{rel} is missing or changed in the cache"
    return None


# ---------------------------------------------------------------------------- as a matrix's models


def model_entry(file: CorpusFile, cache: CorpusCache, home_env: str) -> dict[str, Any]:
    """The matrix `models:` entry of a fetched file: an existing artifact, referenced to what its home predicts."""
    entry: dict[str, Any] = {"name": file.name, "artifact": str(cache.artifact(file)),
                             "inputs": str(cache.inputs(file)), "reference": {"env": home_env}}
    if not FORMATS[file.format].weights_only or file.architecture is None:  # weights beside a JSON: the json format
        entry["format"] = file.format
    architecture = cache.architecture(file)
    if architecture is not None:
        entry["architecture"] = str(architecture)
    code = cache.code(file)
    if file.code is not None and code is not None:
        entry["path"] = str(code)
        entry.update({key: value for key, value in (("factory", file.code.factory),
                                                    ("custom_objects", file.code.custom_objects)) if value})
    if file.tolerance is not None:
        entry["tolerance"] = {"rtol": file.tolerance.rtol, "atol": file.tolerance.atol}
    return entry


MATRIX_KEYS = ("manifest", "only")


def matrix_models(raw: object, base: Path, environments: Sequence[Environment], defaults: Defaults, *,
                  environ: Mapping[str, str], problems: list[str]) -> tuple[list[dict[str, Any]], CorpusPlan | None]:
    """A matrix's `corpus:` key: the `models:` entries of its fetched files whose home is among the environments,
    and the CorpusPlan accounting for every file (the others are left out with the reason)."""

    spec: Raw = raw if isinstance(raw, dict) else {"manifest": raw}
    check_keys(spec, MATRIX_KEYS, "corpus", problems)
    path = existing_file(spec.get("manifest"), "corpus.manifest" if isinstance(raw, dict) else "corpus", base,
                         problems)
    if path is None:
        return [], None
    try:
        corpus = load_corpus(path)
    except MatrixError as exc:
        problems.append(f"corpus: {exc}")
        return [], None
    only = spec.get("only")
    names = [f.name for f in corpus.files]
    if only is not None:
        if not isinstance(only, list) or not only:
            problems.append(f"corpus.only: expected a non-empty list of file names, found {found(only)}")
            return [], None
        for i, name in enumerate(only):
            if name not in names:
                problems.append(f"corpus.only[{i}]: no file {found(name)} in {path.name}{suggest(name, names)}")
    chosen = [f for f in corpus.files if only is None or f.name in only]
    cache = default_cache(environ)
    shims = path.parent / SHIMS
    entries, plan = [], []
    for file in chosen:
        home, left_out = _home_here(file, environments, defaults)
        if home is not None:
            missing = fetched(file, cache, shims)
            if missing is not None:
                problems.append(f"corpus: {file.name}: {missing} in {cache.root}: run `harness corpus fetch "
                                f"{path}` first (nothing is downloaded at run time)")
                continue
            entries.append(model_entry(file, cache, home))
        plan.append(CorpusEntry(name=file.name, package=file.package, version=file.version, licence=file.licence,
                                format=file.format, kind=file.kind, saved_by=file.saved_by, member=file.member.path,
                                home=home, left_out=left_out))
    return entries, CorpusPlan(name=corpus.name, path=str(path), sha256=corpus.sha256, files=tuple(plan))


def _home_here(file: CorpusFile, environments: Sequence[Environment], defaults: Defaults) -> tuple[str | None,
                                                                                                 str | None]:
    """(the id of the file's home among the environments, None) or (None, why it is left out)."""
    if file.home is None:
        return None, "no home here: " + (file.no_home or "no environment the harness builds reads it")
    found_problems: list[str] = []
    wanted = parse_environments({"environments": [dict(file.home)]}, defaults, found_problems)
    if found_problems or not wanted:
        return None, f"its home ({file.home_words()}) is not an environment: {found_problems[0]}"
    home = next((env.id for env in environments if same_environment(env, wanted[0])), None)
    if home is None:
        return None, f"its home ({file.home_words()}) is not among this matrix's environments"
    return home, None


def same_environment(a: Environment, b: Environment) -> bool:
    """Whether two environments install the same Python, TensorFlow and Keras (extra packages aside)."""
    def key(env: Environment) -> tuple[Any, ...]:
        return (env.python, env.tensorflow, env.tensorflow_package, env.keras, env.legacy_keras, env.backend or
                "tensorflow", env.env)

    return key(a) == key(b)


def corpus_matrix(corpus: Corpus, matrix: Matrix, *, manifest: str, only: Sequence[str] = ()) -> dict[str, Any]:
    """A matrix (as YAML-ready data) whose models are the corpus's files, over another matrix's environments, with the
    packages the files' code imports added to each (their ids stay the same: packages are not part of an id)."""
    unknown = [n for n in only if n not in {f.name for f in corpus.files}]
    if unknown:
        raise UsageError(f"--only {unknown[0]}: no such file in {corpus.path}"
                         f"{suggest(unknown[0], [f.name for f in corpus.files])}")
    chosen = [f for f in corpus.files if not only or f.name in only]
    extra = sorted({p for f in chosen for p in f.packages})
    environments = [_environment_entry(env, extra) for env in matrix.environments]
    data: dict[str, Any] = {"name": f"corpus-{matrix.name}"[:100], "environments": environments,
                            "loaders": list(matrix.loaders),
                            "tolerance": {"rtol": matrix.tolerance.rtol, "atol": matrix.tolerance.atol},
                            "corpus": {"manifest": manifest, **({"only": list(only)} if only else {})}}
    settings = (("index_url", matrix.pip.index_url), ("extra_index_urls", list(matrix.pip.extra_index_urls)),
                ("trusted_hosts", list(matrix.pip.trusted_hosts)), ("ca_bundle", matrix.pip.ca_bundle))
    pip = {k: v for k, v in settings if v}
    if pip:
        data["pip"] = pip
    return data


def _environment_entry(env: Environment, extra: Sequence[str]) -> dict[str, Any]:
    """An environment as an explicit `environments:` entry keeping its id."""
    def version(spec: str) -> str:
        return spec[2:] if spec.startswith("==") and "," not in spec and "*" not in spec else spec

    entry: dict[str, Any] = {"name": env.id, "python": env.python, "tensorflow": version(env.tensorflow)}
    if env.legacy_keras:
        entry["keras"] = "tf-keras" + (env.tf_keras or "")
    elif env.keras:
        entry["keras"] = version(env.keras)
    if env.tensorflow_package != "tensorflow-cpu":
        entry["tensorflow_package"] = env.tensorflow_package
    packages = [*env.packages, *(p for p in extra if p not in env.packages)]
    if packages:
        entry["packages"] = packages
    if env.backend:
        entry["backend"] = env.backend
    if env.env:
        entry["env"] = dict(env.env)
    return entry
