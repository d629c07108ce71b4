"""Migrated models in a report: how each was made from an existing artifact, and where its files were verified.

A migrated model is an existing artifact loaded in its home environment and saved there again in
every format (harness/agent/migrate.py). Its cells are ordinary cells (source: that environment);
this section says what made it (the loader, and what was tried before), and which of its files
load in which target with the original artifact's predictions: its verified routes, best first.
Pure functions of the matrix's models, the manifests, the save records and the report's cells.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.agent.protocol import ModelSpec, artifact_source
from harness.report.causes import shorten
from harness.report.routes import best_cells_first, route_entry

STATUSES = ("made", "failed", "not_run")  # the migrated model was saved, its making failed, or its save never ran


def _tried(made: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What the save container says it tried, kept to strings (the manifest was written inside a container)."""
    out = []
    for attempt in made.get("tried") or ():
        if not isinstance(attempt, dict) or not isinstance(attempt.get("loader"), str):
            continue
        error = attempt.get("error") if isinstance(attempt.get("error"), dict) else {}
        out.append({"loader": attempt["loader"], "status": str(attempt.get("status")),
                    "error": (f"{error.get('type')}: {shorten(str(error.get('message')))}" if error else None)})
    return out


def _failure(saves: Mapping[str, Mapping[str, Any]], env: str, model: ModelSpec) -> str | None:
    """The error of a migrated model whose making failed (its save records, stage build)."""
    for fmt in model.formats or ():
        record = saves.get(f"{env}/{model.name}/{fmt}") or {}
        error = record.get("error") if isinstance(record.get("error"), dict) else None
        if record.get("stage") == "build" and error:
            return f"{error.get('type')}: {shorten(str(error.get('message')))}"
    return None


def migration(model: ModelSpec, manifests: Mapping[str, Mapping[str, Any]],
              saves: Mapping[str, Mapping[str, Any]], cells: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One migrated model's entry in report.json's migrations[]."""
    how = model.migrates
    assert how is not None
    entry = (manifests.get(how.env) or {}).get("models", {}).get(model.name)
    found = entry.get("made_by") if isinstance(entry, dict) else None
    made: Mapping[str, Any] = found if isinstance(found, dict) else {}
    error = None if entry else _failure(saves, how.env, model)
    status = "made" if entry else "failed" if error else "not_run"
    mine = [c for c in cells if c["model"] == model.name and c["source"] == how.env]
    portable = [c for c in mine if c["target"] != how.env and c["route_status"] == "portable"]
    targets = list(dict.fromkeys(c["target"] for c in mine))  # in the report's order
    verified = [{"target": c["target"], **route_entry(c)} for t in targets
                for c in best_cells_first(c for c in portable if c["target"] == t)]
    return {
        "model": model.name,
        "from": {"model": how.model, "source": artifact_source(how.model), "format": how.format},
        "env": how.env,
        "status": status,
        "loader": made.get("loader") if isinstance(made.get("loader"), str) else None,
        "tried": _tried(made),
        "error": error,
        "formats": sorted(entry["formats"]) if isinstance(entry, dict) else [],
        "at_home": [{"format": f, "loader": x} for f, x in sorted(
            {(c["format"], c["loader"]) for c in mine if c["target"] == how.env and c["status"] == "pass"})],
        "verified": [{k: v for k, v in v.items() if k != "model"} for v in verified],
        "breaks": sum(1 for c in mine if c["route_status"] == "breaks"),
    }


def migrations(models: Sequence[ModelSpec], manifests: Mapping[str, Mapping[str, Any]],
               saves: Mapping[str, Mapping[str, Any]], cells: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """report.json's migrations[]: one entry per migrated model, in matrix order."""
    return [migration(m, manifests, saves, cells) for m in models if m.migrates is not None]
