"""The cells a run must show: planned once from the matrix, recorded in run.json, read back by the report.

A cell is (source, target, model, format, loader). Which ones a run has follows from each model's
sources (ModelSpec.homes) and routes (protocol.routes); the plan keeps exactly that, compactly, so
run.json stays small however many cells the environments multiply into.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.agent.protocol import CellKey, routes
from harness.errors import RunDirError
from harness.matrix import Matrix


@dataclass(frozen=True)
class ModelCells:
    """One model's share of the plan: where it is saved (each source with its home) and the routes tried on it."""

    name: str
    homes: Mapping[str, str]
    routes: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class CellPlan:
    """Every cell of a matrix, for any of its environments."""

    environments: tuple[str, ...]  # the matrix's, in its order
    models: tuple[ModelCells, ...]

    @classmethod
    def of(cls, matrix: Matrix) -> CellPlan:
        """The plan of a matrix's cells over all its environments."""
        env_ids = [e.id for e in matrix.environments]
        return cls(tuple(env_ids), tuple(ModelCells(m.name, m.homes(env_ids), tuple(routes(m))) for m in matrix.models))

    def cells(self, env_ids: Sequence[str]) -> list[CellKey]:
        """The cells among these environments (and the pseudo-sources of existing files), in a deterministic order:
        by source, target, model, format, loader."""
        def kept(source: str) -> bool:
            return source in env_ids or source not in self.environments

        pseudo = [source for m in self.models for source in m.homes if source not in self.environments]
        return [CellKey(source, target, m.name, fmt, loader)
                for source in [*env_ids, *pseudo] if kept(source)
                for target in env_ids
                for m in self.models if source in m.homes
                for fmt, loader in m.routes]

    def to_dict(self) -> dict[str, object]:
        """The plan as run.json records it."""
        return {"environments": list(self.environments),
                "models": [{"name": m.name, "homes": dict(m.homes), "routes": [list(r) for r in m.routes]}
                           for m in self.models]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CellPlan:
        """The plan to_dict wrote; ValueError when it is not one."""
        try:
            return cls(tuple(str(e) for e in data["environments"]), tuple(
                ModelCells(str(m["name"]), {str(s): str(h) for s, h in m["homes"].items()},
                           tuple((str(f), str(x)) for f, x in m["routes"])) for m in data["models"]))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"not a cell plan ({exc!r})") from None


def recorded_cells(run: Mapping[str, Any], matrix: Matrix) -> CellPlan:
    """The cell plan run.json records; a run directory from before plans were recorded gets its matrix's."""
    if run.get("plan") is None:
        return CellPlan.of(matrix)
    try:
        return CellPlan.from_dict(run["plan"])
    except ValueError as exc:
        raise RunDirError(f"run.json: {exc}") from None
