"""What a process really runs: Python, TensorFlow, and the Keras that tf.keras resolves to."""

from __future__ import annotations

import platform
import sys
from typing import Any, List

from harness.agent.protocol import Versions

try:
    from importlib import metadata as _metadata
except ImportError:  # pragma: no cover - Python < 3.8 is not supported anyway
    _metadata = None  # type: ignore[assignment]


def _dist_version(name: str) -> str:
    try:
        return str(_metadata.version(name))
    except Exception:
        return ""


def keras_module(tf: Any) -> Any:
    """The Keras package that `tf.keras` resolves to in this process."""
    return tf.keras


def collect(tf: Any) -> Versions:
    """Versions of this process, decided from what `tf.keras` really is.

    With tf-keras installed both `keras` and `tf_keras` are importable; only the
    module behind `tf.keras` (TF_USE_LEGACY_KERAS) says which one models use.
    """
    layer_module = keras_module(tf).layers.Dense.__module__
    keras_dist = "tf-keras" if layer_module.split(".")[0] == "tf_keras" else "keras"
    keras_version = _dist_version(keras_dist) or str(getattr(keras_module(tf), "__version__", ""))
    major = keras_version.split(".")[0]
    tf_dist = "tensorflow-cpu" if _dist_version("tensorflow-cpu") else "tensorflow"
    return {
        "python": platform.python_version(),
        "tensorflow": str(tf.__version__),
        "tensorflow_package": tf_dist,
        "keras": keras_version,
        "keras_package": keras_dist,
        "keras_major": int(major) if major.isdigit() else None,
        "backend": _backend(keras_module(tf)),
        "numpy": _dist_version("numpy"),
        "h5py": _dist_version("h5py"),
        "platform": sys.platform,
    }


def _backend(keras: Any) -> str:
    """The Keras backend (KERAS_BACKEND in Keras 3); Keras 2 runs on TensorFlow only."""
    try:
        return str(keras.backend.backend())
    except Exception:
        return "tensorflow"


def pip_freeze() -> List[str]:
    """`pip freeze`-style lines for every installed distribution, sorted."""
    lines = set()
    for dist in _metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            lines.add(f"{name}=={dist.version}")
    return sorted(lines, key=str.lower)
