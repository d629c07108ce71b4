"""Files the harness did not write itself: what containers left in a run directory, a run directory copied
from elsewhere, and the artifacts users point at.

They are read and copied without following a symbolic link (a link to a host file would put that file
into a report or into every container), regular files only (a FIFO would hang the reader, a device file
has no end), within the folder they belong to, with bounded sizes, and typed before use. Anything else is
an UnsafeFile naming the file and what is wrong with it, which callers turn into an error on one cell or
one run.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import shutil
import stat
import sys
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from harness.agent.protocol import umask
from harness.errors import UsageError

MAX_JSON = 64 << 20  # run.json, a manifest, a phase record
MAX_TEXT = 8 << 20  # a pip freeze
MAX_RECORDS = 512 << 20  # one JSON Lines file of records
MAX_ARRAY = 2 << 30  # one .npy of predictions or reference data
MAX_DIMS = 32  # numpy's own limit is 64; predictions have a handful
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_OPEN_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_OPEN_NAMED = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_KINDS = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a directory"))


class UnsafeFile(UsageError):
    """A file that is not read: outside its folder, a link, not a regular file, too large, or damaged."""


def kind(mode: int) -> str:
    """What a file is, in words, from its mode."""
    return next((words for test, words in _KINDS if test(mode)), "not a regular file")


def _parts(root: Path, path: Path) -> tuple[str, ...]:
    """path's components below root, compared as written (a link is never resolved): '..' detours are refused."""
    base, full = (Path(os.path.normpath(Path.cwd() / p)) for p in (root, path))
    if full == base or not full.is_relative_to(base):
        raise UnsafeFile(f"{path}: outside {root}: not read")
    return full.relative_to(base).parts


