"""Save formats and loaders, written against whichever Keras `tf.keras` resolves to."""

from __future__ import annotations

import os
import zipfile
from typing import Any, Callable, Dict, Tuple

import numpy as np

# format -> file or directory name inside artifacts/<env>/<model>/<format>/
ARTIFACT_NAMES = {
    "h5": "model.h5",
    "keras": "model.keras",
}


class Unsupported(Exception):
    """This environment cannot write this format or run this loader."""


def save(model: Any, fmt: str, directory: str, keras_version: Tuple[int, ...]) -> str:
    """Save a model in one format under directory; return the artifact path."""
    path = os.path.join(directory, ARTIFACT_NAMES[fmt])
    if fmt == "keras" and keras_version < (2, 13):
        # Keras 2.12 writes HDF5 into a file named .keras unless asked for the
        # zip format by name; 2.13 made the zip the default for that suffix.
        model.save(path, save_format="keras_v3")
    else:
        model.save(path)
    if fmt == "keras" and not zipfile.is_zipfile(path):
        raise ValueError(f"model.save wrote {path} but it is not a .keras zip archive")
    return path


def version_tuple(version: str) -> Tuple[int, ...]:
    """'2.12.0' -> (2, 12, 0); non-numeric parts end the tuple."""
    parts = []
    for piece in version.split("."):
        if not piece.isdigit():
            break
        parts.append(int(piece))
    return tuple(parts)


def _load_model(keras: Any, path: str) -> Any:
    return keras.models.load_model(path)


LOADERS: Dict[str, Callable[[Any, str], Any]] = {
    "load_model": _load_model,
}


def load(keras: Any, loader: str, fmt: str, path: str) -> Any:
    """Load an artifact with a named loader."""
    if loader not in LOADERS:
        raise Unsupported(f"no loader named {loader}")
    return LOADERS[loader](keras, path)


def predict(model: Any, x: Any) -> Tuple[Any, str]:
    """Predictions as a numpy array and the call that produced them.

    A direct call avoids `predict()`'s per-call tf.function tracing and batching,
    which costs far more than the arithmetic for probe-sized inputs.
    """
    return np.asarray(model(x, training=False)), "model(x, training=False)"


def evaluate(model: Any, x: Any, y: Any) -> Dict[str, float]:
    """`evaluate()` results by metric name, as the loaded model reports them."""
    result = model.evaluate(x, y, verbose=0, return_dict=True)
    return {str(k): float(v) for k, v in sorted(result.items())}
