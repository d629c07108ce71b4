"""Models on the host: where each comes from, what the host prepares for users' models, and how reports name them.

Every model is a ModelSpec (harness/agent/spec.py), a built-in probe or a user's own alike. A
probe or a factory model is built and saved by every environment's save container; an existing
artifact is "saved" once, by the pseudo-environment user-<model>: the host copies it into
artifacts/user-<model>/ with a manifest like the one a save container writes (the sha256 are the
original file's), so every target's load phase picks it up like any other source's, and verifies
it before loading.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Mapping, Sequence
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
    ModelSpec,
    Origin,
    ReferenceOutput,
    Versions,
    artifact_source,
    hash_tree,
    manifest,
    manifest_entry,
    random_array,
    sha256_file,
    umask,
    write_json_atomic,
    write_npz,
)
from harness.errors import RunDirError
from harness.matrix.user_models import reference_loaders
from harness.rundir import RunDir

# Keras writes its version as an HDF5 attribute: inline when it was a fixed-length string, else in the
# file's global heap (a GCOL block) beside the backend's name. Reading it needs no h5py.
_JSON_VERSION = re.compile(rb'"keras_version":\s*"([0-9][0-9A-Za-z.+-]{0,63})"')
_KERAS_VERSION = re.compile(r"^[0-9]{1,3}\.[0-9]{1,6}(?:\.[0-9]{1,6})?[0-9A-Za-z.+-]{0,32}$")  # ASCII digits only
_ATTR_VERSION = re.compile(rb"keras_version\x00.{0,96}?([1-3]\.\d{1,2}\.\d{1,3}[0-9A-Za-z.+-]*)", re.DOTALL)
# A heap string of exactly 8, 16, ... bytes has no padding after it ("2.2.4-tf" then the next object's header).
_HEAP_VERSION = re.compile(rb"GCOL.{0,64}?\x00([1-3]\.\d{1,2}\.\d{1,3}[0-9A-Za-z.+-]*)(?![0-9A-Za-z.+-])", re.DOTALL)
SNIFF_BYTES = 4 << 20


def home_environments(models: Sequence[ModelSpec], env_ids: Sequence[str]) -> dict[str, dict[str, str]]:
    """model -> source -> the environment that is the home of its routes (ModelSpec.homes)."""
    return {model.name: model.homes(env_ids) for model in models}


def report_entry(model: ModelSpec, env_ids: Sequence[str]) -> dict[str, Any]:
    """A model's entry in report.json's models[] (kind 'probe' or 'user')."""
    return {"name": model.name, "kind": "user" if model.is_user_model else "probe",
            "hazards": list(model.hazards), "description": model.description, "shows_hazard": model.shows_hazard,
            "home": model.home(env_ids)}




# ---------------------------------------------------------------------------- staging, before the save phase


def stage_models(models: Sequence[ModelSpec], run_dir: RunDir) -> None:
    """Write every user model's prepared inputs, and every existing artifact as a pseudo-source; idempotent."""
    for model in models:
        if model.is_existing_file:
            _stage_artifact(model, run_dir, run_dir.artifacts(artifact_source(model.name)))
        elif model.has_inputs or model.has_labels:
            _stage_data(model, untrusted.real_dir(run_dir.path, run_dir.userdata / model.name))


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
    inputs = user_inputs(model)
    if inputs is not None:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".inputs.", suffix=".npz")
        os.fchmod(fd, 0o666 & ~umask())  # the containers read it: not mkstemp's 0600 (they run as nobody under root)
        os.close(fd)
        try:
            write_npz(Path(tmp), inputs)
            Path(tmp).replace(folder / INPUTS)
        finally:
            Path(tmp).unlink(missing_ok=True)
    if model.origin and model.origin.labels:
        untrusted.copy_user_file(Path(model.origin.labels), folder / LABELS)


def _stage_artifact(model: ModelSpec, run_dir: RunDir, root: Path) -> None:
    """Write the pseudo-source in a folder of its own, then rename it into place: whole or not at all.

    One staged by an earlier run of this run directory, or by a job sharing it, is kept if the user's files are
    still the ones it was made from; else the run stops (RunDirError): its cells were loaded from the old file.
    """
    staged = untrusted.read_object(run_dir.path, root / MANIFEST)
    entry = ((staged or {}).get("models") or {}).get(model.name)
    if isinstance(entry, dict):
        changed = staged_changes(model, entry)
        if changed:
            raise RunDirError(f"{run_dir.path}: {model.name}'s {' and '.join(changed)} changed since this run "
                              "directory staged it (its sha256 differs), and its cells were loaded from the file "
                              "as it was: start a new run with another --out")
        return
    untrusted.discard(run_dir.path, root)  # a stage that died half-way
    tmp = Path(tempfile.mkdtemp(dir=untrusted.real_dir(run_dir.path, root.parent), prefix=f".{root.name}.",
                                suffix=".tmp"))
    tmp.chmod(0o777 & ~umask())  # the load containers read it: not mkdtemp's 0700 (they run as nobody under root)
    try:
        _write_pseudo_source(model, tmp, root.name)
        try:
            tmp.rename(root)
        except OSError:
            if not root.is_dir():  # else another job staged it first
                raise
    finally:
        untrusted.discard(run_dir.path, tmp)


