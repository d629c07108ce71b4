"""Cells computed once: a content-addressed store of saves and loads on the host, reused by every later run.

A save is keyed by what decides it: the saving image's id, the container's command (its SaveRequest: the
environment and every model's spec), its variables, the users' code and data it mounts, and the agent's code.
A load cell is keyed by the loading image's id and variables, the model's spec, format and loader, the
tolerance and limits it was loaded under, the agent's code, and its source: the saving image's id and the
sha256 of the model's folder as that source saved it (the artifact, its inputs and its reference). A run
restores what it finds into its own run directory (artifacts, records, predictions and the files a load
wrote beside them: an adapted copy and its account), so the report is built
exactly as from containers, and runs a container only for what is missing: a run with nothing changed starts
none, and a new release costs its save, its row and its column.

What the store holds came from containers: it is read back like a run directory (harness/untrusted.py), no
link followed, records checked, sizes bounded. Under the default isolation a load container can write every
record of its target's column (plan.ISOLATION_PROMISES); the store keeps what it wrote for the cells that
container was asked for, so a hostile file's reach lasts as long as the inputs of those cells do: run
untrusted files with --isolation artifact (its own cells only, and another key) or --no-cache.

The store is bounded (HARNESS_CELL_CACHE_MAX, 10 GiB by default): a run that stored something and may have
pushed it over removes the entries used longest ago (stored or reused), see CellCache.trim.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import re
import shutil
import stat
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import harness.agent
from harness import untrusted
from harness.agent.protocol import (
    RECORDS_MOUNT,
    USERDATA_MOUNT,
    CellKey,
    LoadRecord,
    ModelSpec,
    RecordWriter,
    artifact_source,
    to_dict,
)
from harness.engine import RunSpec
from harness.errors import UsageError
from harness.rundir import RunDir

log = logging.getLogger(__name__)

MAX_VARIABLE = "HARNESS_CELL_CACHE_MAX"  # the store's bound, a size like 10g (0: none)
DEFAULT_MAX_BYTES = 10 << 30
TRIM_TO = 0.8  # a trimmed store holds at most this share of its bound: the next runs add to it before it trims again
SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
CELL_KEY_SCHEMA = 2  # of every key: a store written under another layout is never read (2: a load's files beside it)
# How a process ended rather than what a file does, computed again next time: a timeout (the machine's load), a
# worker that did not start, a crash by SIGKILL (out of memory) or by an exit status. A crash by SIGSEGV or SIGABRT
# is native code failing on the file, as it will again.
EPHEMERAL_STAGES = ("startup", "record")
MAX_CODE_FILES = 10_000  # a user's code folder larger than this is not hashed: its cells are always computed
MAX_CODE_BYTES = 256 << 20
_ARTIFACT_FILE = 1 << 40  # one file of a saved model: any size it has
_CHUNK = 1 << 20


def _digest(material: object) -> str:
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


@functools.lru_cache(maxsize=1)
def agent_digest() -> str:
    """sha256 of the code every container runs: the agent package, file by file."""
    root = Path(harness.agent.__file__).parent
    found = {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*.py"))}
    return _digest(found)


def file_digest(path: Path) -> str | None:
    """sha256 of a regular file, read without following a link (None when it is anything else)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        digest = hashlib.sha256()
        while chunk := os.read(fd, _CHUNK):
            digest.update(chunk)
        return digest.hexdigest()
    finally:
        os.close(fd)


def tree_digest(folder: Path, *, skip: tuple[str, ...] = (), max_files: int | None = None,
                max_bytes: int | None = None) -> str | None:
    """sha256 of every regular file below a folder and its path; None when the folder is missing, holds a link or a
    special file (nothing is followed), or is larger than the limits."""
    if not folder.is_dir() or folder.is_symlink():
        return None
    found: dict[str, str] = {}
    size = 0
    for where, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in skip)
        for name in sorted([*files, *(d for d in dirs if Path(where, d).is_symlink())]):
            path = Path(where, name)
            info = path.lstat()
            size += info.st_size
            digest = file_digest(path) if stat.S_ISREG(info.st_mode) else None
            if digest is None or (max_files is not None and len(found) >= max_files) or (
                    max_bytes is not None and size > max_bytes):
                return None
            found[str(path.relative_to(folder))] = digest
    return _digest(found)


