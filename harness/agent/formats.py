"""Save formats and loaders, written against whichever Keras `tf.keras` resolves to."""

from __future__ import annotations

import json
import os
import zipfile
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

import numpy as np

from harness.agent.models import Loaded, ModelCode, feed, first_output, keras_model
from harness.agent.protocol import SEED, ModelSpec, Versions, adapted_dir


class Unsupported(Exception):
    """This environment cannot write this format or run this loader."""


class Context:
    """The TensorFlow and Keras of this process, and which generation that Keras is."""

    def __init__(self, tf: Any, versions: Versions) -> None:
        self.versions = versions
        self.tf = tf
        self.keras = tf.keras
        self.major = int(versions.get("keras_major") or 2)
        self.version = version_tuple(str(versions.get("keras", "")))
        self.python = str(versions.get("python", ""))
        self.backend = str(versions.get("backend") or "tensorflow")


def version_tuple(version: str) -> Tuple[int, ...]:
    """'2.12.0' -> (2, 12, 0); non-numeric parts end the tuple."""
    parts = []
    for piece in version.split("."):
        if not piece.isdigit():
            break
        parts.append(int(piece))
    return tuple(parts)


def cannot_build(ctx: Context, spec: ModelSpec) -> Optional[str]:
    """Why this environment cannot build a model its spec restricts (generation, release, backend), or None."""
    why = ""
    if ctx.major not in spec.builds_on:
        why = f"Keras {ctx.major} cannot build it"
    elif spec.min_keras and ctx.version < version_tuple(spec.min_keras):
        why = f"Keras {'.'.join(map(str, ctx.version))} cannot build it (needs Keras >= {spec.min_keras})"
    elif spec.backends is not None and ctx.backend not in spec.backends:
        why = f"the {ctx.backend} backend cannot build it (needs {' or '.join(spec.backends)})"
    else:
        lacking = [name for name in spec.needs if not _has(ctx.keras, name)]
        if lacking:
            why = f"Keras {'.'.join(map(str, ctx.version))} has no keras.{lacking[0]}"
    if not why:
        return None
    return why + (": " + spec.build_note if spec.build_note else "")


def _has(module: Any, dotted: str) -> bool:
    """Whether module.a.b.c exists."""
    for part in dotted.split("."):
        module = getattr(module, part, None)
        if module is None:
            return False
    return True


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


def _save_tflite(ctx: Context, model: Any, directory: str, name: str) -> str:
    raise Unsupported("a .tflite file is only ever an existing file here: the harness converts a model to TFLite "
                      "when it loads it (the tflite loader), not when it saves it")


SAVERS: Dict[str, Callable[[Context, Any, str, str], str]] = {
    "h5": _save_h5, "keras": _save_keras, "savedmodel": _save_savedmodel, "weights_h5": _save_weights_h5,
    "tf_checkpoint": _save_tf_checkpoint, "json": _save_json, "export": _save_export, "seed": _save_seed,
    "tflite": _save_tflite,
}


def save(ctx: Context, model: Any, fmt: str, directory: str, name: str) -> str:
    """Save a model in one format under directory; return the artifact path."""
    return SAVERS[fmt](ctx, model, directory, name)


# ---------------------------------------------------------------- loading
# Every loader takes the same three things: this process's Keras, the saved artifact (with the model's
# input and output names, which serving calls use), and the model's code (its custom objects, factory
# and spec), whatever kind of model it is.


class Saved(NamedTuple):
    """What a loader reads: the artifact's path, and the model's input and output names."""

    path: str
    input_names: List[str]
    output_names: List[str]
    output: Optional[str] = None  # where the load's predictions go: a loader writing files writes them beside it
    written_by: Optional[str] = None  # the Keras release of the environment that saved the artifact


def _keras_load(ctx: Context, path: str, code: ModelCode, *, loader: str,
                safe_mode: Optional[bool] = None, compile_model: bool = True) -> Loaded:
    options: Dict[str, Any] = {}
    kwargs: Dict[str, Any] = {}
    if not code.withholds(loader):
        objects = code.custom_objects(loader)
        kwargs["custom_objects"] = objects or None
        options["custom_objects"] = bool(objects)
    if safe_mode is False:
        if ctx.version < (2, 12):
            raise Unsupported("load_model has no safe_mode before Keras 2.12")
        kwargs["safe_mode"] = options["safe_mode"] = False
    elif ctx.version >= (2, 12) and path.endswith(".keras"):
        options["safe_mode"] = "default (True)"
    if not compile_model:
        kwargs["compile"] = options["compile"] = False
    return keras_model(ctx.keras.models.load_model(path, **kwargs), options, evaluable=compile_model)


