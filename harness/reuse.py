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

import hashlib
import json
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness import untrusted
from harness.agent.protocol import ARTIFACTS_MOUNT, LOAD_DONE, read_records
from harness.cellcache import agent_digest, file_digest, tree_digest
from harness.engine import Mount, RunSpec

CONTAINER_KEY_SCHEMA = 2  # of the key: what another layout stored is never read (2: the cell cache's digests)
NOT_KEPT = ("crash", "timeout")
MAX_FILES = 10_000  # a mounted folder larger than this is not hashed: its container always runs
MAX_MOUNTED_BYTES = 4 << 30


def mounted_digest(path: Path) -> str | None:
    """sha256 of a mounted file, or of a folder's files and names (the cell cache's digests); None for anything
    else, a link, or too much to hash."""
    if path.is_symlink():
        return None
    if path.is_file():
        return file_digest(path)
    return tree_digest(path, max_files=MAX_FILES, max_bytes=MAX_MOUNTED_BYTES)


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
                reads[f"{mount.container}/{source.name}"] = mounted_digest(source)
        else:
            reads[mount.container] = mounted_digest(mount.host)
    if any(value is None for value in reads.values()):
        return None
    material = {"schema": CONTAINER_KEY_SCHEMA, "image": image_id, "command": list(spec.command), "env": dict(spec.env),
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
