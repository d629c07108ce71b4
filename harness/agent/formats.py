"""Save formats and loaders, written against whichever Keras `tf.keras` resolves to."""

from __future__ import annotations

import json
import os
import zipfile
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from harness.agent.models import Loaded, ModelCode, feed, first_output, keras_model
from harness.agent.protocol import SEED


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

def _save_keras(ctx: Context, model: Any, directory: str, name: str) -> str:
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


def _save_h5(ctx: Context, model: Any, directory: str, name: str) -> str:
    path = os.path.join(directory, "model.h5")
    model.save(path)
    return path


def _save_savedmodel(ctx: Context, model: Any, directory: str, name: str) -> str:
    if ctx.major >= 3:
        raise Unsupported("Keras 3 model.save cannot write a SavedModel; the 'export' format is its successor")
    path = os.path.join(directory, "savedmodel")
    model.save(path, save_format="tf")
    return path


def _save_weights_h5(ctx: Context, model: Any, directory: str, name: str) -> str:
    path = os.path.join(directory, "model.weights.h5")
    model.save_weights(path)
    return path


def _save_tf_checkpoint(ctx: Context, model: Any, directory: str, name: str) -> str:
    if ctx.major >= 3:
        raise Unsupported("Keras 3 save_weights writes only .weights.h5, not TensorFlow checkpoints")
    path = os.path.join(directory, "ckpt", "weights")
    model.save_weights(path)
    return path


def _save_json(ctx: Context, model: Any, directory: str, name: str) -> str:
    path = os.path.join(directory, "model.json")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(model.to_json())
    model.save_weights(os.path.join(directory, "model.weights.h5"))
    return path


def _save_export(ctx: Context, model: Any, directory: str, name: str) -> str:
    if not hasattr(model, "export"):
        raise Unsupported("model.export() arrived in Keras 2.13")
    path = os.path.join(directory, "export")
    model.export(path)
    return path


def _save_seed(ctx: Context, model: Any, directory: str, name: str) -> str:
    path = os.path.join(directory, "seed.json")
    with open(path, "w", encoding="utf-8") as fh:
        json.dump({"seed": SEED, "probe": name}, fh)
    return path


SAVERS: Dict[str, Callable[[Context, Any, str, str], str]] = {
    "h5": _save_h5, "keras": _save_keras, "savedmodel": _save_savedmodel, "weights_h5": _save_weights_h5,
    "tf_checkpoint": _save_tf_checkpoint, "json": _save_json, "export": _save_export, "seed": _save_seed,
}


def save(ctx: Context, model: Any, fmt: str, directory: str, name: str) -> str:
    """Save a model in one format under directory; return the artifact path."""
    return SAVERS[fmt](ctx, model, directory, name)


# ---------------------------------------------------------------- loading
# Every loader takes the model's code (its custom objects, factory and spec), whatever kind of model it is.


def _load_model(ctx: Context, path: str, code: ModelCode, *, loader: str = "load_model",
                safe_mode: Optional[bool] = None, compile_model: bool = True) -> Loaded:
    options: Dict[str, Any] = {}
    kwargs: Dict[str, Any] = {}
    if not code.withholds(loader):
        objects = code.custom_objects(loader)
        kwargs["custom_objects"] = objects or None
        options["custom_objects"] = bool(objects)
    if safe_mode is False:
        if ctx.version < (2, 13):
            raise Unsupported("load_model has no safe_mode before Keras 2.13")
        kwargs["safe_mode"] = options["safe_mode"] = False
    elif ctx.version >= (2, 13) and path.endswith(".keras"):
        options["safe_mode"] = "default (True)"
    if not compile_model:
        kwargs["compile"] = options["compile"] = False
    return keras_model(ctx.keras.models.load_model(path, **kwargs), options, evaluable=compile_model)


def _load_model_custom(ctx: Context, path: str, code: ModelCode) -> Loaded:
    model = ctx.keras.models.load_model(path, custom_objects=code.custom_objects())
    return keras_model(model, {"custom_objects": True})


