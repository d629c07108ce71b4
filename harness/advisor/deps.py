"""The environment a project installs, read from its own dependency files: what `check --from-ref` builds.

Read, in this order of trust: uv.lock and poetry.lock (exact versions, what is installed), then
requirements*.txt and pyproject.toml's PEP 621 `dependencies` (specifiers, combined as pip would);
the Python from .python-version, else `requires-python` (a lock's, then pyproject.toml's), chosen
among the Pythons the pinned TensorFlow has wheels for. Only the packages that decide how a saved
model loads are pinned in the image (LOADING); every other package read is named as ignored.

Requirements, specifiers and markers are parsed with `packaging`, the library pip vendors, so a
line means here what it means to pip; TOML with `tomllib` (the standard library from Python 3.11,
its `tomli` backport before), so a lock file is read by a TOML parser, not by patterns.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from packaging.markers import InvalidMarker, Marker, UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from harness.advisor.files import ProjectFiles
from harness.errors import UsageError

if TYPE_CHECKING:
    from harness.advisor.question import EnvRequest
from harness.matrix.environments import KERAS_MIN_PYTHON, TF_PYTHONS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the host's floor is 3.9; tomli is tomllib's backport
    import tomli as tomllib

TENSORFLOW_NAMES = ("tensorflow", "tensorflow-cpu", "tensorflow-intel", "tensorflow-aarch64")
# What decides whether and how a saved model loads: pinned like the project. Everything else is ignored.
LOADING = ("tensorflow", "keras", "tf-keras", "numpy", "h5py", "protobuf")
EXTRA_PACKAGES = ("numpy", "h5py", "protobuf")  # installed beside TensorFlow and Keras as the matrix's `packages:`
PYTHONS = ("3.11", "3.12", "3.13", "3.10", "3.9")  # tried in this order when the project's files allow several
LOCKS = ("uv.lock", "poetry.lock")
PYPROJECT = "pyproject.toml"
PYTHON_VERSION = ".python-version"
REQUIREMENTS = re.compile(r"^requirements[\w.-]*\.txt$")
# Markers are evaluated for the images: Linux on x86_64, CPython of the chosen version.
_PLATFORM = {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix", "platform_machine": "x86_64",
             "implementation_name": "cpython", "platform_python_implementation": "CPython", "extra": ""}


@dataclass(frozen=True)
class Pin:
    """One loading package as the project's files pin it, and where."""

    package: str  # canonical name: tensorflow, keras, tf-keras, numpy, h5py, protobuf
    spec: str  # a pip specifier ('==2.15.1', '>=2.16,<2.17'); '' when the files name it without a version
    file: str  # the project file that says so (its name in the project folder)
    line: int | None = None  # 1-based

    @property
    def version(self) -> str | None:
        """The exact version of an '==' pin, else None."""
        match = re.fullmatch(r"==([^,*]+)", self.spec)
        return match.group(1) if match else None


@dataclass(frozen=True)
class Found:
    """A requirement read from a file, before markers are evaluated."""

    requirement: Requirement
    file: str
    line: int | None
    exact: bool = False  # from a lock file: the version installed, not a range allowed


@dataclass(frozen=True)
class ProjectEnv:
    """One side of the move: the Python and the loading packages the project's files pin."""

    files: ProjectFiles
    python: str  # major.minor
    python_from: str  # what chose it: '.python-version', 'requires-python >=3.10 (pyproject.toml)', ...
    pins: dict[str, Pin]
    read: tuple[str, ...]  # the files read
    ignored: tuple[str, ...] = ()  # the other packages they name, not pinned in the image
    notes: tuple[str, ...] = ()  # what else was decided: tf-keras beside Keras 3, unpinned packages

    @property
    def tensorflow(self) -> Pin:
        """The TensorFlow pin (every project env has one)."""
        return self.pins["tensorflow"]

    def keras(self) -> str | None:
        """The matrix `keras:` value: 'tf-keras==X' for a tf-keras project, '==X' for Keras, None when unpinned."""
        if "keras" in self.pins and self.pins["keras"].spec:
            return self.pins["keras"].spec
        if "tf-keras" in self.pins:
            return "tf-keras" + self.pins["tf-keras"].spec
        return None

    def packages(self) -> tuple[str, ...]:
        """The matrix `packages:` lines: NumPy, h5py and protobuf as pinned."""
        return tuple(p + self.pins[p].spec for p in EXTRA_PACKAGES if p in self.pins and self.pins[p].spec)

    def summary(self) -> str:
        """'Python 3.11, tensorflow==2.15.1, numpy==1.26.4 (uv.lock)' for messages and reports."""
        pins = ", ".join(p.package + (p.spec or " (any)") for p in self.pins.values())
        return f"Python {self.python}, {pins}"