@contextlib.contextmanager
def _opened(root: Path, path: Path) -> Iterator[tuple[int, os.stat_result]]:
    """A descriptor of the regular file `path` below `root`, reached without following any link on the way."""
    parts = _parts(root, path)
    folder = os.open(root, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    try:
        for part in parts[:-1]:
            _check(os.stat(part, dir_fd=folder, follow_symlinks=False), path, want_dir=True)
            inner = os.open(part, _OPEN_DIR, dir_fd=folder)
            os.close(folder)
            folder = inner
        _check(os.stat(parts[-1], dir_fd=folder, follow_symlinks=False), path)
        fd = os.open(parts[-1], _OPEN_FILE, dir_fd=folder)
    finally:
        os.close(folder)
    try:
        info = os.fstat(fd)
        _check(info, path)  # the same file as checked above, not one swapped in since
        yield fd, info
    finally:
        os.close(fd)


def _check(info: os.stat_result, path: Path, want_dir: bool = False) -> None:
    if stat.S_ISDIR(info.st_mode) if want_dir else stat.S_ISREG(info.st_mode):
        return
    where = "on its path is " if want_dir else "is "
    raise UnsafeFile(f"{path}: {'a folder ' if want_dir else ''}{where}{kind(info.st_mode)}: not followed or read")


def read_bytes(root: Path, path: Path, limit: int) -> bytes:
    """The content of a regular file below root, at most `limit` bytes (FileNotFoundError when it is absent)."""
    with _opened(root, path) as (fd, info):
        return _bounded(fd, info, path, limit)


def read_named(path: Path, limit: int) -> bytes:
    """A regular file a user named, at most `limit` bytes (FileNotFoundError when it is absent).

    A link to one is followed (the name is the user's own choice); a FIFO is never read from (it is opened
    without blocking, then refused), nor a device.
    """
    fd = os.open(path, _OPEN_NAMED)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeFile(f"{path}: not a regular file ({kind(info.st_mode)}): not read")
        return _bounded(fd, info, path, limit)
    finally:
        os.close(fd)


def _bounded(fd: int, info: os.stat_result, path: Path, limit: int) -> bytes:
    if info.st_size > limit:
        raise UnsafeFile(f"{path}: {info.st_size} bytes, more than the {limit} read from such a file")
    chunks, size = [], 0
    while size <= limit:
        chunk = os.read(fd, min(1 << 20, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > limit:  # it grew while being read
        raise UnsafeFile(f"{path}: more than the {limit} bytes read from such a file")
    return b"".join(chunks)


def read_text(root: Path, path: Path, limit: int = MAX_TEXT) -> str:
    """A UTF-8 text file below root."""
    try:
        return read_bytes(root, path, limit).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnsafeFile(f"{path}: not UTF-8 text (bad byte at offset {exc.start})") from None


def read_json(root: Path, path: Path, limit: int = MAX_JSON) -> Any:
    """A JSON document below root."""
    try:
        return json.loads(read_text(root, path, limit))
    except (ValueError, RecursionError) as exc:
        raise UnsafeFile(f"{path}: not JSON ({str(exc)[:200]})") from None


def read_object(root: Path, path: Path, limit: int = MAX_JSON) -> dict[str, Any] | None:
    """A JSON object below root, or None when the file is absent, refused or not an object."""
    try:
        data = read_json(root, path, limit)
    except (OSError, UnsafeFile):
        return None
    return data if isinstance(data, dict) else None


def load_array(root: Path, path: Path, limit: int = MAX_ARRAY) -> npt.NDArray[Any]:
    """A .npy array below root, its header checked against the file's size before any data is read."""
    with _opened(root, path) as (fd, info), os.fdopen(os.dup(fd), "rb") as fh:
        try:
            shape, fortran, dtype = npy_header(fh)
        except (ValueError, EOFError, OSError) as exc:
            raise UnsafeFile(f"{path}: not a NumPy .npy file without pickles ({str(exc)[:200]})") from None
        nbytes = math.prod(shape) * dtype.itemsize
        data = info.st_size - fh.tell()
        if nbytes > limit:
            raise UnsafeFile(f"{path}: {nbytes} bytes of data, more than the {limit} read from such a file")
        # Every dimension counts, a zero-size array's too: numpy refuses a shape whose other dimensions multiply
        # past what it can address ((0, 2**62) is "too big" though empty).
        if len(shape) > MAX_DIMS or math.prod(max(n, 1) for n in shape) * dtype.itemsize > limit:
            raise UnsafeFile(f"{path}: its header declares the shape {str(shape)[:80]}, larger than any array "
                             "read from such a file")
        if nbytes != data:
            raise UnsafeFile(f"{path}: truncated or damaged: its header says {nbytes} bytes of data, it holds {data}")
        raw = fh.read(nbytes)
    if len(raw) != nbytes:
        raise UnsafeFile(f"{path}: truncated while being read")
    array = np.frombuffer(raw, dtype=dtype).reshape(shape, order="F" if fortran else "C")
    return array.copy()


def npy_header(fh: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype[Any]]:
    """(shape, Fortran order, dtype) from the header of a .npy stream, which is left at the data; ValueError
    for anything else, or for Python objects (pickles)."""
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
    else:
        raise ValueError(f"unsupported .npy format version {version}")
    if dtype.hasobject:
        raise ValueError("it holds Python objects (pickles)")
    return shape, fortran, dtype


def records(root: Path, path: Path, limit: int = MAX_RECORDS) -> Iterator[dict[str, Any]]:
    """The JSON objects of a JSON Lines file below root (none when it is absent); a line that is not one
    (cut short by a crash, not UTF-8, not an object) is skipped, a record of the wrong shape made an error
    (checked_record)."""
    try:
        data = read_bytes(root, path, limit)
    except FileNotFoundError:
        return
    for raw in io.BytesIO(data):
        try:
            record = json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError):
            continue
        checked = checked_record(record) if isinstance(record, dict) else None
        if checked is not None:
            yield checked


def copy_file(root: Path, source: Path, dest: Path, limit: int) -> None:
    """Copy a regular file below root to dest (replaced whole), never through a link."""
    out_fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")  # a new file, never a link
    os.fchmod(out_fd, 0o666 & ~umask())  # as readable as any file of the run directory, not mkstemp's 0600
    tmp = Path(name)
    try:
        with _opened(root, source) as (fd, info), os.fdopen(out_fd, "wb") as out:
            if info.st_size > limit:
                raise UnsafeFile(f"{source}: {info.st_size} bytes, more than the {limit} copied from such a file")
            copied = 0
            while chunk := os.read(fd, 1 << 20):
                copied += len(chunk)
                if copied > limit:
                    raise UnsafeFile(f"{source}: more than the {limit} bytes copied from such a file")
                out.write(chunk)
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)


# ---------------------------------------------------------------------------- what the host writes and deletes
#
# Containers write below the run directory (a save container its environment's artifacts, a load container its
# target's or its artifact's outputs) and may leave a link or a file where the host later wants a folder, or a
# link where it wants a file: a later rmtree or mkdir through such a link would delete or create outside the run
# directory, and a mount of it would hand the container that folder. The host therefore walks every path it
# writes or deletes component by component from the run directory, with descriptors and without following any
# link: what is not a folder on the way is removed (a link itself, never its target) and a folder made instead.


def _walk_to(root: Path, path: Path, make: bool = True) -> tuple[int, str, Path]:
    """(a descriptor of path's folder, path's last name, that folder's path): every folder below root on the way
    made a real folder (`make`), or FileNotFoundError where one is not (a link is never followed)."""
    *folders, last = _parts(root, path)
    if make:
        root.mkdir(parents=True, exist_ok=True)  # the run directory itself: where the user chose, links and all
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    where = root
    try:
        for part in folders:
            if make:
                _real_folder(fd, where, part)
            elif not stat.S_ISDIR(getattr(_entry(fd, part), "st_mode", 0)):
                raise FileNotFoundError(where / part)
            inner = os.open(part, _OPEN_DIR, dir_fd=fd)
            os.close(fd)
            fd, where = inner, where / part
    except BaseException:
        os.close(fd)
        raise
    return fd, last, where


def _entry(fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _real_folder(fd: int, where: Path, name: str, fresh: bool = False) -> None:
    """Make `name` in the folder `fd` (at `where`) a real folder (`fresh`: an empty one), whatever else was there."""
    info = _entry(fd, name)
    if info is not None and (fresh or not stat.S_ISDIR(info.st_mode)):
        _discard(fd, where, name, info)
        info = None
    if info is None:
        os.mkdir(name, dir_fd=fd)


def _discard(fd: int, where: Path, name: str, info: os.stat_result) -> None:
    """Remove `name` from the folder `fd` (at `where`): a link or a file itself; a folder is first moved aside
    (a rename follows nothing), then its tree removed without following a link in it. A tree too deep to remove
    stays aside, hidden, as data."""
    if not stat.S_ISDIR(info.st_mode):
        os.unlink(name, dir_fd=fd)
        return
    aside = f".{name[:64]}.discarded-{uuid.uuid4().hex[:12]}"
    os.rename(name, aside, src_dir_fd=fd, dst_dir_fd=fd)
    if sys.version_info >= (3, 11):
        shutil.rmtree(aside, dir_fd=fd, ignore_errors=True)
    else:  # the folders on the way were just walked as real folders; rmtree never follows a link inside
        shutil.rmtree(where / aside, ignore_errors=True)


def real_dir(root: Path, path: Path, fresh: bool = False) -> Path:
    """`path` below `root` made a real folder, and each folder on its way (`fresh`: emptied first); nothing
    outside root is touched whatever links a container left. Returns path."""
    fd, last, where = _walk_to(root, path)
    try:
        _real_folder(fd, where, last, fresh)
    finally:
        os.close(fd)
    return path


def real_file(root: Path, path: Path, truncate: bool = True) -> Path:
    """`path` below `root` made a regular file (`truncate`: an empty one), its folders real folders; a link or a
    special file there is replaced, never written through. Returns path."""
    fd, last, where = _walk_to(root, path)
    try:
        info = _entry(fd, last)
        if info is not None and not stat.S_ISREG(info.st_mode):
            _discard(fd, where, last, info)
        flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        os.close(os.open(last, flags | (os.O_TRUNC if truncate else 0), 0o666, dir_fd=fd))
    finally:
        os.close(fd)
    return path


def discard(root: Path, path: Path) -> None:
    """Remove `path` below `root` (a folder's whole tree) if it is there, never through a link."""
    try:
        fd, last, where = _walk_to(root, path, make=False)
    except FileNotFoundError:
        return
    try:
        info = _entry(fd, last)
        if info is not None:
            _discard(fd, where, last, info)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------- what users point at


def odd_entry(path: Path) -> str | None:
    """Why a user's artifact (a file, or a SavedModel directory) cannot be copied as it is, or None.

    Links inside a directory are never followed: one to a host file would put it into every container.
    """
    if path.is_symlink() or not (path.is_file() or path.is_dir()):
        return f"{path} is {kind(path.lstat().st_mode)}; expected a file or a directory"
    if path.is_file():
        return None
    for folder, dirs, files in os.walk(path):
        for name in sorted((*dirs, *files)):
            mode = (Path(folder) / name).lstat().st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                inside = Path(folder, name).relative_to(path)
                return (f"{path} holds {inside}, {kind(mode)}; only regular files and folders are copied "
                        "(links are not followed): replace it with the file itself")
    return None


def copy_artifact(source: Path, dest: Path) -> None:
    """Copy a user's artifact file or directory tree to dest, refusing links and special files."""
    problem = odd_entry(source)
    if problem:
        raise UnsafeFile(problem)
    if source.is_file():
        copy_file(source.parent, source, dest, limit=_USER_FILE)
        return
    dest.mkdir()
    for folder, dirs, files in os.walk(source):
        here = dest / Path(folder).relative_to(source)
        for name in dirs:
            (here / name).mkdir()
        for name in files:
            copy_file(Path(folder), Path(folder) / name, here / name, limit=_USER_FILE)


_USER_FILE = 1 << 40  # a user's own model file: any size it has


def copy_user_file(source: Path, dest: Path) -> None:
    """Copy a file a user named (inputs, labels, a reference, an architecture), never through a link."""
    copy_file(source.parent, source, dest, limit=_USER_FILE)


# ---------------------------------------------------------------------------- records

RECORD_STATUSES = {"load": ("ok", "error", "crash", "timeout", "unsupported"), "save": ("ok", "error", "unsupported")}
_IDENTITY = {"load": ("source", "model", "format", "loader"), "save": ("model", "format")}
_TEXT, _NUMBER, _MAPPING = (str,), (int, float), (dict,)
_FIELDS: dict[str, tuple[type, ...]] = {
    "stage": _TEXT, "signal": _TEXT, "predict_call": _TEXT, "target": _TEXT, "path": _TEXT, "seconds": _NUMBER,
    "load_seconds": _NUMBER, "exit_code": (int,), "worker": (int,), "loader_options": _MAPPING,
    "preflight": _MAPPING, "versions": _MAPPING, "files": _MAPPING, "error": _MAPPING, "evaluate_error": _MAPPING,
    "evaluate": _MAPPING,
}


# Numbers a record, a manifest or a phase record holds, and the range each must be in: seconds are durations, an
# exit code is a process's (negative: the signal that ended it), a worker is a process id.
RANGES: dict[str, tuple[float, float]] = {"seconds": (0.0, 1e9), "load_seconds": (0.0, 1e9),
                                          "exit_code": (-(1 << 31), 1 << 31), "worker": (0, 1 << 31),
                                          "containers_started": (0, 1 << 31), "infrastructure_retries": (0, 1 << 31)}
MEASURED = ("evaluate",)  # evaluate() figures: NaN or an infinity is a model's own result there (a loss that diverged)


def number_problem(value: Any, measured: tuple[str, ...] = ()) -> str | None:
    """Where a JSON value holds a number the host cannot use, or None: NaN or an infinity (JSON has neither; the
    report could not be written), or an integer beyond 64 bits (it overflows a float). Below a key named in
    `measured`, NaN and infinities are kept: they are figures a model produced. Walked without recursion."""
    stack: list[tuple[str, Any, bool]] = [("", value, False)]
    while stack:
        where, item, nan_ok = stack.pop()
        if isinstance(item, float) and not math.isfinite(item) and not nan_ok:
            return f"{where or 'a value'} is {item}, not a finite number"
        if isinstance(item, int) and not isinstance(item, bool) and not -(1 << 63) <= item < 1 << 63:
            return f"{where or 'a value'} is an integer of {len(str(abs(item)))} digits"
        if isinstance(item, dict):
            stack += [(f"{where}.{k}" if where else str(k), v, nan_ok or k in measured) for k, v in item.items()]
        elif isinstance(item, list):
            stack += [(f"{where}[{i}]", v, nan_ok) for i, v in enumerate(item)]
    return None


def range_problem(data: Mapping[str, Any]) -> str | None:
    """Which of RANGES' numbers a mapping holds outside its range (or not as a number), or None."""
    for name, (low, high) in RANGES.items():
        value = data.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value < high:
            return f"{name} {str(value)[:40]} is not a number from {low:g} to {high:g}"
    return None


def _record_problem(record: Mapping[str, Any], kind: str) -> str | None:
    """What is wrong with the types of a save or load record's fields, or None."""
    if record.get("status") not in RECORD_STATUSES[kind]:
        return f"status {str(record.get('status'))[:40]!r} is none of {', '.join(RECORD_STATUSES[kind])}"
    for name, types in _FIELDS.items():
        value = record.get(name)
        if value is not None and not isinstance(value, types):
            return f"{name} is {type(value).__name__}, expected {' or '.join(t.__name__ for t in types)}"
    numbers = number_problem(record, MEASURED) or range_problem(record)
    if numbers:
        return numbers
    for name in ("error", "evaluate_error"):
        value = record.get(name)
        if value is not None and any(not isinstance(value.get(k), str) for k in ("type", "message")):
            return f"{name} has no text type and message"
    evaluate = record.get("evaluate") or {}
    if any(not isinstance(v, _NUMBER) and v is not None for v in evaluate.values()):
        return "evaluate holds values that are not numbers"
    return None


def checked_record(record: dict[str, Any]) -> dict[str, Any] | None:
    """A save or load record as the host uses it: None when it names no cell; an error record, naming what is
    wrong, when its fields have the wrong types; other kinds of record as they are."""
    kind = record.get("kind")
    if kind not in _IDENTITY:
        return record if isinstance(kind, str) else None
    if any(not isinstance(record.get(key), str) for key in _IDENTITY[kind]):
        return None
    problem = _record_problem(record, kind)
    if problem is None:
        return record
    return {**{k: record[k] for k in ("kind", *_IDENTITY[kind])}, "status": "error", "stage": "record",
            "error": {"type": "MalformedRecord", "message": f"its {kind} record is malformed: {problem}",
                      "traceback": None}}


# ---------------------------------------------------------------------------- manifests, versions, phase records


def manifest_problem(data: Mapping[str, Any]) -> str | None:
    """What is wrong with the shape of a manifest.json (as protocol.manifest writes it), or None."""
    models = data.get("models")
    if not isinstance(models, dict):
        return "models is not a mapping"
    numbers = number_problem(data, MEASURED)
    if numbers:
        return numbers
    return next((f"models.{name}{problem}" for name, entry in models.items()
                 if (problem := _entry_problem(entry))), None)


def _entry_problem(entry: object) -> str | None:
    if not isinstance(entry, dict) or not isinstance(entry.get("formats"), dict):
        return " is not a mapping with formats"
    output, evaluate = entry.get("reference_output"), entry.get("evaluate")
    problems = {
        ": inputs, labels and reference must be paths":
            not all(isinstance(entry.get(k), str) for k in ("inputs", "labels", "reference")),
        ".reference_output is not a mapping of target and loader": output is not None and not (
            isinstance(output, dict) and all(isinstance(output.get(k), str) for k in ("target", "loader"))),
        ".reference_output.then is not a list of loaders": isinstance(output, dict) and not (
            isinstance(output.get("then", []), list) and all(isinstance(x, str) for x in output.get("then", []))),
        ".evaluate is not a mapping of numbers": evaluate is not None and not (
            isinstance(evaluate, dict) and all(isinstance(v, _NUMBER) or v is None for v in evaluate.values())),
        ".formats: every format must be a mapping with a path": any(
            not isinstance(saved, dict) or not isinstance(saved.get("path"), str)
            for saved in entry["formats"].values()),
    }
    return next((problem for problem, found in problems.items() if found), None)


_VERSION_TEXT = re.compile(r"^[\x21-\x7e]{0,100}$")  # a version or package name as pip prints it: short ASCII
MAX_PATH_TEXT = 4096  # env.json's artifact: a path


def versions_problem(data: Mapping[str, Any]) -> str | None:
    """What is wrong with an env.json (versions of the environment that saved), or None.

    Each version is short printable ASCII (a reader parses its digits; a thousand-digit one would not convert),
    the Keras major a small whole number, and every number finite.
    """
    for key, value in data.items():
        limit = MAX_PATH_TEXT if key == "artifact" else None
        if value is None:
            continue
        if key == "keras_major":
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 99:
                return f"keras_major {str(value)[:40]!r} is not a Keras major version"
        elif isinstance(value, str):
            if limit is None and not _VERSION_TEXT.match(value):
                return f"{key} {value[:40]!r} is not a version (short printable ASCII)"
            if limit is not None and len(value) > limit:
                return f"{key} is longer than {limit} characters"
        elif not isinstance(value, (int, float)) or isinstance(value, bool):
            return f"{key} is not a version"
    return number_problem(data)


_PHASE_FIELDS: dict[str, tuple[type, ...]] = {
    "phase": _TEXT, "env": _TEXT, "started": _TEXT, "finished": _TEXT, "status": _TEXT, "error": _TEXT,
    "image": _TEXT, "image_id": _TEXT, "run_id": _TEXT, "host": _TEXT, "containers_started": (int,),
    "infrastructure_retries": (int,), "seconds": _NUMBER, "container": _MAPPING, "build": _MAPPING,
    "cache": _MAPPING, "cells": _MAPPING,
}


def phase_record_problem(data: Mapping[str, Any]) -> str | None:
    """What is wrong with the types and numbers of an envs/<env>/<phase>.json, or None."""
    odd = [name for name, types in _PHASE_FIELDS.items()
           if data.get(name) is not None and not isinstance(data[name], types)]
    if odd:
        return f"{odd[0]} is {type(data[odd[0]]).__name__}"
    inner = [(name, data[name]) for name in ("container", "build") if isinstance(data.get(name), dict)]
    cells = data.get("cells")
    if isinstance(cells, dict) and not all(type(cells.get(k)) is int and cells[k] >= 0 for k in ("reused", "computed")):
        return "cells must count reused and computed cells"
    return (number_problem(data) or range_problem(data)
            or next((f"{name}.{p}" for name, value in inner if (p := range_problem(value))), None))


def unreadable(exc: UnsafeFile) -> dict[str, Any]:
    """A cell whose reference or predictions file is refused or damaged: never read, an error of its own."""
    return {"status": "error", "error": {
        "type": "UnreadableFile", "message": str(exc),
        "hint": "the run directory holds a link, a special file or a damaged file where a result belongs: rerun "
                "this target's load phase, or report from an undamaged copy of the run directory",
        "traceback": None}}


def chown_tree(path: Path, uid: int, gid: int) -> None:
    """Give a file or a folder tree to uid:gid, never following a link (a link itself changes owner)."""
    if not path.is_symlink() and path.is_dir():
        for folder, dirs, files in os.walk(path):  # does not descend into links to folders
            for name in (*dirs, *files):
                os.chown(Path(folder) / name, uid, gid, follow_symlinks=False)
    os.chown(path, uid, gid, follow_symlinks=False)