def _load_model_unsafe(ctx: Context, path: str, code: ModelCode) -> Loaded:
    return _load_model(ctx, path, code, loader="load_model_unsafe", safe_mode=False)


def _load_model_nocompile(ctx: Context, path: str, code: ModelCode) -> Loaded:
    # The optimizer and loss of an old file's training config may no longer deserialize; the weights do.
    return _load_model(ctx, path, code, loader="load_model_nocompile", compile_model=False)


def _rebuild(ctx: Context, path: str, code: ModelCode) -> Loaded:
    model = code.fresh()
    model.load_weights(path)
    return keras_model(model, {"rebuilt_from_code": True})


def _model_from_json(ctx: Context, path: str, code: ModelCode) -> Loaded:
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    objects = code.custom_objects("model_from_json")
    model = ctx.keras.models.model_from_json(text, custom_objects=objects or None)
    model.load_weights(os.path.join(os.path.dirname(path), code.spec.weights or "model.weights.h5"))
    # An architecture JSON carries no compile() settings: nothing to evaluate.
    return keras_model(model, {"custom_objects": bool(objects)}, evaluable=False)


def _signature_call(ctx: Context, fn: Any, names: List[str], arrays: List[Any]) -> Any:
    expected = sorted(fn.structured_input_signature[1])
    if len(expected) == 1:
        feeds = {expected[0]: arrays[0]}
    elif sorted(names) == expected:
        feeds = dict(zip(names, arrays))
    else:  # signature names differ from the model's: fall back to position
        feeds = dict(zip(expected, arrays))
    return first_output(fn(**{k: ctx.tf.constant(v) for k, v in feeds.items()}))


def _saved_model(ctx: Context, path: str, code: ModelCode, names: List[str]) -> Loaded:
    loaded = ctx.tf.saved_model.load(path)
    fn = loaded.signatures["serving_default"]
    return Loaded(lambda arrays: _signature_call(ctx, fn, names, arrays), "signatures['serving_default']")


def _tfsm_layer(ctx: Context, path: str, code: ModelCode) -> Loaded:
    if ctx.major < 3:
        raise Unsupported("TFSMLayer exists only in Keras 3")
    layer = ctx.keras.layers.TFSMLayer(path, call_endpoint="serving_default")
    return Loaded(lambda arrays: first_output(layer(feed(arrays))), "TFSMLayer(x)")


def _rebuild_from_seed(ctx: Context, path: str, code: ModelCode) -> Loaded:
    return keras_model(code.build().model, {"rebuilt_from_seed": code.spec.seed})


def _tf1_session(ctx: Context, path: str, code: ModelCode) -> Loaded:
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
    return Loaded(lambda arrays: np.asarray(model.predict(feed(arrays), verbose=0)),
                  "model.predict(x) in a tf.compat.v1 session")


LOADERS: Dict[str, Callable[[Context, str, ModelCode], Loaded]] = {
    "load_model": _load_model, "load_model_custom": _load_model_custom, "load_model_unsafe": _load_model_unsafe,
    "load_model_nocompile": _load_model_nocompile,
    "rebuild": _rebuild, "model_from_json": _model_from_json, "tfsm_layer": _tfsm_layer,
    "rebuild_from_seed": _rebuild_from_seed, "tf1_session": _tf1_session,
}


def load(ctx: Context, loader: str, path: str, code: ModelCode, input_names: List[str]) -> Loaded:
    """Load an artifact with a named loader."""
    if loader == "saved_model":
        return _saved_model(ctx, path, code, input_names)
    if loader not in LOADERS:
        raise Unsupported(f"no loader named {loader}")
    return LOADERS[loader](ctx, path, code)


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
    result = model.test_on_batch(feed(arrays), y, return_dict=True)
    return {str(k): float(v) for k, v in sorted(result.items())}