def _load_model(ctx: Context, saved: Saved, code: ModelCode) -> Loaded:
    return _keras_load(ctx, saved.path, code, loader="load_model")


def _load_model_custom(ctx: Context, saved: Saved, code: ModelCode) -> Loaded:
    model = ctx.keras.models.load_model(saved.path, custom_objects=code.custom_objects())
    return keras_model(model, {"custom_objects": True})


def _load_model_unsafe(ctx: Context, saved: Saved, code: ModelCode) -> Loaded:
    return _keras_load(ctx, saved.path, code, loader="load_model_unsafe", safe_mode=False)


def _load_model_nocompile(ctx: Context, saved: Saved, code: ModelCode) -> Loaded:
    # The optimizer and loss of an old file's training config may no longer deserialize; the weights do.
    return _keras_load(ctx, saved.path, code, loader="load_model_nocompile", compile_model=False)


def _rebuild(ctx: Context, saved: Saved, code: ModelCode) -> Loaded:
    model = code.rebuilt()
    model.load_weights(saved.path)
    return keras_model(model, {"rebuilt_from_code": True})


def _model_from_json(ctx: Context, saved: Saved, code: ModelCode) -> Loaded:
    with open(saved.path, encoding="utf-8") as fh:
        text = fh.read()
    objects = code.custom_objects("model_from_json")
    model = ctx.keras.models.model_from_json(text, custom_objects=objects or None)
    model.load_weights(os.path.join(os.path.dirname(saved.path), code.spec.weights or "model.weights.h5"))
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


def _saved_model(ctx: Context, saved: Saved, code: ModelCode) -> Loaded:
    fn = ctx.tf.saved_model.load(saved.path).signatures["serving_default"]
    names = saved.input_names
    return Loaded(lambda arrays: _signature_call(ctx, fn, names, arrays), "signatures['serving_default']")


def _tfsm_layer(ctx: Context, saved: Saved, code: ModelCode) -> Loaded:
    if ctx.major < 3:
        raise Unsupported("TFSMLayer exists only in Keras 3")
    if ctx.backend != "tensorflow":
        raise Unsupported(f"TFSMLayer needs the TensorFlow backend, not {ctx.backend}")
    layer = ctx.keras.layers.TFSMLayer(saved.path, call_endpoint="serving_default")
    return Loaded(lambda arrays: first_output(layer(feed(arrays))), "TFSMLayer(x)")


def _rebuild_from_seed(ctx: Context, saved: Saved, code: ModelCode) -> Loaded:
    return keras_model(code.build().model, {"rebuilt_from_seed": code.spec.seed})


def _tf1_session(ctx: Context, saved: Saved, code: ModelCode) -> Loaded:
    if ctx.major >= 3:
        raise Unsupported("Keras 3 has no TF1 graph/session path")
    tf = ctx.tf
    # The classic TF1 pattern: a session, load_model, then the initializer that
    # silently overwrites the loaded weights. Runs in a worker of its own.
    tf.compat.v1.disable_eager_execution()
    ctx.keras.backend.clear_session()  # a fresh graph per artifact in the shared graph-mode worker
    # The re-initialisation draws from the graph's seed: seeded, it draws the same numbers in every run of this
    # TensorFlow, so the hazard shows the same drift every night instead of a new one (nothing else to compare).
    tf.compat.v1.set_random_seed(code.spec.seed)
    session = tf.compat.v1.Session()
    tf.compat.v1.keras.backend.set_session(session)
    model = ctx.keras.models.load_model(saved.path)
    session.run(tf.compat.v1.global_variables_initializer())
    return Loaded(lambda arrays: np.asarray(model.predict(feed(arrays), verbose=0)),
                  "model.predict(x) in a tf.compat.v1 session")


def _load_model_xla(ctx: Context, saved: Saved, code: ModelCode) -> Loaded:
    if ctx.backend != "tensorflow":
        raise Unsupported(f"tf.function(jit_compile=True) needs the TensorFlow backend, not {ctx.backend}")
    plain = _keras_load(ctx, saved.path, code, loader="load_model_xla")
    model: Any = plain.model
    fn = ctx.tf.function(lambda x: model(x, training=False), jit_compile=True)
    return Loaded(lambda arrays: first_output(fn(feed(arrays))), "tf.function(model, jit_compile=True)(x)",
                  model, dict(plain.options, jit_compile=True))


