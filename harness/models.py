"""Models on the host: where each comes from, what the host prepares for users' models, and how reports name them.

Every model is a ModelSpec (harness/agent/spec.py), a built-in probe or a user's own alike. A
probe or a factory model is built and saved by every environment's save container; an existing
artifact is "saved" once, by the pseudo-environment user-<model>: the host copies it into
artifacts/user-<model>/ with a manifest like the one a save container writes (the sha256 are the
original file's), so every target's load phase picks it up like any other source's, and verifies
it before loading.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from harness import untrusted
from harness.agent.protocol import (
    ENV_JSON,
    INPUTS,
    LABELS,
    MANIFEST,
    REFERENCE,
    USERDATA_MOUNT,
    ModelSpec,
    Origin,
    artifact_source,
    hash_tree,
    manifest,
    manifest_entry,
    origin_dir,
    random_array,
    sha256_file,
    user_code_dir,
    write_json_atomic,
)
from harness.engine import Mount
from harness.matrix.user_models import reference_loaders
from harness.rundir import RunDir

# Keras writes its version as an HDF5 attribute: inline when it was a fixed-length string, else in the
# file's global heap (a GCOL block) beside the backend's name. Reading it needs no h5py.
_JSON_VERSION = re.compile(rb'"keras_version":\s*"([0-9][0-9A-Za-z.+-]*)"')
_ATTR_VERSION = re.compile(rb"keras_version\x00.{0,96}?([1-3]\.\d{1,2}\.\d{1,3}[0-9A-Za-z.+-]*)", re.DOTALL)
_HEAP_VERSION = re.compile(rb"GCOL.{0,64}?\x00([1-3]\.\d{1,2}\.\d{1,3}[0-9A-Za-z.+-]*)\x00", re.DOTALL)
SNIFF_BYTES = 4 << 20


def sources(model: ModelSpec, env_ids: Sequence[str]) -> list[str]:
    """The environments a model is saved in: every one, an existing artifact's pseudo-environment, or a migrated
    model's home (the environment that loads the artifact and saves it again)."""
    if model.kind == "artifact":
        return [artifact_source(model.name)]
    if model.migrates is not None:
        return [model.migrates.env] if model.migrates.env in env_ids else []
    return list(env_ids)


def home_environment(model: ModelSpec, env_ids: Sequence[str]) -> str | None:
    """Where an existing artifact's routes are judged to work: the environment its reference predictions come
    from, else the matrix's first. None for a model every environment saves (each is its own home)."""
    if model.kind != "artifact":
        return None
    ref = model.origin.reference_env if model.origin else None
    return ref.env if ref else (env_ids[0] if env_ids else None)


def home_environments(models: Sequence[ModelSpec], env_ids: Sequence[str]) -> dict[str, dict[str, str]]:
    """model -> source -> the environment that is the home of its routes (a source is its own home)."""
    homes = {}
    for model in models:
        home = home_environment(model, env_ids)
        if home is not None:
            homes[model.name] = {artifact_source(model.name): home}
    return homes


def report_entry(model: ModelSpec, env_ids: Sequence[str]) -> dict[str, Any]:
    """A model's entry in report.json's models[] (kind 'probe' or 'user')."""
    return {"name": model.name, "kind": "probe" if model.kind == "probe" else "user",
            "hazards": list(model.hazards), "description": model.description, "shows_hazard": model.shows_hazard,
            "home": home_environment(model, env_ids)}


# ---------------------------------------------------------------------------- mounts


def mounts(models: Sequence[ModelSpec], run_dir: RunDir) -> tuple[Mount, ...]:
    """Each user directory, read-only at its model's code directory, and the data the host prepared."""
    found = [Mount(Path(m.origin.root), user_code_dir(m.name)) for m in models if m.origin and m.origin.root]
    # A migrated model's save loads the existing artifact it starts from: its pseudo-source, read-only.
    found += [Mount(run_dir.artifacts(artifact_source(m.migrates.model)), origin_dir(m.migrates.model))
              for m in models if m.migrates is not None]
    if any(m.has_inputs or m.has_labels for m in models):
        found.append(Mount(run_dir.userdata, USERDATA_MOUNT))
    return tuple(found)


# ---------------------------------------------------------------------------- staging, before the save phase


def stage(models: Sequence[ModelSpec], run_dir: RunDir) -> None:
    """Write every user model's prepared inputs, and every existing artifact as a pseudo-source; idempotent."""
    for model in models:
        if model.kind == "factory":
            _stage_data(model, run_dir.userdata / model.name)
        elif model.kind == "artifact":
            _stage_artifact(model, run_dir.artifacts(artifact_source(model.name)))


