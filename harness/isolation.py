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

from harness.agent.protocol import LOAD_DONE, CellKey, LoadRecord, RecordWriter
from harness.rundir import RunDir


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


def accept(run_dir: RunDir, artifact: Artifact, target: str, staged: Path, into: RecordWriter[LoadRecord]) -> int:
    """Copy the records an artifact's container wrote that name one of its own cells; how many others it wrote."""
    own = set(artifact.cells(target))
    refused = 0
    for record in run_dir.read_loads(target, staged):
        if record.get("kind") == LOAD_DONE:  # the container's own end: the host writes the target's
            continue
        if record.get("kind") == "load" and record.get("target", target) == target and CellKey.of(
                record, target) in own:
            record.pop("schema", None)  # the writer stamps its own
            into.write(record)
        else:
            refused += 1
    return refused