def _serving(ctx: Context, saved: Saved, code: ModelCode) -> Loaded:
    """The serving_default signature called as a serving client does: inputs by name, the output by its key."""
    names, outputs = saved.input_names, saved.output_names
    fn = ctx.tf.saved_model.load(saved.path).signatures["serving_default"]
    takes = sorted(fn.structured_input_signature[1])
    if sorted(names) != takes:
        raise KeyError(f"the request names inputs {sorted(names)} (the model's input names) but the serving "
                       f"signature takes {takes}")
    returns = sorted(fn.structured_outputs)
    wanted = outputs[0] if outputs else None
    if wanted not in returns:
        raise KeyError(f"the serving config reads output {wanted!r} (the model's output name) but the signature "
                       f"returns {returns}")

    def predict(arrays: List[Any]) -> Any:
        result = fn(**{name: ctx.tf.constant(a) for name, a in zip(names, arrays)})
        return np.asarray(result[wanted])

    return Loaded(predict, f"signatures['serving_default'](**inputs)[{wanted!r}]")


def _saved_model_call(ctx: Context, saved: Saved, code: ModelCode) -> Loaded:
    """The restored object called directly, with the float64 arrays numpy and JSON clients produce."""
    loaded = ctx.tf.saved_model.load(saved.path)
    fn = loaded if callable(loaded) else getattr(loaded, "serve", None)
    if fn is None:
        raise AttributeError("the restored SavedModel is not callable and has no serve() endpoint")

    def predict(arrays: List[Any]) -> Any:
        wide = [a.astype("float64") if a.dtype.kind == "f" else a for a in arrays]
        return first_output(fn(feed([ctx.tf.constant(a) for a in wide])))

    return Loaded(predict, "tf.saved_model.load(path)(float64 inputs)")


def _tflite(ctx: Context, saved: Saved, code: ModelCode) -> Loaded:
    """Convert what was loaded to TFLite (as users do: from the Keras model, or from a SavedModel) and interpret it."""
    lite, path, names = ctx.tf.lite, saved.path, saved.input_names
    if os.path.isdir(path):
        converter, how = lite.TFLiteConverter.from_saved_model(path), "from_saved_model"
    else:
        objects = code.custom_objects("tflite")
        model = ctx.keras.models.load_model(path, custom_objects=objects or None, compile=False)
        converter, how = lite.TFLiteConverter.from_keras_model(model), "from_keras_model"
    interpreter = lite.Interpreter(model_content=converter.convert())
    return Loaded(lambda arrays: _interpret(interpreter, names, arrays), f"TFLiteConverter.{how} + Interpreter")


def _tflite_interpreter(ctx: Context, saved: Saved, code: ModelCode) -> Loaded:
    """A .tflite file run by the TFLite interpreter, as an app runs it (inputs by name, else by position)."""
    interpreter = ctx.tf.lite.Interpreter(model_path=saved.path)
    names = saved.input_names
    return Loaded(lambda arrays: _interpret(interpreter, names, arrays), "tf.lite.Interpreter(model_path).invoke()")


def _interpret(interpreter: Any, names: List[str], arrays: List[Any]) -> Any:
    details = sorted(interpreter.get_input_details(), key=lambda d: d["index"])
    by_name = {}
    for detail in details:
        bare = str(detail["name"]).split(":")[0].replace("serving_default_", "")
        by_name[bare] = detail
    found = [by_name.get(name) for name in names]
    chosen: List[Dict[str, Any]] = [d for d in found if d is not None]
    if len(chosen) != len(names):
        chosen = details  # names differ: by position
    for detail, array in zip(chosen, arrays):
        interpreter.resize_tensor_input(detail["index"], list(array.shape))
    interpreter.allocate_tensors()
    for detail, array in zip(chosen, arrays):
        interpreter.set_tensor(detail["index"], array.astype(detail["dtype"]))
    interpreter.invoke()
    output = sorted(interpreter.get_output_details(), key=lambda d: d["index"])[0]
    return np.asarray(interpreter.get_tensor(output["index"]))