@dataclass
class _Reading:
    """What the files of one side say, collected before the Python is chosen."""

    found: list[Found] = field(default_factory=list)
    locked: list[tuple[Found, list[Marker]]] = field(default_factory=list)  # lock entries and their forks' markers
    pythons: list[tuple[str, SpecifierSet]] = field(default_factory=list)  # (where, requires-python)
    python_file: str | None = None  # .python-version's major.minor
    read: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # lines that are not a requirement by name


def read_project(files: ProjectFiles) -> ProjectEnv:
    """The environment a project installs at one side; UsageError (exit 2) naming the file and line or key."""
    reading = _Reading()
    names = files.names()
    for lock in LOCKS:
        if lock in names:
            _read_lock(files, lock, reading)
    for name in [n for n in names if REQUIREMENTS.match(n)]:
        _read_requirements(files, name, reading, seen=set())
    if PYPROJECT in names:
        _read_pyproject(files, reading)
    if PYTHON_VERSION in names:
        reading.python_file = _python_version(files.read(PYTHON_VERSION) or "", files)
        reading.read.append(PYTHON_VERSION)
    if not reading.read:
        raise UsageError(f"{files.folder} at {files.label}: no dependency file (requirements*.txt, pyproject.toml, "
                         "uv.lock, poetry.lock); --project names the folder that holds them")
    return _decide(files, reading)


# ---------------------------------------------------------------------------- choosing the Python and the pins


def _decide(files: ProjectFiles, reading: _Reading) -> ProjectEnv:
    where = f"{', '.join(reading.read)} at {files.label}"
    tried = [reading.python_file] if reading.python_file else list(PYTHONS)
    refused: list[str] = []
    for python in tried:
        pins, ignored, notes = _pins(reading, python, where)
        why = _python_refused(python, reading, pins)
        if why is None:
            chosen = (f"{PYTHON_VERSION}" if reading.python_file else
                      "; ".join(f"requires-python {spec} ({name})" for name, spec in reading.pythons)
                      or "the default")
            return ProjectEnv(files=files, python=python, python_from=chosen, pins=pins, read=tuple(reading.read),
                              ignored=tuple(sorted(ignored)), notes=tuple(notes + reading.skipped))
        refused.append(f"Python {python}: {why}")
    raise UsageError(f"{where}: no Python fits: {'; '.join(refused)}")


def _python_refused(python: str, reading: _Reading, pins: Mapping[str, Pin]) -> str | None:
    """Why the images cannot use this Python for the project, or None."""
    newest = f"{python}.99"  # requires-python is compared with the newest patch release of that minor
    for name, spec in reading.pythons:
        if not spec.contains(newest, prereleases=True):
            return f"requires-python {spec} ({name})"
    tf = _minor(pins["tensorflow"].spec)
    if tf is not None and tf in TF_PYTHONS:
        low, high = TF_PYTHONS[tf]
        if not _tuple(low) <= _tuple(python) <= _tuple(high):
            return f"tensorflow {tf[0]}.{tf[1]} has wheels for Python {low} to {high}"
    keras = _minor(pins["keras"].spec) if "keras" in pins else None
    for since, lowest in KERAS_MIN_PYTHON:
        if keras is not None and keras >= since and _tuple(python) < _tuple(lowest):
            return f"keras {keras[0]}.{keras[1]} needs Python >= {lowest}"
    return None


