"""Adapt a saved file for this Keras: read its stored parts, run the adapter chain, write the adapted copy.

No Keras is used here. The file is read with h5py, zipfile and json, edited as data by the adapters
(harness/agent/adapters.py) and written to a folder of its own beside the load's predictions, with
an account of what was changed (adapted.json). The loader that asked for it then loads the copy
with this environment's own load_model, and the host compares its predictions with the original's:
only a copy that passes is ever handed over.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from typing import Any, Dict, List, Optional, Tuple

from harness.agent.adapters import ADAPTERS, H5, JSON, KERAS, KERAS_WEIGHTS, WEIGHTS_H5, Saved, Weights, adapt, chain
from harness.agent.adapters import WEIGHTS as WEIGHTS_PART
from harness.agent.protocol import ADAPTED, sha256_file, write_json_atomic

ACCOUNT_SCHEMA = 1
_CONFIG, _METADATA, _WEIGHTS = "config.json", "metadata.json", "model.weights.h5"


def _text(value: Any) -> Optional[str]:
    if value is None:
        return None
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def layout(path: str) -> Optional[str]:
    """What a file stores, told by its content: a legacy HDF5 full model or weights file, a .keras zip, an
    architecture JSON, a .weights.h5 of Keras 2.12 or later; None for anything else (a SavedModel)."""
    if os.path.isdir(path):
        return None
    if zipfile.is_zipfile(path):
        return KERAS
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head.startswith(b"\x89HDF"):
        import h5py

        with h5py.File(path, "r") as handle:
            if "model_config" in handle.attrs:
                return H5
            if "layer_names" in handle.attrs:
                return WEIGHTS_H5
            return KERAS_WEIGHTS if {"layers", "_layer_checkpoint_dependencies"} & set(handle) else None
    return JSON if head.lstrip()[:1] == b"{" else None


class H5Weights(Weights):
    """The weights of a legacy HDF5 file open for writing: model_weights/ of a full model, the root of a weights
    file; each layer's group lists its weights in its weight_names attribute."""

    def __init__(self, group: Any) -> None:
        self.group = group

    def _names(self, layer: str) -> List[str]:
        return [_text(n) or "" for n in self.group[layer].attrs.get("weight_names", [])]

    def layers(self) -> List[str]:
        return [name for name in (_text(n) or "" for n in self.group.attrs.get("layer_names", []))
                if self._names(name)]

    def get(self, layer: str) -> List[Any]:
        import numpy as np

        return [np.asarray(self.group[layer][name]) for name in self._names(layer)]

    def set(self, layer: str, arrays: List[Any]) -> None:
        for name, array in zip(self._names(layer), arrays):
            del self.group[layer][name]
            self.group[layer].create_dataset(name, data=array)

    def give(self, layer: str, names: List[str], arrays: List[Any]) -> None:
        import numpy as np

        listed = [_text(n) for n in self.group.attrs.get("layer_names", [])]
        if layer not in listed or self._names(layer):
            raise ValueError(f"{layer} is not a layer the file lists without weights")
        target = self.group.require_group(layer)
        for name, array in zip(names, arrays):
            target.create_dataset(name, data=array)
        target.attrs["weight_names"] = np.array([n.encode("utf-8") for n in names])


class ArchiveWeights(Weights):
    """A weights file of Keras 2.12 and later (a .weights.h5, or the one inside a .keras archive, extracted) open for
    writing: groups by object path."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def layers(self) -> List[str]:
        return []

    def groups(self, path: str) -> List[str]:
        import h5py

        group = self.handle[path] if path else self.handle
        return [name for name, item in group.items() if isinstance(item, h5py.Group)]

    def move(self, old: str, new: str) -> None:
        self.handle.move(old, new)


def _read_h5(handle: Any, kind: str) -> Saved:
    attrs = handle.attrs
    keras = _text(attrs.get("keras_version"))
    if kind == WEIGHTS_H5:
        return Saved(kind, keras, None, weights=H5Weights(handle))
    training = _text(attrs.get("training_config"))
    group = handle.get("model_weights")
    return Saved(kind, keras, json.loads(_text(attrs["model_config"]) or "null"),
                 json.loads(training) if training else None, H5Weights(group) if group is not None else None)


def _write_h5(handle: Any, saved: Saved) -> None:
    if saved.layout != H5:
        return
    handle.attrs["model_config"] = json.dumps(saved.model).encode("utf-8")
    if saved.compile is None:
        if "training_config" in handle.attrs:
            del handle.attrs["training_config"]
        if "optimizer_weights" in handle:
            del handle["optimizer_weights"]  # the state of an optimizer that is no longer compiled
    else:
        handle.attrs["training_config"] = json.dumps(saved.compile).encode("utf-8")


def _read_keras(path: str) -> Saved:
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read(_CONFIG))
        names = archive.namelist()
        metadata = json.loads(archive.read(_METADATA)) if _METADATA in names else {}
    compile_config = config.pop("compile_config", None) if isinstance(config, dict) else None
    return Saved(KERAS, _text(metadata.get("keras_version")), config, compile_config)


def _write_keras(source: str, dest: str, saved: Saved, weights: Optional[str]) -> None:
    """The archive again with the adapted config (and `weights`, a weights file to put in place of its own)."""
    config = dict(saved.model)
    if saved.compile is not None:
        config["compile_config"] = saved.compile
    with zipfile.ZipFile(source) as archive, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as out:
        for info in archive.infolist():
            if info.filename == _CONFIG:
                out.writestr(info, json.dumps(config).encode("utf-8"))
            elif info.filename == _WEIGHTS and weights is not None:
                out.write(weights, _WEIGHTS)
            else:
                out.writestr(info, archive.read(info))


def _read_json(path: str) -> Saved:
    with open(path, encoding="utf-8") as fh:
        config = json.load(fh)
    return Saved(JSON, _text(config.get("keras_version")) if isinstance(config, dict) else None, config)


def _edit(path: str, dest: str, kind: str, target: str, written_by: Optional[str]) -> Tuple[Optional[str],
                                                                                           List[Dict[str, Any]]]:
    """Copy the file to dest with the chain's edits: (the Keras that wrote it, what each adapter did)."""
    if kind in (H5, WEIGHTS_H5, KERAS_WEIGHTS):
        import h5py

        shutil.copyfile(path, dest)
        with h5py.File(dest, "r+") as handle:
            saved = (Saved(kind, None, None, weights=ArchiveWeights(handle)) if kind == KERAS_WEIGHTS
                     else _read_h5(handle, kind))
            saved.keras = saved.keras or written_by
            done = adapt(saved, target)
            if any(d["edits"] for d in done):
                _write_h5(handle, saved)
        return saved.keras, done
    if kind == KERAS:
        return _edit_keras(path, dest, target, written_by)
    saved = _read_json(path)
    saved.keras = saved.keras or written_by
    done = adapt(saved, target)
    if any(d["edits"] for d in done):
        with open(dest, "w", encoding="utf-8") as fh:
            json.dump(saved.model, fh)
    return saved.keras, done