def _adapted_copy(ctx: Context, saved: Saved, code: ModelCode, *, to_keras: bool) -> Loaded:
    """Adapt a copy of the file for this Keras (no Keras load), then load the copy with its format's own loader;
    `to_keras`: save what loaded as .keras here, and load that. A copy that fails to load is removed. The copy
    goes beside the load's predictions (`saved.output`); `saved.written_by` is the Keras that saved the file."""
    from harness.agent import adapt
    from harness.agent.adapters import H5, JSON, KERAS, CannotAdapt

    path, output = saved.path, saved.output
    if output is None:
        raise Unsupported("an adapting loader needs a folder beside the load's predictions")
    if to_keras and (ctx.major < 3 or adapt.layout(path) not in (H5, JSON)):
        raise Unsupported("a .keras file is made from an adapted .h5 or architecture JSON, for Keras 3 only")
    folder = adapted_dir(output)
    target = ".".join(map(str, ctx.version))
    account = adapt.make(path, target, folder, weights=code.spec.weights or "model.weights.h5",
                         written_by=saved.written_by)
    if account["status"] == "nothing":
        raise Unsupported(account.get("why") or f"nothing to adapt from Keras {account.get('source_keras')} to "
                          f"{target}: no adapter of {account.get('tried')} found its change in the file")
    if account["status"] == "cannot":
        last = account["adapters"][-1]
        raise CannotAdapt(f"{last['adapter']} ({last['cause']}): {last['cannot']}")
    copy = os.path.join(folder, account["file"])
    try:
        if account["layout"] in (H5, KERAS):
            loaded = _keras_load(ctx, copy, code, loader="adapted")
        else:
            reload = _model_from_json if account["layout"] == JSON else _rebuild
            loaded = reload(ctx, saved._replace(path=copy), code)
        if to_keras:
            name = os.path.splitext(account["file"])[0] + ".keras"
            keras_model_of(loaded).save(os.path.join(folder, name))
            account = adapt.record(folder, account, file=name, hand=[name],
                                   saved_as=f"saved as .keras by Keras {target} from the adapted {account['file']}")
            loaded = _keras_load(ctx, os.path.join(folder, name), code, loader="adapted_keras")
    except Exception as exc:
        adapt.clear(folder, account, f"{type(exc).__name__}: {exc}"[:1000])
        raise
    loaded.options["adapted"] = [a["adapter"] for a in account["adapters"]]
    if not compiled(keras_model_of(loaded)):  # an architecture, or a compile config the adapters dropped
        loaded.model = None
    return loaded


def compiled(model: Any) -> bool:
    """Whether a Keras model was compiled (Keras 3 says `compiled`, Keras 2 `_is_compiled`)."""
    return bool(getattr(model, "compiled", getattr(model, "_is_compiled", False)))


def keras_model_of(loaded: Loaded) -> Any:
    """The Keras model a load gave back; Unsupported when it gave none (a serving route)."""
    if loaded.keras is None:
        raise Unsupported("the load gave back no Keras model to save")
    return loaded.keras


def _adapted(ctx: Context, saved: Saved, code: ModelCode) -> Loaded:
    return _adapted_copy(ctx, saved, code, to_keras=False)


def _adapted_keras(ctx: Context, saved: Saved, code: ModelCode) -> Loaded:
    return _adapted_copy(ctx, saved, code, to_keras=True)


# The one table of loaders, by the catalog's names (catalog.LOADERS says what each one is).
LOADING: Dict[str, Callable[[Context, Saved, ModelCode], Loaded]] = {
    "load_model": _load_model, "load_model_custom": _load_model_custom, "load_model_unsafe": _load_model_unsafe,
    "load_model_nocompile": _load_model_nocompile, "rebuild": _rebuild, "model_from_json": _model_from_json,
    "saved_model": _saved_model, "tfsm_layer": _tfsm_layer, "rebuild_from_seed": _rebuild_from_seed,
    "tf1_session": _tf1_session, "serving": _serving, "saved_model_call": _saved_model_call, "tflite": _tflite,
    "load_model_xla": _load_model_xla, "tflite_interpreter": _tflite_interpreter, "adapted": _adapted,
    "adapted_keras": _adapted_keras,
}


def load(ctx: Context, loader: str, path: str, code: ModelCode, input_names: List[str], *,
         output_names: Optional[List[str]] = None, output: Optional[str] = None,
         written_by: Optional[str] = None) -> Loaded:
    """Load an artifact with a named loader; a model whose spec asks for it takes one training step first.

    `output`: where the load's predictions go (a loader that writes files of its own writes them beside it);
    `written_by`: the Keras release of the environment that saved the artifact."""
    how = LOADING.get(loader)
    if how is None:
        raise Unsupported(f"no loader named {loader}")
    loaded = how(ctx, Saved(path, list(input_names), list(output_names or []), output, written_by), code)
    if code.spec.train_step:
        if loaded.model is None:
            raise Unsupported(f"{loader} gives no compiled Keras model to take a training step with")
        code.train_step(loaded.model)
    return loaded


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