def user_inputs(model: ModelSpec) -> dict[str, npt.NDArray[Any]] | None:
    """The model's inputs by name: from its .npy/.npz file, or generated from shape and dtype."""
    origin = model.origin or Origin()
    if origin.inputs and origin.inputs.endswith(".npz"):
        with np.load(origin.inputs, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    if origin.inputs:
        return {"input": np.load(origin.inputs, allow_pickle=False)}
    if origin.random_inputs:
        r = origin.random_inputs
        return {"input": random_array(list(r.shape), r.dtype, r.low, r.high, seed=model.seed)}
    return None


def _stage_data(model: ModelSpec, folder: Path) -> None:
    # Each file is replaced whole: jobs sharing a run directory may stage the same model at once.
    folder.mkdir(parents=True, exist_ok=True)
    inputs = user_inputs(model)
    if inputs is not None:
        tmp = folder / f".inputs.{os.getpid()}.npz"
        np.savez(tmp, **inputs)  # type: ignore[arg-type]
        tmp.replace(folder / INPUTS)
    if model.origin and model.origin.labels:
        untrusted.copy_user_file(Path(model.origin.labels), folder / LABELS)


def _stage_artifact(model: ModelSpec, root: Path) -> None:
    """Write the pseudo-source in a folder of its own, then rename it into place: whole or not at all."""
    if (root / MANIFEST).is_file():
        return  # staged by an earlier run of this run directory, or by a job sharing it
    shutil.rmtree(root, ignore_errors=True)  # a stage that died half-way
    tmp = root.parent / f".{root.name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _write_pseudo_source(model, tmp, root.name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        tmp.rename(root)
    except OSError:  # another job staged it first
        shutil.rmtree(tmp, ignore_errors=True)


def _copy_artifact(origin: Origin, fmt_dir: Path) -> str:
    """Copy the artifact under fmt_dir, keeping its file name; return its path relative to fmt_dir's parent."""
    source = Path(origin.artifact or "")
    fmt_dir.mkdir(parents=True)
    untrusted.copy_artifact(source, fmt_dir / source.name)  # links and special files refused, never followed
    if origin.architecture:
        untrusted.copy_user_file(Path(origin.architecture), fmt_dir / "model.json")
        return f"{fmt_dir.name}/model.json"
    return f"{fmt_dir.name}/{source.name}"


def _write_pseudo_source(model: ModelSpec, root: Path, source: str) -> None:
    fmt = model.artifact_format or "h5"
    origin = model.origin or Origin()
    model_dir = root / model.name
    path = _copy_artifact(origin, model_dir / fmt)
    inputs = user_inputs(model) or {}
    np.savez(model_dir / INPUTS, **inputs)  # type: ignore[arg-type]
    versions = sniff_versions(Path(origin.artifact or ""), fmt, origin.architecture)
    files = {f"{fmt}/{rel}": digest for rel, digest in hash_tree(str(model_dir / fmt)).items()}
    reference_output = None
    if origin.reference:
        untrusted.copy_user_file(Path(origin.reference), model_dir / REFERENCE)
    else:  # the reference is what the reference environment's load predicts
        env = origin.reference_env.env if origin.reference_env else ""
        first, *then = reference_loaders(model)
        reference_output = {"target": env, "loader": first, "then": then}
    entry = manifest_entry(model.name, list(inputs), {fmt: {"path": f"{model.name}/{path}", "files": files}},
                           evaluate=None, predict_call=None, reference_output=reference_output)
    write_json_atomic(root / ENV_JSON, versions)
    write_json_atomic(root / MANIFEST, manifest(source, versions, {model.name: entry}))


# ---------------------------------------------------------------------------- what reports say of them


def artifact_environments(run_dir: RunDir, models: Sequence[ModelSpec]) -> list[dict[str, Any]]:
    """Report environments for the pseudo-sources of existing artifacts: what the file says of its Keras."""
    out = []
    for model in models:
        if model.kind != "artifact":
            continue
        env_id = artifact_source(model.name)
        versions = run_dir.read_versions(env_id) or {}
        out.append({
            "id": env_id, "python": versions.get("python"), "tensorflow": versions.get("tensorflow"),
            "keras": versions.get("keras"), "keras_package": versions.get("keras_package"),
            "keras_major": versions.get("keras_major"),
            "spec": {"artifact": model.origin.artifact if model.origin else None, "format": model.artifact_format,
                     "sha256": versions.get("sha256")},
            "image": None, "image_id": None, "status": "ok", "error": None,
        })
    return out


def missing_reference(path: Path) -> dict[str, Any]:
    """A cell whose reference predictions were never written: its reference environment could not load it."""
    return {"status": "error", "error": {
        "type": "MissingReference", "message": f"no reference predictions: {path.name} was not written",
        "hint": "an existing artifact's reference comes from its reference environment, which could not load it "
                "with any of its loaders: see those cells, or give reference: a .npy file of known-good predictions",
        "traceback": None}}


def sniff_versions(path: Path, fmt: str, architecture: str | None = None) -> dict[str, Any]:
    """What an artifact tells of the Keras that wrote it (best effort; unknown stays null), and its origin."""
    keras = (_sniff_keras(Path(architecture), "json") if architecture else None) or _sniff_keras(path, fmt)
    major = int(keras.split(".")[0]) if keras and keras[0].isdigit() else None
    if major is None and fmt == "savedmodel" and (path / "keras_metadata.pb").is_file():
        major = 2  # written by Keras 2's model.save; Keras 3 cannot write a SavedModel with Keras metadata
    return {"python": None, "tensorflow": None, "keras": keras, "keras_package": None, "keras_major": major,
            "artifact": str(path), "sha256": None if path.is_dir() else sha256_file(str(path))}


def keras_classes(path: Path) -> set[str]:
    """The class names a .keras archive's config names (a bounded read; nothing for another or unreadable file)."""
    try:
        with zipfile.ZipFile(path) as archive:
            if archive.getinfo("config.json").file_size > SNIFF_BYTES:
                return set()
            with archive.open("config.json") as member:
                text = member.read(SNIFF_BYTES).decode("utf-8", errors="replace")
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return set()
    return set(re.findall(r'"class_name":\s*"([^"]{1,200})"', text))


def _sniff_keras(path: Path, fmt: str) -> str | None:
    try:
        if fmt == "keras":
            with zipfile.ZipFile(path) as archive:
                # Bounded: a zip bomb's metadata.json must not inflate in the host's memory.
                if archive.getinfo("metadata.json").file_size > SNIFF_BYTES:
                    return None
                with archive.open("metadata.json") as member:
                    return str(json.loads(member.read(SNIFF_BYTES)).get("keras_version") or "") or None
        if path.is_dir():  # a SavedModel Keras 2 wrote holds its Keras version in keras_metadata.pb
            path = path / "keras_metadata.pb"
            if not path.is_file() or path.is_symlink():
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