class CellCache:
    """The store below `root`: saves/<key>/ (an environment's artifacts and save records) and loads/<ab>/<key>.json
    with its predictions (<key>.npy) and the files its load wrote beside them (<key>.files/) beside it. `reuse`
    False (--no-cache): nothing is taken from it, everything computed is stored again."""

    def __init__(self, root: Path, *, reuse: bool = True, max_bytes: int | None = DEFAULT_MAX_BYTES) -> None:
        self.root = root
        self.reuse = reuse
        self.max_bytes = max_bytes  # None: no bound (trim() removes nothing)
        self._added = 0  # bytes this process stored: what may push the store over its bound
        self._lock = threading.Lock()
        self._artifacts: dict[tuple[str, str], str | None] = {}  # (source, model) -> digest of its saved folder
        self._models: dict[str, str | None] = {}  # model -> digest of what the host gives it (code, data)

    # -- keys ------------------------------------------------------------------------------------------------
    def _model(self, model: ModelSpec, run_dir: RunDir) -> str | None:
        """A model's spec as containers receive it, with its user code and staged data; None: not cacheable."""
        if model.name not in self._models:
            origin = model.origin
            code = None if origin is None or not origin.root else tree_digest(
                Path(origin.root), skip=(".git",), max_files=MAX_CODE_FILES, max_bytes=MAX_CODE_BYTES)
            data = run_dir.userdata / model.name
            staged = tree_digest(data) if data.is_dir() else "none"
            self._models[model.name] = None if (origin is not None and origin.root and code is None) or (
                staged is None) else _digest([to_dict(model.for_agent()), code, staged])
        return self._models[model.name]

    def artifact(self, run_dir: RunDir, source: str, model: str) -> str | None:
        """The digest of a model's folder as its source saved it (artifact, inputs, reference), once per run."""
        if (source, model) not in self._artifacts:
            self._artifacts[source, model] = tree_digest(run_dir.artifacts(source) / model)
        return self._artifacts[source, model]

    def save_key(self, spec: RunSpec, image_id: str | None, models: Iterable[ModelSpec], run_dir: RunDir) -> str | None:
        """The key of one environment's save container; None when something it reads cannot be hashed."""
        digests = [self._model(m, run_dir) for m in models]
        # A migrated model is made from an existing file: the pseudo-source its save container reads.
        origins = [tree_digest(run_dir.artifacts(artifact_source(m.migrates.model))) for m in models if m.migrates]
        if image_id is None or any(d is None for d in [*digests, *origins]):
            return None
        mounts = sorted(m.container for m in spec.mounts if m.container not in (RECORDS_MOUNT, USERDATA_MOUNT))
        return _digest({"schema": CELL_KEY_SCHEMA, "kind": "save", "image": image_id, "command": list(spec.command),
                        "env": dict(spec.env), "mounts": mounts, "models": digests, "origins": origins,
                        "agent": agent_digest()})

    def cell_key(self, cell: CellKey, *, load: Mapping[str, Any], target_image: str | None,
                 source_image: str | None, model: ModelSpec, run_dir: RunDir) -> str | None:
        """The key of one load cell; None when it cannot be reused (an image or a folder that cannot be hashed).

        `load`: what the target's load is asked beyond the cell (tolerance, limits, isolation, variables)."""
        artifact = self.artifact(run_dir, cell.source, cell.model)
        spec = self._model(model, run_dir)
        if target_image is None or source_image is None or artifact is None or spec is None:
            return None
        return _digest({"schema": CELL_KEY_SCHEMA, "kind": "load", "image": target_image, "load": dict(load),
                        "source": {"image": source_image, "artifact": artifact}, "model": spec,
                        "format": cell.format, "loader": cell.loader, "agent": agent_digest()})

    # -- saves -----------------------------------------------------------------------------------------------
    def _save_dir(self, key: str) -> Path:
        return self.root / "saves" / key

    def restore_save(self, run_dir: RunDir, env_id: str, key: str) -> bool:
        """An environment's artifacts and save records from the store, into the run directory; False on a miss (or
        an entry that cannot be read back as it was stored: then nothing of it stays in the run directory)."""
        entry = self._save_dir(key)
        if not self.reuse or not (entry / "done.json").is_file():
            return False
        artifacts, records = run_dir.artifacts(env_id), run_dir.records("save", env_id)
        try:
            untrusted.real_dir(run_dir.path, artifacts, fresh=True)
            _copy_tree(self.root, entry / "artifacts", run_dir.path, artifacts)
            untrusted.real_file(run_dir.path, records)
            writer: RecordWriter[Any] = RecordWriter(str(records))
            for record in untrusted.records(self.root, entry / "save.jsonl"):
                writer.write({k: v for k, v in record.items() if k != "schema"} | {"env": env_id})
            writer.close()
        except (OSError, untrusted.UnsafeFile) as exc:
            log.warning("cell cache: save %s of %s not reused: %s", key[:12], env_id, exc)
            untrusted.real_dir(run_dir.path, artifacts, fresh=True)
            untrusted.real_file(run_dir.path, records)
            return False
        _used(entry / "done.json")
        return True

    def store_save(self, run_dir: RunDir, env_id: str, key: str) -> None:
        """Keep what a save container wrote (copied as files, never through a link); a racing run's copy wins."""
        tmp = self.root / "saves" / f".tmp-{uuid.uuid4().hex}"
        try:
            tmp.mkdir(parents=True)
            _copy_tree(run_dir.path, run_dir.artifacts(env_id), tmp, tmp / "artifacts")
            records = run_dir.records("save", env_id)
            untrusted.copy_file(run_dir.path, records, tmp / "save.jsonl", untrusted.MAX_RECORDS)
            (tmp / "done.json").write_text(json.dumps({"env": env_id}), encoding="utf-8")
            size = _size(tmp)
            # --no-cache replaces what is there: the load cells it keeps are keyed by these artifacts, not the old.
            _publish(tmp, self._save_dir(key), replace=not self.reuse)
            _used(self._save_dir(key) / "done.json")  # another run's copy, kept, is used now too
            self._count(size)
        except (OSError, untrusted.UnsafeFile) as exc:
            log.warning("cell cache: save of %s not kept: %s", env_id, exc)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    # -- loads -----------------------------------------------------------------------------------------------
    def _load_path(self, key: str) -> Path:
        return self.root / "loads" / key[:2] / f"{key}.json"

    def restore_cells(self, run_dir: RunDir, target: str, keys: Mapping[CellKey, str]) -> set[CellKey]:
        """Write the stored record (and predictions) of every cell found into the target's records and outputs;
        the cells restored."""
        if not self.reuse:
            return set()
        restored: set[CellKey] = set()
        writer: RecordWriter[LoadRecord] = RecordWriter(str(run_dir.records("load", target)))
        try:
            for cell, key in keys.items():
                record = self._stored(run_dir, cell, key)
                if record is not None:
                    writer.write(record)
                    restored.add(cell)
        finally:
            writer.close()
        return restored

    def _stored(self, run_dir: RunDir, cell: CellKey, key: str) -> LoadRecord | None:
        path = self._load_path(key)
        try:
            entry = untrusted.read_object(self.root, path)
        except FileNotFoundError:
            return None
        except (OSError, untrusted.UnsafeFile) as exc:
            log.warning("cell cache: %s not reused: %s", path, exc)
            return None
        raw = (entry or {}).get("record")
        record = dict(raw) if isinstance(raw, dict) else None
        # A record of the wrong shape is a miss (computed again), not the error cell a container's would make.
        if record is None or record.get("kind") != "load" or untrusted.checked_record(record) is not record:
            return None
        if entry and entry.get("output"):
            dest = run_dir.output(cell)
            try:
                untrusted.real_dir(run_dir.path, dest.parent)
                untrusted.copy_file(self.root, path.with_suffix(".npy"), dest, untrusted.MAX_ARRAY)
                if entry.get("files"):  # what the load wrote beside its predictions (an adapted copy, its account)
                    beside = untrusted.real_dir(run_dir.path, run_dir.adapted(cell), fresh=True)
                    _copy_tree(self.root, path.with_suffix(".files"), run_dir.path, beside)
            except (OSError, untrusted.UnsafeFile) as exc:
                log.warning("cell cache: %s not reused: %s", path, exc)
                return None
        _used(path)
        fields = {k: v for k, v in record.items() if k != "schema"}
        return cast(LoadRecord, {**fields, **cell.fields()})  # its own ids, whatever named them when it was stored

    def store_cells(self, run_dir: RunDir, target: str, keys: Mapping[CellKey, str]) -> int:
        """Keep the record and predictions of every cell of `keys` the target's records hold now; how many kept.

        Not kept: timeouts and crashes that say how the process ended rather than what the file does (_kept)."""
        try:
            found = {CellKey.of(r, target): r for r in run_dir.read_loads(target) if r.get("kind") == "load"}
        except untrusted.UnsafeFile:
            return 0
        kept = 0
        for cell, key in keys.items():
            record = found.get(cell)
            if record is None or not _kept(record):
                continue
            kept += self._keep(run_dir, cell, key, record)
        return kept

    def _keep(self, run_dir: RunDir, cell: CellKey, key: str, record: LoadRecord) -> int:
        path = self._load_path(key)
        tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex}")
        output, beside = run_dir.output(cell), run_dir.adapted(cell)
        files = path.with_suffix(".files")
        staged = files.with_name(f".{files.name}.{uuid.uuid4().hex}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            has_output = output.is_file() and not output.is_symlink()
            if has_output:  # predictions first, the record last: a record is never without them
                untrusted.copy_file(run_dir.path, output, path.with_suffix(".npy"), untrusted.MAX_ARRAY)
            has_files = has_output and beside.is_dir() and not beside.is_symlink()
            if has_files:  # ... and the files the load wrote beside them
                _copy_tree(run_dir.path, beside, self.root, staged)
                shutil.rmtree(files, ignore_errors=True)
                staged.rename(files)
            tmp.write_text(json.dumps({"record": {k: v for k, v in record.items() if k != "schema"},
                                       "output": has_output, "files": has_files}, sort_keys=True), encoding="utf-8")
            tmp.replace(path)
            self._count(sum(_size(p) for p in _load_files(path)))
            return 1
        except (OSError, untrusted.UnsafeFile) as exc:
            log.warning("cell cache: %s not kept: %s", cell, exc)
            return 0
        finally:
            tmp.unlink(missing_ok=True)
            shutil.rmtree(staged, ignore_errors=True)

    # -- its bound -------------------------------------------------------------------------------------------
    def _count(self, size: int) -> None:
        with self._lock:
            self._added += size

    def trim(self) -> Trimmed:
        """Keep the store within max_bytes: when what this process stored may have pushed it over, remove the least
        recently used entries (stored or reused longest ago) until it holds at most TRIM_TO of the bound.

        The store's size is kept in usage.json between runs, so a run that stored nothing (or little) reads no
        folder; it is counted again, entry by entry, when it may be over. An entry another run is reading as it goes
        is a miss there, computed again."""
        with self._lock:
            added, self._added = self._added, 0
        if self.max_bytes is None or not added:
            return Trimmed()
        usage = self.root / "usage.json"
        known = _usage(usage)
        if known is not None and known + added <= self.max_bytes:
            _write_usage(usage, known + added)
            return Trimmed()
        entries = sorted(self._entries(), key=lambda e: e.used)
        total = sum(e.size for e in entries)
        removed: list[_Entry] = []
        if total > self.max_bytes:
            for entry in entries:
                if total <= self.max_bytes * TRIM_TO:
                    break
                entry.remove()
                total -= entry.size
                removed.append(entry)
        _write_usage(usage, total)
        return Trimmed(entries=len(removed), bytes=sum(e.size for e in removed))

    def _entries(self) -> Iterator[_Entry]:
        """Every finished entry of the store: each save folder, each load cell's files."""
        saves = self.root / "saves"
        for folder in sorted(saves.iterdir()) if saves.is_dir() else ():
            if not folder.name.startswith(".") and (folder / "done.json").is_file():
                yield _Entry((folder / "done.json", folder), _mtime(folder / "done.json"), _size(folder))
        loads = self.root / "loads"
        for shard in sorted(loads.iterdir()) if loads.is_dir() else ():
            for record in sorted(shard.glob("[!.]*.json")):
                files = _load_files(record)
                yield _Entry(tuple(files), _mtime(record), sum(_size(f) for f in files))


@dataclass(frozen=True)
class Trimmed:
    """What trim() removed: entries and their bytes."""

    entries: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class _Entry:
    paths: tuple[Path, ...]  # the first says the entry is there (a save's done.json, a cell's record)
    used: float
    size: int

    def remove(self) -> None:
        """The entry's mark first: a reader finds no entry, or a whole one, or fails to copy it (a miss)."""
        for path in self.paths:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def _load_files(record: Path) -> list[Path]:
    """A load cell's record, then its predictions and the folder of files its load wrote, where they exist."""
    return [record, *(p for p in (record.with_suffix(".npy"), record.with_suffix(".files")) if p.exists())]


def _size(path: Path) -> int:
    """Bytes of a file, or of every file below a folder (no link followed); 0 for what is gone."""
    try:
        info = path.lstat()
    except OSError:
        return 0
    if not stat.S_ISDIR(info.st_mode):
        return info.st_size
    total = 0
    for where, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += Path(where, name).lstat().st_size
    return total


def _mtime(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except OSError:
        return 0.0


def _used(path: Path) -> None:
    """Mark an entry used now: the least recently used go first when the store is trimmed."""
    with contextlib.suppress(OSError):
        os.utime(path, follow_symlinks=False)


def _usage(path: Path) -> int | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get("bytes")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, int) and value >= 0 else None


def _write_usage(path: Path, size: int) -> None:
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".usage.{uuid.uuid4().hex}")
        tmp.write_text(json.dumps({"bytes": size}), encoding="utf-8")
        tmp.replace(path)


