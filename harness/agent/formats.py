"""Save formats and loaders, written against whichever Keras `tf.keras` resolves to."""

from __future__ import annotations

import json
import os
import zipfile
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from harness.agent import probes


class Unsupported(Exception):
    """This environment cannot write this format or run this loader."""


class Context:
    """The TensorFlow and Keras of this process, and which generation that Keras is."""

    def __init__(self, tf: Any, versions: Dict[str, Any]) -> None:
        self.tf = tf
        self.keras = tf.keras
        self.major = int(versions.get("keras_major") or 2)
        self.version = version_tuple(str(versions.get("keras", "")))
        self.python = str(versions.get("python", ""))


def version_tuple(version: str) -> Tuple[int, ...]:
    """'2.12.0' -> (2, 12, 0); non-numeric parts end the tuple."""
    parts = []
    for piece in version.split("."):
        if not piece.isdigit():
            break
        parts.append(int(piece))
    return tuple(parts)


# ---------------------------------------------------------------- saving

def _save_keras(ctx: Context, model: Any, directory: str, probe: str) -> str:
    path = os.path.join(directory, "model.keras")
    if ctx.version < (2, 13):
        # Keras 2.12 writes HDF5 into a file named .keras unless asked for the
        # zip format by name; 2.13 made the zip the default for that suffix.
        model.save(path, save_format="keras_v3")
    else:
        model.save(path)
    if not zipfile.is_zipfile(path):
        raise ValueError(f"model.save wrote {path} but it is not a .keras zip archive")
    return path


def _save_h5(ctx: Context, model: Any, directory: str, probe: str) -> str:
    path = os.path.join(directory, "model.h5")
    model.save(path)
    return path


def _save_savedmodel(ctx: Context, model: Any, directory: str, probe: str) -> str:
    if ctx.major >= 3:
        raise Unsupported("Keras 3 model.save cannot write a SavedModel; the 'export' format is its successor")
    path = os.path.join(directory, "savedmodel")
    model.save(path, save_format="tf")
    return path


def _save_weights_h5(ctx: Context, model: Any, directory: str, probe: str) -> str:
    path = os.path.join(directory, "model.weights.h5")
    model.save_weights(path)
    return path


def _save_tf_checkpoint(ctx: Context, model: Any, directory: str, probe: str) -> str:
    if ctx.major >= 3:
        raise Unsupported("Keras 3 save_weights writes only .weights.h5, not TensorFlow checkpoints")
    path = os.path.join(directory, "ckpt", "weights")
    model.save_weights(path)
    return path


def _save_json(ctx: Context, model: Any, directory: str, probe: str) -> str:
    path = os.path.join(directory, "model.json")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(model.to_json())
    model.save_weights(os.path.join(directory, "model.weights.h5"))
    return path


def _save_export(ctx: Context, model: Any, directory: str, probe: str) -> str:
    if not hasattr(model, "export"):
        raise Unsupported("model.export() arrived in Keras 2.13")
    path = os.path.join(directory, "export")
    model.export(path)
    return path


def _save_seed(ctx: Context, model: Any, directory: str, probe: str) -> str:
    path = os.path.join(directory, "seed.json")
    with open(path, "w", encoding="utf-8") as fh:
        json.dump({"seed": probes.SEED, "probe": probe}, fh)
    return path


SAVERS: Dict[str, Callable[[Context, Any, str, str], str]] = {
    "h5": _save_h5, "keras": _save_keras, "savedmodel": _save_savedmodel, "weights_h5": _save_weights_h5,
    "tf_checkpoint": _save_tf_checkpoint, "json": _save_json, "export": _save_export, "seed": _save_seed,
}


def save(ctx: Context, model: Any, fmt: str, directory: str, probe: str) -> str:
    """Save a model in one format under directory; return the artifact path."""
    return SAVERS[fmt](ctx, model, directory, probe)


# ---------------------------------------------------------------- loading

class Loaded:
    """A loaded artifact: how to predict with it, and the Keras model to evaluate, if any."""

    def __init__(self, predict: Callable[[List[Any]], Any], call: str, model: Optional[Any] = None,
                 options: Optional[Dict[str, Any]] = None) -> None:
        self.predict = predict
        self.call = call
        self.model = model
        self.options = options or {}


def keras_model(model: Any, options: Optional[Dict[str, Any]] = None, evaluable: bool = True) -> Loaded:
    """Wrap a Keras model; evaluable=False when the loader does not restore compile() state.

    A direct call avoids predict()'s per-call tf.function tracing and batching,
    which costs far more than the arithmetic for probe-sized inputs.
    """
    return Loaded(lambda arrays: _first(model(probes.feed(arrays), training=False)),
                  "model(x, training=False)", model if evaluable else None, options)


def _first(outputs: Any) -> Any:
    """One output array from a tensor, a list, or a dict of outputs (sorted by name)."""
    if isinstance(outputs, dict):
        outputs = outputs[sorted(outputs)[0]]
    elif isinstance(outputs, (list, tuple)):
        outputs = outputs[0]
    return np.asarray(outputs)


def _load_model(ctx: Context, path: str, probe: str) -> Loaded:
    options = {"safe_mode": "default (True)"} if ctx.version >= (2, 13) and path.endswith(".keras") else {}
    return keras_model(ctx.keras.models.load_model(path), options)


