"""Containers whose results are a function of what they read, run once per host: `check` reuses them.

A save or load container's records and files follow from its image, its command (the request: the
environment, every model's spec, the limits), its variables, the agent's code and the content of what
it mounts read-only. When all of those are the same, a later run copies what the first one wrote
instead of starting the container again. `check` asks this of the containers of the environment it
moves from (the file's own reference predictions there, and the migrated files made there: once per
file and source image) and of every save (a target saves nothing of a file, but its save tells the
versions its image holds). The targets' loads, the answer to the question, always run.

What is kept came from a container: it is copied back like a user's files (no link followed, no
special file), and the run directory reads it as it reads any container's output. A load whose
worker crashed or timed out is never kept: that is how a process ended, not what a file does.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import harness.agent
from harness import untrusted
from harness.agent.protocol import ARTIFACTS_MOUNT, LOAD_DONE, read_records
from harness.engine import Mount, RunSpec

SCHEMA = 1  # of the key: what another layout stored is never read
NOT_KEPT = ("crash", "timeout")
MAX_FILES = 10_000  # a mounted folder larger than this is not hashed: its container always runs
MAX_BYTES = 4 << 30
_CHUNK = 1 << 20


@functools.lru_cache(maxsize=1)
def agent_digest() -> str:
    """sha256 of the code every container runs: the agent package, file by file."""
    root = Path(harness.agent.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def tree_digest(path: Path) -> str | None:
    """sha256 of a file, or of a folder's files and names; None for anything else, a link, or too much to hash."""
    digest = hashlib.sha256()
    size = 0
    for count, found in enumerate(_walk(path), 1):
        if found is None:
            return None
        relative, full = found
        size += full.stat(follow_symlinks=False).st_size
        if count > MAX_FILES or size > MAX_BYTES:
            return None
        digest.update(relative.encode() + b"\0")
        with open(full, "rb") as fh:
            for chunk in iter(lambda: fh.read(_CHUNK), b""):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def _walk(path: Path) -> Iterable[tuple[str, Path] | None]:
    """(relative name, path) of every regular file below path, in order; None where something else is."""
    if path.is_symlink() or not (path.is_file() or path.is_dir()):
        yield None
        return
    if path.is_file():
        yield path.name, path
        return
    for folder, dirs, files in os.walk(path):
        dirs.sort()
        here = Path(folder)
        for name in [*dirs, *files]:
            if (here / name).is_symlink() or not ((here / name).is_dir() or (here / name).is_file()):
                yield None
                return
        for name in sorted(files):
            yield str((here / name).relative_to(path)), here / name


@dataclass(frozen=True)
class Kept:
    """Where a container's writable mounts are: its records file and its folder of files (artifacts or outputs)."""

    records: Path
    folder: Path


def container_key(spec: RunSpec, image_id: str, sources: Sequence[Path] | None = None) -> str | None:
    """What decides a container's results, hashed; None when something it reads cannot be hashed.

    `sources`: of the artifacts folder a load container mounts, the sources its cells read (the others hold
    nothing for it: a target's save of another model).
    """
    reads: dict[str, str | None] = {}
    for mount in spec.mounts:
        if not mount.read_only or mount.container.startswith("/opt/"):  # the harness source: the agent's digest
            continue
        if mount.container == ARTIFACTS_MOUNT and sources is not None:
            for source in sources:
                reads[f"{mount.container}/{source.name}"] = tree_digest(source)
        else:
            reads[mount.container] = tree_digest(mount.host)
    if any(value is None for value in reads.values()):
        return None
    material = {"schema": SCHEMA, "image": image_id, "command": list(spec.command), "env": dict(spec.env),
                "memory": spec.memory, "network": spec.network, "runtime": spec.runtime, "agent": agent_digest(),
                "reads": reads}
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def writable(spec: RunSpec) -> Kept:
    """A container's records file and its folder of files, from its writable mounts."""
    mounts: list[Mount] = [m for m in spec.mounts if not m.read_only]
    records = next(m.host for m in mounts if m.host.suffix == ".jsonl")
    folder = next(m.host for m in mounts if m.host.suffix != ".jsonl")
    return Kept(records=records, folder=folder)


class Reuse:
    """The containers a host ran, by key: what they wrote, to copy instead of running them again."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def restore(self, key: str, into: Kept) -> bool:
        """Copy what the container of this key wrote into its mounts' places; False when it was never kept."""
        kept = self.root / key
        if not (kept / "done").is_file():
            return False
        shutil.rmtree(into.folder, ignore_errors=True)
        into.folder.parent.mkdir(parents=True, exist_ok=True)
        untrusted.copy_artifact(kept / "folder", into.folder)
        untrusted.copy_file(kept, kept / "records.jsonl", into.records, untrusted.MAX_RECORDS)
        return True

    def keep(self, key: str, what: Kept, *, load: bool) -> bool:
        """Keep what a container that ended well wrote (a load: only when it finished and no worker crashed or
        timed out); whether it was kept."""
        if load and not _finished_cleanly(what.records):
            return False
        self.root.mkdir(parents=True, exist_ok=True)
        staging = self.root / f".{key}.{uuid.uuid4().hex}"
        try:
            staging.mkdir()
            untrusted.copy_artifact(what.folder, staging / "folder")
            untrusted.copy_file(what.records.parent, what.records, staging / "records.jsonl", untrusted.MAX_RECORDS)
            (staging / "done").write_text("")
            try:
                staging.rename(self.root / key)
            except OSError:  # another process kept the same container first: the same results
                return False
            return True
        except (OSError, untrusted.UnsafeFile):
            return False
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _finished_cleanly(records: Path) -> bool:
    found = list(read_records(str(records)))
    return any(r.get("kind") == LOAD_DONE for r in found) and not any(
        r.get("kind") == "load" and r.get("status") in NOT_KEPT for r in found)


@dataclass(frozen=True)
class ReuseAsked:
    """Which containers of a run may be reused: every save, and the loads of some environments."""

    store: Reuse
    saves: bool = True
    loads: frozenset[str] = frozenset()

    def covers(self, phase: str, env_id: str) -> bool:
        """Whether a phase's container in an environment may be reused."""
        return self.saves if phase == "save" else env_id in self.loads