def parse_size(text: str) -> int | None:
    """A size like 10g, 500m or 123456 (bytes); 0 means no bound (None). ValueError for anything else."""
    found = re.fullmatch(r"\s*([0-9]{1,15})\s*([kmgt]?)b?\s*", text.lower())
    if not found:
        raise ValueError(f"expected a size like 10g or 500m (0: no bound), found {text[:40]!r}")
    value = int(found.group(1)) * SIZE_UNITS[found.group(2)]
    return value or None


def cell_cache_bound(environ: Mapping[str, str]) -> int | None:
    """The store's bound: HARNESS_CELL_CACHE_MAX (a size; 0: none), else the default; UsageError when not a size."""
    text = environ.get(MAX_VARIABLE)
    if text is None or not text.strip():
        return DEFAULT_MAX_BYTES
    try:
        return parse_size(text)
    except ValueError as exc:
        raise UsageError(f"{MAX_VARIABLE}: {exc}") from None


def stored_bytes(root: Path) -> int | None:
    """What the store holds as the last run that stored something counted it (None: not counted yet)."""
    return _usage(root / "usage.json")


def _kept(record: LoadRecord) -> bool:
    """Whether a record says what the file does (kept) rather than how its process happened to end."""
    if record.get("status") == "timeout" or record.get("stage") in EPHEMERAL_STAGES:
        return False
    return record.get("status") != "crash" or record.get("signal") not in (None, "SIGKILL")


def _copy_tree(root: Path, source: Path, dest_root: Path, dest: Path) -> None:
    """Copy a folder below `root` to `dest` below `dest_root`: folders made real, files copied whole, a link or a
    special file refused (UnsafeFile)."""
    untrusted.real_dir(dest_root, dest)
    for where, dirs, files in os.walk(source):
        here = dest / Path(where).relative_to(source)
        for name in sorted(dirs):
            if Path(where, name).is_symlink():
                raise untrusted.UnsafeFile(f"{Path(where, name)}: a symbolic link: not copied")
            untrusted.real_dir(dest_root, here / name)
        for name in sorted(files):
            untrusted.copy_file(root, Path(where, name), here / name, _ARTIFACT_FILE)


def _publish(tmp: Path, final: Path, *, replace: bool = False) -> None:
    """Move a finished entry into place; one already there (another run's) is kept, or with `replace` removed."""
    if replace and final.is_dir():
        gone = final.with_name(f".gone-{uuid.uuid4().hex}")
        with contextlib.suppress(OSError):
            final.rename(gone)
        shutil.rmtree(gone, ignore_errors=True)
    try:
        tmp.rename(final)
    except OSError:
        if not final.is_dir():
            raise