def _copy_artifact(origin: Origin, fmt_dir: Path) -> str:
    """Copy the artifact under fmt_dir, keeping its file name; return its path relative to fmt_dir's parent."""
    source = Path(origin.artifact or "")
    fmt_dir.mkdir(parents=True)
    untrusted.copy_artifact(source, fmt_dir / source.name)  # links and special files refused, never followed
    if origin.architecture:
        untrusted.copy_user_file(Path(origin.architecture), fmt_dir / "model.json")
        return f"{fmt_dir.name}/model.json"
    return f"{fmt_dir.name}/{source.name}"


def origin_digests(model: ModelSpec) -> dict[str, str]:
    """sha256 of each user file an existing artifact's pseudo-source is made from (of a folder: of its files')."""
    origin = model.origin or Origin()
    named = {"artifact": origin.artifact, "architecture": origin.architecture, "inputs": origin.inputs,
             "reference": origin.reference}
    return {key: _digest(Path(path)) for key, path in named.items() if path}


def _digest(path: Path) -> str:
    if path.is_dir():
        return hashlib.sha256(json.dumps(hash_tree(str(path)), sort_keys=True).encode()).hexdigest()
    return sha256_file(str(path))


def staged_changes(model: ModelSpec, entry: Mapping[str, Any]) -> list[str]:
    """Which user files of an existing artifact differ from those its staged pseudo-source was made from (named
    with their paths). A pseudo-source staged before their digests were kept is checked by its artifact's copy."""
    origin = model.origin or Origin()
    now = origin_digests(model)
    recorded = entry.get("origin_sha256")
    if not isinstance(recorded, dict):
        source, fmt = Path(origin.artifact or ""), model.artifact_format or "h5"
        copies = ((entry.get("formats") or {}).get(fmt) or {}).get("files") or {}
        found = ({f"{fmt}/{source.name}/{rel}": d for rel, d in hash_tree(str(source)).items()} if source.is_dir()
                 else {f"{fmt}/{source.name}": sha256_file(str(source))})
        return [] if all(copies.get(k) == v for k, v in found.items()) else [f"artifact {source}"]
    paths = {"artifact": origin.artifact, "architecture": origin.architecture, "inputs": origin.inputs,
             "reference": origin.reference}
    return [f"{key} {paths.get(key) or '(none now)'}" for key in sorted(set(now) | set(recorded))
            if now.get(key) != recorded.get(key)]


def _write_pseudo_source(model: ModelSpec, root: Path, source: str) -> None:
    fmt = model.artifact_format or "h5"
    origin = model.origin or Origin()
    model_dir = root / model.name
    path = _copy_artifact(origin, model_dir / fmt)
    inputs = user_inputs(model) or {}
    write_npz(model_dir / INPUTS, inputs)
    versions = sniff_versions(Path(origin.artifact or ""), fmt, origin.architecture)
    files = {f"{fmt}/{rel}": digest for rel, digest in hash_tree(str(model_dir / fmt)).items()}
    reference_output: ReferenceOutput | None = None
    if origin.reference:
        untrusted.copy_user_file(Path(origin.reference), model_dir / REFERENCE)
    else:  # the reference is what the reference environment's load predicts
        env = origin.reference_env.env if origin.reference_env else ""
        first, *then = reference_loaders(model)
        reference_output = {"target": env, "loader": first, "then": then}
    entry = manifest_entry(model.name, list(inputs), {fmt: {"path": f"{model.name}/{path}", "files": files}},
                           evaluate=None, predict_call=None, reference_output=reference_output,
                           origin_sha256=origin_digests(model))
    write_json_atomic(root / ENV_JSON, versions)
    write_json_atomic(root / MANIFEST, manifest(source, versions, {model.name: entry}))


# ---------------------------------------------------------------------------- what reports say of them


