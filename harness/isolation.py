"""--isolation artifact: every artifact is loaded in a container of its own, and only its records are kept.

Under the default level one load container serves a whole target, so a file whose code runs when it is
loaded can write any record or prediction of that target. Here each artifact (a source's model in one
format) gets a container whose only writable mounts are its own records file and its own outputs
folder, and the host copies into the target's records only those that name a cell of that artifact.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from harness.agent.protocol import LOAD_DONE, CellKey, LoadRecord, RecordWriter
from harness.engine import DOCKER_RUN_FAILED, RunResult
from harness.rundir import RunDir
from harness.untrusted import UnsafeFile, unreadable


@dataclass(frozen=True)
class Artifact:
    """One artifact a target loads: a source's model saved in one format, and the loaders tried on it."""

    source: str
    model: str
    format: str
    loaders: tuple[str, ...]

    def cells(self, target: str) -> list[CellKey]:
        """The cells this artifact decides in a target."""
        return [CellKey(self.source, target, self.model, self.format, loader) for loader in self.loaders]

    def words(self) -> str:
        """How progress lines name it."""
        return f"{self.source}/{self.model}/{self.format}"


def artifacts(cells: Iterable[CellKey]) -> list[Artifact]:
    """The artifacts of a target's cells, in the cells' order."""
    loaders: dict[tuple[str, str, str], list[str]] = {}
    for cell in cells:
        loaders.setdefault((cell.source, cell.model, cell.format), []).append(cell.loader)
    return [Artifact(source, model, fmt, tuple(names)) for (source, model, fmt), names in loaders.items()]


def pending(found: Sequence[Artifact], target: str, done: set[CellKey]) -> list[Artifact]:
    """The artifacts with a cell the target's records lack."""
    return [a for a in found if any(cell not in done for cell in a.cells(target))]


def accept(run_dir: RunDir, artifact: Artifact, target: str, staged: Path, into: RecordWriter[LoadRecord], *,
           ended: RunResult) -> int:
    """Copy the records an artifact's container wrote that name one of its own cells; how many others it wrote.

    What the container left is its own: a records file the host cannot read (too large, a link, not readable)
    makes each of its cells an error, and a cell it wrote no record for is one too (how its container ended),
    so a hostile artifact costs only its own cells. An engine failure leaves them unrecorded, for --resume.
    """
    own = artifact.cells(target)
    try:
        found: list[LoadRecord] = run_dir.read_loads(target, staged)
    except UnsafeFile as exc:
        found = [cast(LoadRecord, {"kind": "load", **cell.fields(), **unreadable(exc), "stage": "record"})
                 for cell in own]
    refused, written = 0, set()
    for record in found:
        if record.get("kind") == LOAD_DONE:  # the container's own end: the host writes the target's
            continue
        if record.get("kind") == "load" and record.get("target", target) == target and CellKey.of(
                record, target) in own:
            into.write(cast(LoadRecord, {k: v for k, v in record.items() if k != "schema"}))  # the writer's own stamp
            written.add(CellKey.of(record, target))
        else:
            refused += 1
    if ended.exit_code != DOCKER_RUN_FAILED:  # no result: the cells stay unrecorded, for --resume
        for cell in own:
            if cell not in written:
                into.write(cast(LoadRecord, {"kind": "load", **cell.fields(), **unrecorded(ended)}))
    return refused


def unrecorded(ended: RunResult) -> dict[str, Any]:
    """The record of a cell its artifact's container ended without writing: how the container ended."""
    words = ("was stopped after its time ran out" if ended.timed_out else "was killed: out of memory"
             if ended.oom_killed else f"exited with status {ended.exit_code}")
    status = "timeout" if ended.timed_out else "crash" if ended.exit_code else "error"
    return {"status": status, "stage": "record", "exit_code": ended.exit_code, "error": {
        "type": "MissingRecord", "message": f"the artifact's load container {words} without a record of this load",
        "traceback": None}}