def _pins(reading: _Reading, python: str, where: str) -> tuple[dict[str, Pin], set[str], list[str]]:
    """The loading packages' pins for one Python: a lock's versions first, then the other files' specifiers
    combined; the names of every other package; notes on what was decided."""
    environment = {**_PLATFORM, "python_version": python, "python_full_version": f"{python}.0"}
    pins: dict[str, Pin] = {}
    ignored: set[str] = set()
    locked = [f for f, forks in reading.locked if not forks or any(_holds(m, environment) for m in forks)]
    for source in (locked, [f for f in reading.found if _applies(f, environment)]):
        combined: dict[str, Pin] = {}
        for item in source:
            name = _loading_name(item.requirement.name)
            if name is None:
                ignored.add(canonicalize_name(item.requirement.name))
            elif name not in pins:
                combined[name] = _combine(combined.get(name), item, name, where)
        pins.update(combined)
    notes: list[str] = []
    if "tensorflow" not in pins:
        raise UsageError(f"{where}: no TensorFlow requirement ({', '.join(TENSORFLOW_NAMES)}); check builds the "
                         "TensorFlow the project installs")
    if "keras" in pins and "tf-keras" in pins:  # TF_USE_LEGACY_KERAS, which picks one, is in no file
        notes.append(f"tf-keras{pins['tf-keras'].spec} is installed beside keras{pins['keras'].spec}: the check "
                     "loads with keras (TensorFlow's default) and tries tf-keras beside a Keras 3 target")
        del pins["tf-keras"]
    notes += [f"{p.package}: named without a version ({p.file}); pip chooses" for p in pins.values() if not p.spec]
    return pins, ignored, notes


def _combine(before: Pin | None, item: Found, name: str, where: str) -> Pin:
    """A package named twice (two requirements files, or a file and pyproject.toml): both specifiers, as pip
    applies both; two different exact versions cannot both hold."""
    spec = str(item.requirement.specifier)
    if item.exact:
        spec = "==" + spec.lstrip("=")
    if before is None:
        return Pin(package=name, spec=_ordered(spec), file=item.file, line=item.line)
    both = SpecifierSet(before.spec) & SpecifierSet(spec)
    exact = [s.version for s in both if s.operator in ("==", "===") and "*" not in s.version]
    if len(set(exact)) > 1:
        raise UsageError(f"{where}: {name} is pinned twice, to {exact[0]} ({before.file}"
                         f"{_at(before.line)}) and to {exact[1]} ({item.file}{_at(item.line)})")
    if exact and not all(s.contains(exact[0], prereleases=True) for s in both):
        raise UsageError(f"{where}: {name}=={exact[0]} ({before.file}{_at(before.line)}) does not fit "
                         f"{spec} ({item.file}{_at(item.line)})")
    keep = before if before.version or not item.exact else Pin(name, "", item.file, item.line)
    return Pin(package=name, spec=f"=={exact[0]}" if exact else _ordered(str(both)), file=keep.file, line=keep.line)


def _ordered(spec: str) -> str:
    """A specifier set written in a stable order (packaging does not keep one)."""
    return ",".join(sorted(spec.split(","), key=lambda s: (not s.startswith("=="), s))) if spec else ""


def _loading_name(name: str) -> str | None:
    canonical = canonicalize_name(name)
    if canonical in TENSORFLOW_NAMES:
        return "tensorflow"
    return canonical if canonical in LOADING else None


def _applies(found: Found, environment: dict[str, str]) -> bool:
    marker = found.requirement.marker
    return marker is None or _holds(marker, environment)


def _holds(marker: Marker, environment: dict[str, str]) -> bool:
    try:
        return bool(marker.evaluate(environment))
    except (UndefinedComparison, UndefinedEnvironmentName):
        return False


def _minor(spec: str) -> tuple[int, int] | None:
    """(major, minor) of an exact or wildcard '==' pin."""
    match = re.fullmatch(r"==(\d+)\.(\d+)(\.[\w.*]+)?", spec)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _tuple(python: str) -> tuple[int, int]:
    major, minor = python.split(".")[:2]
    return int(major), int(minor)


def _at(line: int | None) -> str:
    return f":{line}" if line else ""