def artifact_environments(run_dir: RunDir, models: Sequence[ModelSpec]) -> list[dict[str, Any]]:
    """Report environments for the pseudo-sources of existing artifacts: what the file says of its Keras."""
    out = []
    for model in models:
        if not model.is_existing_file:
            continue
        env_id = artifact_source(model.name)
        versions = run_dir.read_versions(env_id) or {}
        out.append({
            "id": env_id, "python": versions.get("python"), "tensorflow": versions.get("tensorflow"),
            "keras": versions.get("keras"), "keras_package": versions.get("keras_package"),
            "keras_major": versions.get("keras_major"),
            "spec": {"artifact": model.origin.artifact if model.origin else None, "format": model.artifact_format,
                     "sha256": versions.get("sha256")},
            "slot": env_id, "selectors": {}, "image": None, "image_id": None, "status": "ok", "error": None,
        })
    return out


def missing_reference(path: Path) -> dict[str, Any]:
    """A cell whose reference predictions were never written: its reference environment could not load it."""
    return {"status": "error", "error": {
        "type": "MissingReference", "message": f"no reference predictions: {path.name} was not written",
        "hint": "an existing artifact's reference comes from its reference environment, which could not load it "
                "with any of its loaders: see those cells, or give reference: a .npy file of known-good predictions",
        "traceback": None}}


def sniff_versions(path: Path, fmt: str, architecture: str | None = None) -> Versions:
    """What an artifact tells of the Keras that wrote it (best effort; unknown stays null), and its origin."""
    keras = (_sniff_keras(Path(architecture), "json") if architecture else None) or _sniff_keras(path, fmt)
    major = int(keras.split(".")[0]) if keras else None
    if major is None and (path / "keras_metadata.pb").is_file():
        major = 2  # a SavedModel Keras 2's model.save wrote; Keras 3 cannot write one with Keras metadata
    return {"python": None, "tensorflow": None, "keras": keras, "keras_package": None, "keras_major": major,
            "artifact": str(path), "sha256": None if path.is_dir() else sha256_file(str(path))}


def keras_classes(path: Path) -> set[str]:
    """The class names a .keras archive's config names (a bounded read; nothing for another or unreadable file)."""
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo("config.json")
            if info.file_size > SNIFF_BYTES or info.flag_bits & 0x1 or info.compress_type not in (
                    zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                return set()
            with archive.open(info) as member:
                text = member.read(SNIFF_BYTES).decode("utf-8", errors="replace")
    except (OSError, KeyError, ValueError, RuntimeError, NotImplementedError, EOFError, zipfile.BadZipFile,
            zlib.error):
        return set()
    return set(re.findall(r'"class_name":\s*"([^"]{1,200})"', text))


def keras_version(found: object) -> str | None:
    """A Keras version as a file states it, or None: any other value (a list, non-ASCII digits, a thousand
    digits) says nothing a report or a version comparison could use."""
    return found if isinstance(found, str) and _KERAS_VERSION.match(found) else None


def _archive_version(path: Path) -> str | None:
    """The Keras version in a .keras archive's metadata.json."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("metadata.json")
        # Bounded: a zip bomb's metadata.json must not inflate in the host's memory; an encrypted member or an
        # unknown compression is not read at all.
        if info.file_size > SNIFF_BYTES or info.flag_bits & 0x1 or info.compress_type not in (
                zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            return None
        with archive.open(info) as member:
            metadata = json.loads(member.read(SNIFF_BYTES))
    return keras_version(metadata.get("keras_version") if isinstance(metadata, dict) else None)


def _scanned_version(path: Path) -> str | None:
    """The Keras version written into a file's bytes (an HDF5 attribute, a JSON config, SavedModel metadata)."""
    if path.is_dir():  # a SavedModel Keras 2 wrote holds its Keras version in keras_metadata.pb
        path = path / "keras_metadata.pb"
        if not path.is_file() or path.is_symlink():
            return None
    with path.open("rb") as fh:
        data = fh.read(SNIFF_BYTES)
    for pattern in (_JSON_VERSION, _ATTR_VERSION, _HEAP_VERSION):
        match = pattern.search(data)
        if match:
            return keras_version(match.group(1).decode("ascii"))
    return None


_SNIFFERS: dict[str, Callable[[Path], str | None]] = {"keras": _archive_version}  # others: _scanned_version


def _sniff_keras(path: Path, fmt: str) -> str | None:
    """The Keras version an artifact says wrote it, or None; the file is the user's, of any shape, and never makes
    this raise (a crafted metadata.json, an encrypted or unknown-compression member, a damaged zip)."""
    try:
        return _SNIFFERS.get(fmt, _scanned_version)(path)
    except (OSError, KeyError, ValueError, RecursionError, EOFError, RuntimeError, NotImplementedError,
            zipfile.BadZipFile, zlib.error):
        return None
