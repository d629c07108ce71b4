"""Users' own models on the host: their cells, mounts and agent specs, and what the report says of them.

A factory model is built and saved by every environment's save container, like a probe. An
existing artifact is "saved" once, by the pseudo-environment user-<model> (see userstage.py),
and loaded by every environment.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.engine import Mount
from harness.matrix import Matrix, Tolerance, UserModel
from harness.matrix.user_models import artifact_source, model_cells

USER_MOUNT = "/harness/user"  # /harness/user/<model>: the model's user directory, read-only
DATA_MOUNT = "/harness/userdata"  # run_dir/userdata/<model>: inputs and labels the host prepared
SEED = 1234
HASHSEED_HINT = ("the predict hook gives other numbers in a fresh process of the same environment (saved under "
                 "PYTHONHASHSEED=0, loaded under 1): a class or vocabulary order built from a set or dict of strings "
                 "(list(set(...))) changes between processes; sort it, or store the list with the model")
CROSS_HOOK_HINT = ("predictions through the predict hook differ; if this model's same-environment cells drift too, the "
                   "hook's own ordering is the cause, not the upgrade")


def user_cells(matrix: Matrix, env_ids: list[str]) -> list[tuple[str, str, str, str, str]]:
    """(source, target, model, format, loader) of every user model cell, in a deterministic order."""
    cells = []
    for model in matrix.user_models:
        sources = env_ids if model.kind == "factory" else [artifact_source(model.name)]
        cells += [(source, target, model.name, fmt, loader)
                  for source in sources for target in env_ids for fmt, loader in model_cells(model)]
    return cells


def user_mounts(matrix: Matrix, run_dir: Path) -> tuple[Mount, ...]:
    """Each user directory, read-only at /harness/user/<model>, and the inputs the host prepared."""
    mounts = [Mount(Path(m.root), f"{USER_MOUNT}/{m.name}") for m in matrix.user_models if m.root]
    if any(m.kind == "factory" for m in matrix.user_models):
        mounts.append(Mount(run_dir / "userdata", DATA_MOUNT))
    return tuple(mounts)


def agent_fields(model: UserModel) -> dict[str, Any]:
    """How the agent finds a model's code: the mounted directory, factory, custom objects, predict hook."""
    fields = {"root": f"{USER_MOUNT}/{model.name}" if model.root else None, "factory": model.factory,
              "custom_objects": model.custom_objects, "predict": model.predict, "seed": SEED}
    return {key: value for key, value in fields.items() if value is not None}


def save_entries(matrix: Matrix) -> list[dict[str, Any]]:
    """What a save container builds besides the probes: each factory model, with its formats and loaders."""
    return [
        {"name": m.name, "formats": list(m.formats), "loaders": list(m.loaders), **agent_fields(m),
         "inputs": f"{DATA_MOUNT}/{m.name}/inputs.npz" if m.inputs or m.random_inputs else None,
         "labels": f"{DATA_MOUNT}/{m.name}/labels.npy" if m.labels else None}
        for m in matrix.user_models if m.kind == "factory"
    ]


def tolerances(matrix: Matrix) -> dict[str, Tolerance]:
    """Per-model tolerances that override the matrix's."""
    return {m.name: m.tolerance for m in matrix.user_models if m.tolerance is not None}


def report_models(matrix: Matrix) -> list[dict[str, Any]]:
    """The report's models[] entries of user models (kind 'user')."""
    return [{"name": m.name, "kind": "user", "hazards": ["hash-seed"] if m.predict else [],
             "description": _description(m)} for m in matrix.user_models]


def _description(model: UserModel) -> str:
    if model.kind == "factory":
        return f"built by {model.factory} in every environment"
    return f"existing {model.artifact_format} artifact {Path(model.artifact or '').name}, loaded in every environment"


def artifact_environments(run_dir: Path, matrix: Matrix) -> list[dict[str, Any]]:
    """Report environments for the pseudo-sources of existing artifacts: what the file says of its Keras."""
    out = []
    for model in matrix.user_models:
        if model.kind != "artifact":
            continue
        env_id = artifact_source(model.name)
        try:
            versions = json.loads((run_dir / "artifacts" / env_id / "env.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            versions = {}
        out.append({
            "id": env_id, "python": versions.get("python"), "tensorflow": versions.get("tensorflow"),
            "keras": versions.get("keras"), "keras_package": versions.get("keras_package"),
            "keras_major": versions.get("keras_major"),
            "spec": {"artifact": model.artifact, "format": model.artifact_format, "sha256": versions.get("sha256")},
            "image": None, "image_id": None, "status": "ok", "error": None,
        })
    return out


def missing_reference(path: Path) -> dict[str, Any]:
    """A cell whose reference predictions were never written: its reference environment could not load it."""
    return {"status": "error", "error": {
        "type": "MissingReference", "message": f"no reference predictions: {path.name} was not written",
        "hint": "an existing artifact's reference comes from its reference environment, which could not load it "
                "with the reference loader: see that cell, or give reference: a .npy file of known-good predictions",
        "traceback": None}}


def drift_hint(source: str, target: str, model_entry: dict[str, Any]) -> str | None:
    """Why a user model drifts, when its predict hook can be the cause."""
    if not (model_entry.get("user") or {}).get("predict"):
        return None
    return HASHSEED_HINT if source == target else CROSS_HOOK_HINT