# ---------------------------------------------------------------------------- requirements*.txt


def _read_requirements(files: ProjectFiles, name: str, reading: _Reading, seen: set[str]) -> None:
    """A pip requirements file: one requirement a line, '\\' continuations, '#' comments, '-r'/'-c' includes
    (relative to the file), pip options (ignored), and lines naming no package (a path, a URL: said)."""
    if name in seen:
        return
    seen.add(name)
    text = files.read(name)
    if text is None:
        return
    reading.read.append(name)
    for number, line in _logical_lines(text):
        include = re.match(r"^(-r|--requirement|-c|--constraint)(\s+|=)(?P<path>\S+)", line)
        if include:
            target = _relative(name, include.group("path"))
            if files.read(target) is None:
                raise UsageError(f"{name}:{number}: {include.group(1)} {include.group('path')}: no such file at "
                                 f"{files.label}")
            _read_requirements(files, target, reading, seen)
            continue
        if line.startswith("-"):
            continue  # --index-url, --hash, -e/--editable (the project itself): pip options, not pins
        requirement = line.split(" --", 1)[0].strip()  # per-requirement options: --hash=sha256:...
        if re.match(r"^(\.|/|~|[a-z][a-z0-9+.-]*://)", requirement, re.IGNORECASE):
            reading.skipped.append(f"{name}:{number}: {requirement[:60]}: not a package by name; ignored")
            continue
        reading.found.append(Found(_requirement(requirement, f"{name}:{number}"), name, number))


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(first line number, line) with comments removed and '\\' continuations joined, as pip reads them."""
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined = (pending + line).strip()
        pending = ""
        if joined:
            yield start, joined
    if pending.strip():
        yield start, pending.strip()


def _relative(name: str, target: str) -> str:
    base = name.rsplit("/", 1)[0] + "/" if "/" in name else ""
    parts: list[str] = []
    for part in (base + target).split("/"):
        if part == "..":
            if not parts:
                raise UsageError(f"{name}: {target}: leads out of the project folder")
            parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return "/".join(parts)


def _requirement(text: str, where: str) -> Requirement:
    try:
        return Requirement(text)
    except InvalidRequirement as exc:
        reason = str(exc).splitlines()[0]  # packaging draws a caret on the lines after
        raise UsageError(f"{where}: invalid requirement {text[:80]!r} ({reason})") from None


# ---------------------------------------------------------------------------- pyproject.toml


def _toml(files: ProjectFiles, name: str) -> tuple[dict[str, Any], str]:
    text = files.read(name) or ""
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{name} at {files.label}: not valid TOML ({exc})") from None


def _read_pyproject(files: ProjectFiles, reading: _Reading) -> None:
    """PEP 621: [project] dependencies and requires-python (optional dependencies are extras: not installed)."""
    data, text = _toml(files, PYPROJECT)
    project = data.get("project")
    if project is None:
        return
    if not isinstance(project, dict):
        raise UsageError(f"{PYPROJECT}: project: expected a table")
    reading.read.append(PYPROJECT)
    deps = project.get("dependencies", [])
    if not isinstance(deps, list):
        raise UsageError(f"{PYPROJECT}: project.dependencies: expected a list of requirement strings")
    for i, item in enumerate(deps):
        where = f"{PYPROJECT}: project.dependencies[{i}]"
        if not isinstance(item, str):
            raise UsageError(f"{where}: expected a requirement string, found {type(item).__name__}")
        reading.found.append(Found(_requirement(item, where), PYPROJECT, _line_of(text, item)))
    if "requires-python" in project:
        reading.pythons.append((PYPROJECT, _specifiers(project["requires-python"],
                                                       f"{PYPROJECT}: project.requires-python")))


def _specifiers(value: object, where: str) -> SpecifierSet:
    if not isinstance(value, str):
        raise UsageError(f"{where}: expected a string like '>=3.10', found {type(value).__name__}")
    try:
        return SpecifierSet(value)
    except InvalidSpecifier:
        raise UsageError(f"{where}: invalid specifier {value!r}") from None


def _line_of(text: str, needle: str, start: int = 0) -> int | None:
    """The line a quoted string is on (TOML parsers keep no positions)."""
    for quote in ('"', "'"):
        at = text.find(quote + needle + quote, start)
        if at >= 0:
            return text.count("\n", 0, at) + 1
    return None


# ---------------------------------------------------------------------------- uv.lock and poetry.lock


def _read_lock(files: ProjectFiles, name: str, reading: _Reading) -> None:
    """The versions a lock installs ([[package]] name and version), and its Python range."""
    data, text = _toml(files, name)
    reading.read.append(name)
    packages = data.get("package", [])
    if not isinstance(packages, list):
        raise UsageError(f"{name}: package: expected an array of tables ([[package]])")
    for i, entry in enumerate(packages):
        where = f"{name}: package[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise UsageError(f"{where}.name: expected a package name")
        version = entry.get("version")
        if version is None:
            continue  # the project itself (uv: a virtual or editable root)
        if not isinstance(version, str):
            raise UsageError(f"{where}.version: expected a string")
        try:
            Version(version)
        except InvalidVersion:
            raise UsageError(f"{where}.version: not a version: {version!r}") from None
        requirement = _requirement(f"{entry['name']}=={version}", where)
        forks = [_marker(m, f"{where}.resolution-markers") for m in entry.get("resolution-markers", [])]
        line = _package_line(text, entry["name"], version)
        reading.locked.append((Found(requirement, name, line, exact=True), forks))
    python = data.get("requires-python") if name == "uv.lock" else (data.get("metadata") or {}).get("python-versions")
    if python is not None:
        key = "requires-python" if name == "uv.lock" else "metadata.python-versions"
        reading.pythons.append((name, _poetry_python(python, f"{name}: {key}") if name == "poetry.lock"
                                else _specifiers(python, f"{name}: {key}")))


def _marker(text: object, where: str) -> Marker:
    try:
        return Marker(str(text))
    except InvalidMarker:
        raise UsageError(f"{where}: invalid marker {text!r}") from None


def _package_line(text: str, name: str, version: str) -> int | None:
    """The line of a [[package]]'s `version = "..."` (what a bump changes), found after its `name = "..."`."""
    for match in re.finditer(rf'^name\s*=\s*["\']{re.escape(name)}["\']\s*$', text, re.MULTILINE):
        line = _line_of(text, version, match.end())
        if line is not None:
            return line
    return None


