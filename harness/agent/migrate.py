"""A migrated model: an existing artifact loaded in its home environment, to be saved there again in every format.

The save step builds it here instead of calling a factory: the artifact's pseudo-source (mounted
read-only at origin_dir(model)) is checked against its manifest, then loaded with the first loader
of the spec's list that gives back a Keras model which predicts. What was tried, and what made the
model, goes into the save records and the manifest; the host compares every later load of the
migrated files with the original artifact's reference.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Dict, List, Optional, Tuple

import numpy as np

from harness.agent import formats
from harness.agent.common import error_info
from harness.agent.models import Built, ModelCode
from harness.agent.protocol import (
    MadeBy,
    ManifestEntry,
    ModelSpec,
    SavedFormat,
    Tried,
    artifact_source,
    origin_dir,
    read_manifest,
    sha256_file,
)


class MigrationFailed(Exception):
    """No loader of the migration's list loaded the artifact in its home environment."""


def _changed(root: str, files: Dict[str, str], model: str) -> Optional[str]:
    for rel, digest in sorted(files.items()):
        path = os.path.join(root, model, rel)
        if not os.path.isfile(path):
            return f"{rel} is missing"
        if sha256_file(path) != digest:
            return f"{rel} does not match its sha256 in manifest.json"
    return None


def _origin(spec: ModelSpec) -> Tuple[str, ManifestEntry, SavedFormat]:
    """(the pseudo-source folder, the artifact's manifest entry, its format's entry), checked against its sha256."""
    how = spec.migrates
    assert how is not None
    root = origin_dir(how.model)
    entry = (read_manifest(root) or {}).get("models", {}).get(how.model)
    saved = (entry or {}).get("formats", {}).get(how.format)
    if entry is None or saved is None:
        raise MigrationFailed(f"{artifact_source(how.model)} holds no {how.format} artifact of {how.model}")
    changed = _changed(root, saved.get("files", {}), how.model)
    if changed:
        raise MigrationFailed(f"the artifact changed since it was staged: {changed}")
    return root, entry, saved


def build(ctx: formats.Context, spec: ModelSpec) -> Tuple[Built, MadeBy]:
    """The original model, loaded by the first loader that works here, with its inputs; and how it was made."""
    how = spec.migrates
    assert how is not None
    root, entry, saved = _origin(spec)
    with np.load(os.path.join(root, entry["inputs"]), allow_pickle=False) as data:
        inputs = {name: data[name] for name in data.files}
    # Loaded as the original is loaded: its name, and the weights file beside its architecture JSON.
    original = ModelCode(dataclasses.replace(spec, name=how.model, migrates=None, weights=how.weights), ctx.keras)
    tried: List[Tried] = []
    for loader in how.loaders:
        try:
            loaded = formats.load(ctx, loader, os.path.join(root, saved["path"]), original, list(inputs))
            if loaded.keras is None:
                raise formats.Unsupported(f"{loader} gives back no Keras model to save again")
            loaded.predict(list(inputs.values()))  # a model that loads but cannot predict is no start either
        except Exception as exc:  # the next loader may work: each failure is recorded
            tried.append({"loader": loader, "status": "error", "error": error_info(exc)})
            continue
        tried.append({"loader": loader, "status": "ok"})
        made: MadeBy = {"model": how.model, "source": artifact_source(how.model), "format": how.format,
                        "loader": loader, "env": how.env, "tried": tried}
        return Built(loaded.keras, inputs, None, {}), made
    words = "; ".join(f"{t['loader']}: {t['error']['type']}: {t['error']['message'][:200]}" for t in tried)
    raise MigrationFailed(f"no loader of {list(how.loaders)} loaded {how.model}'s {how.format} here ({words})")