def _load_model_custom(ctx: Context, path: str, probe: str) -> Loaded:
    model = ctx.keras.models.load_model(path, custom_objects=probes.custom_objects(probe, ctx.keras))
    return keras_model(model, {"custom_objects": True})


def _load_model_unsafe(ctx: Context, path: str, probe: str) -> Loaded:
    if ctx.version < (2, 13):
        raise Unsupported("load_model has no safe_mode before Keras 2.13")
    model = ctx.keras.models.load_model(path, safe_mode=False)
    return keras_model(model, {"safe_mode": False})


def _load_model_nocompile(ctx: Context, path: str, probe: str) -> Loaded:
    # The optimizer and loss of an old file's training config may no longer deserialize; the weights do.
    return keras_model(ctx.keras.models.load_model(path, compile=False), {"compile": False}, evaluable=False)


def _rebuild(ctx: Context, path: str, probe: str) -> Loaded:
    model = probes.architecture(probe, ctx.keras, probes.custom_objects(probe, ctx.keras))
    model.load_weights(path)
    return keras_model(model, {"rebuilt_from_code": True})


def _model_from_json(ctx: Context, path: str, probe: str) -> Loaded:
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    model = ctx.keras.models.model_from_json(text, custom_objects=probes.custom_objects(probe, ctx.keras))
    model.load_weights(os.path.join(os.path.dirname(path), "model.weights.h5"))
    # An architecture JSON carries no compile() settings: nothing to evaluate.
    return keras_model(model, {"custom_objects": True}, evaluable=False)


def _signature_call(ctx: Context, fn: Any, names: List[str], arrays: List[Any]) -> Any:
    expected = sorted(fn.structured_input_signature[1])
    if len(expected) == 1:
        feeds = {expected[0]: arrays[0]}
    elif sorted(names) == expected:
        feeds = dict(zip(names, arrays))
    else:  # signature names differ from the model's: fall back to position
        feeds = dict(zip(expected, arrays))
    return _first(fn(**{k: ctx.tf.constant(v) for k, v in feeds.items()}))


def _saved_model(ctx: Context, path: str, probe: str, names: List[str]) -> Loaded:
    loaded = ctx.tf.saved_model.load(path)
    fn = loaded.signatures["serving_default"]
    return Loaded(lambda arrays: _signature_call(ctx, fn, names, arrays), "signatures['serving_default']")


def _tfsm_layer(ctx: Context, path: str, probe: str) -> Loaded:
    if ctx.major < 3:
        raise Unsupported("TFSMLayer exists only in Keras 3")
    layer = ctx.keras.layers.TFSMLayer(path, call_endpoint="serving_default")
    return Loaded(lambda arrays: _first(layer(probes.feed(arrays))), "TFSMLayer(x)")


def _rebuild_from_seed(ctx: Context, path: str, probe: str) -> Loaded:
    built = probes.build(probe, ctx.keras)
    return keras_model(built["model"], {"rebuilt_from_seed": probes.SEED})


def _tf1_session(ctx: Context, path: str, probe: str) -> Loaded:
    if ctx.major >= 3:
        raise Unsupported("Keras 3 has no TF1 graph/session path")
    tf = ctx.tf
    # The classic TF1 pattern: a session, load_model, then the initializer that
    # silently overwrites the loaded weights. Runs in a worker of its own.
    tf.compat.v1.disable_eager_execution()
    ctx.keras.backend.clear_session()  # a fresh graph per artifact in the shared graph-mode worker
    session = tf.compat.v1.Session()
    tf.compat.v1.keras.backend.set_session(session)
    model = ctx.keras.models.load_model(path)
    session.run(tf.compat.v1.global_variables_initializer())
    return Loaded(lambda arrays: np.asarray(model.predict(probes.feed(arrays), verbose=0)),
                  "model.predict(x) in a tf.compat.v1 session")


LOADERS: Dict[str, Callable[[Context, str, str], Loaded]] = {
    "load_model": _load_model, "load_model_custom": _load_model_custom, "load_model_unsafe": _load_model_unsafe,
    "load_model_nocompile": _load_model_nocompile,
    "rebuild": _rebuild, "model_from_json": _model_from_json, "tfsm_layer": _tfsm_layer,
    "rebuild_from_seed": _rebuild_from_seed, "tf1_session": _tf1_session,
}


def load(ctx: Context, loader: str, path: str, probe: str, input_names: List[str]) -> Loaded:
    """Load an artifact with a named loader."""
    if loader == "saved_model":
        return _saved_model(ctx, path, probe, input_names)
    if loader not in LOADERS:
        raise Unsupported(f"no loader named {loader}")
    return LOADERS[loader](ctx, path, probe)


def evaluate(model: Any, arrays: List[Any], y: Any) -> Dict[str, float]:
    """`evaluate()` results by metric name, as the model reports them.

    Computed as evaluate() does for one batch holding every reference sample,
    with test_on_batch: the same names and numbers at a tenth of the cost
    (evaluate() builds data adapters and callbacks per call). Eager, because
    tracing a tf.function per loaded model costs seconds; the save phase
    computes its reference the same way.
    """
    model.run_eagerly = True
    model.reset_metrics()  # a freshly trained model still holds its training metrics
    result = model.test_on_batch(probes.feed(arrays), y, return_dict=True)
    return {str(k): float(v) for k, v in sorted(result.items())}