def _poetry_python(value: object, where: str) -> SpecifierSet:
    """Poetry's constraint syntax (^3.11, ~3.11, >=3.9,<3.12, 3.11.*) as a PEP 440 specifier set; of several
    alternatives (||) the first."""
    if not isinstance(value, str):
        raise UsageError(f"{where}: expected a string like '^3.11'")
    first = value.split("||")[0].strip()
    caret, tilde = re.fullmatch(r"\^\s*(\d+)(?:\.(\d+))?.*", first), re.fullmatch(r"~\s*(\d+)\.(\d+).*", first)
    if caret:
        return SpecifierSet(f">={caret.group(1)}.{caret.group(2) or 0},<{int(caret.group(1)) + 1}")
    if tilde:
        return SpecifierSet(f">={tilde.group(1)}.{tilde.group(2)},<{tilde.group(1)}.{int(tilde.group(2)) + 1}")
    if first in ("*", ""):
        return SpecifierSet()
    return _specifiers(first.replace(" ", "") if re.match(r"^[<>=!~]", first) else "==" + first, where)


# ---------------------------------------------------------------------------- .python-version


def _python_version(text: str, files: ProjectFiles) -> str:
    """major.minor of the first version .python-version names (3.11, 3.11.9, cpython-3.11.9, pypy is refused)."""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"(?:cpython-|python)?(3)\.(\d{1,2})(?:\.\d+)?(?:[a-z0-9.+-]*)?", line, re.IGNORECASE)
        if match is None:
            raise UsageError(f"{PYTHON_VERSION}:{number} at {files.label}: expected a CPython version like 3.11, "
                             f"found {line[:40]!r}")
        return f"{match.group(1)}.{match.group(2)}"
    raise UsageError(f"{PYTHON_VERSION} at {files.label}: empty")