def _edit_keras(path: str, dest: str, target: str, written_by: Optional[str]) -> Tuple[Optional[str],
                                                                                      List[Dict[str, Any]]]:
    import h5py

    saved = _read_keras(path)
    saved.keras = saved.keras or written_by
    weights = dest + ".weights.tmp"
    with zipfile.ZipFile(path) as archive:
        has_weights = _WEIGHTS in archive.namelist()
        if has_weights:
            with archive.open(_WEIGHTS) as member, open(weights, "wb") as fh:
                shutil.copyfileobj(member, fh)
    try:
        if has_weights:
            with h5py.File(weights, "r+") as handle:
                saved.weights = ArchiveWeights(handle)
                done = adapt(saved, target)
        else:
            done = adapt(saved, target)
        if any(d["edits"] for d in done):
            weights_changed = any(WEIGHTS_PART in a.parts for a in ADAPTERS if a.name in
                                  {d["adapter"] for d in done if d["edits"]})
            _write_keras(path, dest, saved, weights if has_weights and weights_changed else None)
    finally:
        if os.path.exists(weights):
            os.unlink(weights)
    return saved.keras, done


def make(path: str, target: str, folder: str, *, weights: Optional[str] = None,
         written_by: Optional[str] = None) -> Dict[str, Any]:
    """Adapt `path` for Keras `target` into `folder` and write the account there (adapted.json): status `adapted`
    (its files and their sha256), `cannot` (an adapter found its change and could not make it), or `nothing` (no
    adapter had anything to change). `weights`: the weights file an architecture JSON is read with; `written_by`:
    the Keras that wrote the file, as its saving environment recorded it (for a file that does not say)."""
    kind = layout(path)
    os.makedirs(folder, exist_ok=True)
    account: Dict[str, Any] = {"schema": ACCOUNT_SCHEMA, "layout": kind, "target_keras": target, "adapters": [],
                               "files": {}, "file": None}
    if kind is None:
        account.update(status="nothing", why="no adapter reads this kind of file (a SavedModel)")
        return _written(folder, account)
    name = os.path.basename(path)
    dest = os.path.join(folder, name)
    source, done = _edit(path, dest, kind, target, written_by)
    account.update(source_keras=source, adapters=done, tried=[a.name for a in chain(source, target, kind)])
    if done and "cannot" in done[-1]:
        account["status"] = "cannot"
    elif not any(d["edits"] for d in done):
        account["status"] = "nothing"
    else:
        account.update(status="adapted", file=name, hand=[name])
        beside = os.path.join(os.path.dirname(path), weights or "")
        if kind == JSON and weights and os.path.isfile(beside):  # an architecture is loaded with its weights
            shutil.copyfile(beside, os.path.join(folder, weights))
            account["hand"].append(weights)
    if account["file"] is None and os.path.exists(dest):
        os.unlink(dest)  # an unfinished copy is never left where an adapted file is looked for
    return _written(folder, account)


def _written(folder: str, account: Dict[str, Any]) -> Dict[str, Any]:
    account["files"] = {name: sha256_file(os.path.join(folder, name)) for name in sorted(os.listdir(folder))
                        if name != ADAPTED and os.path.isfile(os.path.join(folder, name))}
    write_json_atomic(os.path.join(folder, ADAPTED), account, strict=True)
    return account


def record(folder: str, account: Dict[str, Any], **changes: Any) -> Dict[str, Any]:
    """Update the account after the loader's later steps (a .keras saved from the adapted file, a failed load)."""
    account.update(changes)
    return _written(folder, account)


def clear(folder: str, account: Dict[str, Any], why: str) -> None:
    """A load of the adapted copy failed: remove its files (never left to be handed over); the account says why."""
    for name in list(account.get("files") or {}):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            os.unlink(path)
    record(folder, account, status="failed", why=why, file=None, hand=[])
