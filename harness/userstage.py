"""Host side of users' models before the save phase: their inputs, and existing artifacts as saved ones.

An existing artifact is copied into artifacts/user-<model>/ with a manifest.json like the one a
save container writes (the sha256 are the original file's), so every target's load phase picks it
up like any other source's, and verifies it before loading.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from harness.agent.common import hash_tree, sha256_file
from harness.agent.user import random_array
from harness.matrix import Matrix, UserModel
from harness.matrix.user_models import artifact_source, model_cells, reference_loader
from harness.rundir import write_json_atomic
from harness.usermodels import SEED, agent_fields

# Keras writes its version as an HDF5 attribute: inline when it was a fixed-length string, else in the
# file's global heap (a GCOL block) beside the backend's name. Reading it needs no h5py.
_JSON_VERSION = re.compile(rb'"keras_version":\s*"([0-9][0-9A-Za-z.+-]*)"')
_ATTR_VERSION = re.compile(rb"keras_version\x00.{0,96}?([1-3]\.\d{1,2}\.\d{1,3}[0-9A-Za-z.+-]*)", re.DOTALL)
_HEAP_VERSION = re.compile(rb"GCOL.{0,64}?\x00([1-3]\.\d{1,2}\.\d{1,3}[0-9A-Za-z.+-]*)\x00", re.DOTALL)
SNIFF_BYTES = 4 << 20


def stage_user_models(matrix: Matrix, run_dir: Path) -> None:
    """Write every user model's prepared inputs, and every existing artifact as a pseudo-source; idempotent."""
    for model in matrix.user_models:
        if model.kind == "factory":
            _stage_data(model, run_dir / "userdata" / model.name)
        else:
            _stage_artifact(model, run_dir / "artifacts" / artifact_source(model.name))


def user_inputs(model: UserModel) -> dict[str, npt.NDArray[Any]] | None:
    """The model's inputs by name: from its .npy/.npz file, or generated from shape and dtype."""
    if model.inputs and model.inputs.endswith(".npz"):
        with np.load(model.inputs, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    if model.inputs:
        return {"input": np.load(model.inputs, allow_pickle=False)}
    if model.random_inputs:
        r = model.random_inputs
        return {"input": random_array(list(r.shape), r.dtype, r.low, r.high, seed=SEED)}
    return None


def _stage_data(model: UserModel, folder: Path) -> None:
    # Each file is replaced whole: jobs sharing a run directory may stage the same model at once.
    folder.mkdir(parents=True, exist_ok=True)
    inputs = user_inputs(model)
    if inputs is not None:
        tmp = folder / f".inputs.{os.getpid()}.npz"
        np.savez(tmp, **inputs)  # type: ignore[arg-type]
        tmp.replace(folder / "inputs.npz")
    if model.labels:
        tmp = folder / f".labels.{os.getpid()}.npy"
        shutil.copyfile(model.labels, tmp)
        tmp.replace(folder / "labels.npy")


def _copy_artifact(model: UserModel, fmt_dir: Path) -> str:
    """Copy the artifact under fmt_dir, keeping its file name; return its path relative to fmt_dir's parent."""
    source = Path(model.artifact or "")
    fmt_dir.mkdir(parents=True)
    if source.is_dir():
        shutil.copytree(source, fmt_dir / source.name)
    else:
        shutil.copyfile(source, fmt_dir / source.name)
    if model.architecture:
        shutil.copyfile(model.architecture, fmt_dir / "model.json")
        return f"{fmt_dir.name}/model.json"
    return f"{fmt_dir.name}/{source.name}"


def _stage_artifact(model: UserModel, root: Path) -> None:
    """Write the pseudo-source in a folder of its own, then rename it into place: whole or not at all."""
    if (root / "manifest.json").is_file():
        return  # staged by an earlier run of this run directory, or by a job sharing it
    shutil.rmtree(root, ignore_errors=True)  # a stage that died half-way
    tmp = root.parent / f".{root.name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    _write_pseudo_source(model, tmp, root.name)
    try:
        tmp.rename(root)
    except OSError:  # another job staged it first
        shutil.rmtree(tmp, ignore_errors=True)


def _write_pseudo_source(model: UserModel, root: Path, source: str) -> None:
    fmt = model.artifact_format or "h5"
    model_dir = root / model.name
    path = _copy_artifact(model, model_dir / fmt)
    inputs = user_inputs(model) or {}
    np.savez(model_dir / "inputs.npz", **inputs)  # type: ignore[arg-type]
    versions = sniff_versions(Path(model.artifact or ""), fmt, model.architecture)
    user = {**agent_fields(model), "weights": Path(model.artifact or "").name if model.architecture else None}
    files = {f"{fmt}/{rel}": digest for rel, digest in hash_tree(str(model_dir / fmt)).items()}
    entry = {
        "inputs": f"{model.name}/inputs.npz", "input_names": list(inputs), "labels": f"{model.name}/labels.npy",
        "reference": _reference(model, model_dir, source, fmt), "predict_call": None, "evaluate": None,
        "formats": {fmt: {"path": f"{model.name}/{path}", "files": files}},
        "user": {k: v for k, v in user.items() if v is not None},
        "loaders": sorted({loader for _, loader in model_cells(model)}),
    }
    write_json_atomic(root / "env.json", versions)
    write_json_atomic(root / "manifest.json", {"schema": 1, "env": source, "versions": versions,
                                               "models": {model.name: entry}})


def _reference(model: UserModel, model_dir: Path, source: str, fmt: str) -> str:
    """The reference predictions, relative to the pseudo-source's folder: the user's file, or where the
    reference environment's load will write its predictions."""
    if model.reference:
        shutil.copyfile(model.reference, model_dir / "reference.npy")
        return f"{model.name}/reference.npy"
    env = model.reference_env.env if model.reference_env else ""
    return f"../../outputs/{env}/{source}/{model.name}/{fmt}/{reference_loader(model)}.npy"


def sniff_versions(path: Path, fmt: str, architecture: str | None = None) -> dict[str, Any]:
    """What an artifact tells of the Keras that wrote it (best effort; unknown stays null), and its origin."""
    keras = (_sniff_keras(Path(architecture), "json") if architecture else None) or _sniff_keras(path, fmt)
    major = int(keras.split(".")[0]) if keras and keras[0].isdigit() else None
    if major is None and fmt == "savedmodel" and (path / "keras_metadata.pb").is_file():
        major = 2  # written by Keras 2's model.save; Keras 3 cannot write a SavedModel with Keras metadata
    return {"python": None, "tensorflow": None, "keras": keras, "keras_package": None, "keras_major": major,
            "artifact": str(path), "sha256": None if path.is_dir() else sha256_file(str(path))}


def _sniff_keras(path: Path, fmt: str) -> str | None:
    try:
        if fmt == "keras":
            with zipfile.ZipFile(path) as archive:
                return str(json.loads(archive.read("metadata.json")).get("keras_version") or "") or None
        if path.is_dir():
            return None
        with path.open("rb") as fh:
            data = fh.read(SNIFF_BYTES)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    for pattern in (_JSON_VERSION, _ATTR_VERSION, _HEAP_VERSION):
        match = pattern.search(data)
        if match:
            return match.group(1).decode("ascii")
    return None