def changed(before: ProjectEnv, after: ProjectEnv) -> list[tuple[str, Pin | None, Pin | None]]:
    """(package, before, after) for every loading package or Python that differs between the sides."""
    found: list[tuple[str, Pin | None, Pin | None]] = []
    if before.python != after.python:
        found.append(("python", Pin("python", "==" + before.python, before.python_from),
                      Pin("python", "==" + after.python, after.python_from)))
    for name in LOADING:
        old, new = before.pins.get(name), after.pins.get(name)
        if (old and old.spec) != (new and new.spec):
            found.append((name, old, new))
    return found


def lines(env: ProjectEnv) -> Sequence[str]:
    """What a side reads, in a few lines for the screen: the files, the pins, the ignored, the notes."""
    shown = [f"{env.files.label}: {env.summary()} (Python from {env.python_from}; read {', '.join(env.read)})"]
    if env.ignored:
        more = f" and {len(env.ignored) - 8} more" if len(env.ignored) > 8 else ""
        shown.append(f"  ignored (not read when a model loads): {', '.join(env.ignored[:8])}{more}")
    shown += [f"  note: {note}" for note in env.notes]
    return shown


# ---------------------------------------------------------------------------- the check's environments


def requests(sides: Sequence[ProjectEnv]) -> list[EnvRequest]:
    """Each side as a check environment. Environment ids ignore `packages:`, so sides that differ only there
    (a NumPy bump) are named apart by the pins that differ."""
    from harness.advisor.question import EnvRequest

    found = [EnvRequest(tensorflow=s.tensorflow.spec or ">=0", keras=s.keras(), python=s.python,
                        packages=s.packages()) for s in sides]
    same = {(r.python, r.tensorflow, r.keras) for r in found}
    if len(same) == len(found):
        return found
    differ = [p for p in EXTRA_PACKAGES if len({s.pins[p].spec if p in s.pins else "" for s in sides}) > 1]
    return [EnvRequest(tensorflow=r.tensorflow, keras=r.keras, python=r.python, packages=r.packages,
                       name=_name(s, differ)) for r, s in zip(found, sides)]


def _name(side: ProjectEnv, differ: Sequence[str]) -> str:
    """py3.11-tf2.15.1-keras2.15.0-numpy1.26.4: the versions, and the pins that tell the sides apart."""
    def part(spec: str) -> str:
        return re.sub(r"[^A-Za-z0-9._-]", "_", spec.removeprefix("=="))

    keras = side.keras()
    words = [f"py{side.python}", "tf" + part(side.tensorflow.spec)]
    if keras:
        words.append(("tfkeras" + part(keras[len("tf-keras"):])) if keras.startswith("tf-keras")
                     else "keras" + part(keras))
    words += [p + part(side.pins[p].spec if p in side.pins else "any") for p in differ]
    return "-".join(words)[:100]


def record(sides: Sequence[ProjectEnv]) -> dict[str, Any]:
    """What run.json and report.json's `check.dependencies` keep of the sides: per side the files read, the
    Python and pins with their file and line (from the repository's root), the ignored; and what changed."""
    def pin(side: ProjectEnv, p: Pin) -> dict[str, Any]:
        return {"spec": p.spec, "file": side.files.repo_path(p.file), "line": p.line}

    def one(side: ProjectEnv) -> dict[str, Any]:
        return {"label": side.files.label, "ref": side.files.ref, "commit": side.files.commit,
                "python": side.python, "python_from": side.python_from, "read": list(side.read),
                "pins": {name: pin(side, p) for name, p in side.pins.items()}, "ignored": list(side.ignored),
                "notes": list(side.notes)}

    first, *rest = sides
    changes = [{"package": name, "from": old.spec if old else None, "to": new.spec if new else None,
                "file": rest[-1].files.repo_path(new.file) if new and name != "python" else None,
                "line": new.line if new and name != "python" else None}
               for name, old, new in changed(first, rest[-1])] if rest else []
    return {"project": first.files.prefix.rstrip("/") or ".", "sides": [one(s) for s in sides], "changed": changes}
