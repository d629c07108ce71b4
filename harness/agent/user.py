"""Users' own models inside the containers: their code, built, saved and loaded like probes.

The user's directory is mounted read-only and its modules are imported from there: the
factory that builds the model, the custom objects a loading process passes, and an optional
`predict(model, raw_inputs)` hook that stands for the user's own serving code (its class
order, vocabulary, post-processing). Standard library and numpy only at import time.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from harness.agent import formats
from harness.agent.records import RecordWriter

SEED = 1234
N_GENERATED = 32  # samples generated from a model's own input shapes when no inputs are given
USER_KEYS = ("root", "factory", "custom_objects", "predict", "weights", "seed")


def import_code(root: Optional[str], ref: str) -> Any:
    """The object named by 'module:attribute', or the module itself, imported from the user's directory."""
    if root and root not in sys.path:
        sys.path.insert(0, root)
    module_name, _, attribute = ref.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attribute) if attribute else module


def custom_objects(user: Dict[str, Any]) -> Dict[str, Any]:
    """The custom_objects a loading process passes: a dict, a function returning one, or a module's own classes
    and functions."""
    ref = user.get("custom_objects")
    if not ref:
        return {}
    found = import_code(user.get("root"), ref)
    if inspect.ismodule(found):
        return {name: obj for name, obj in vars(found).items()
                if not name.startswith("_") and (inspect.isclass(obj) or inspect.isfunction(obj))
                and getattr(obj, "__module__", None) == found.__name__}
    if callable(found) and not inspect.isclass(found):
        found = found()
    if not isinstance(found, dict):
        raise TypeError(f"custom_objects {ref} is {type(found).__name__}, expected a dict, a module, or a "
                        "function returning a dict")
    return dict(found)


def build(ctx: formats.Context, user: Dict[str, Any]) -> Any:
    """Call the user's factory under a fixed seed: the same model wherever it is built."""
    ctx.keras.utils.set_random_seed(int(user.get("seed", SEED)))
    model = import_code(user.get("root"), user["factory"])()
    if not hasattr(model, "predict"):
        raise TypeError(f"factory {user['factory']} returned {type(model).__name__}, expected a Keras model")
    return model


def random_array(shape: List[int], dtype: str, low: Optional[float] = None, high: Optional[float] = None,
                 seed: int = SEED) -> Any:
    """Seeded inputs, identical in every environment: integers in [low, high), uniform floats in [low, high) when
    both are given, else standard normal floats."""
    rng = np.random.RandomState(seed)
    kind = np.dtype(dtype).kind
    if kind == "b":
        return rng.randint(0, 2, size=shape).astype(bool)
    if kind in "iu":
        start = int(low or 0)
        return rng.randint(start, int(high) if high is not None else start + 10, size=shape).astype(dtype)
    if low is not None and high is not None:
        return rng.uniform(low, high, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def inputs_from_model(model: Any) -> Dict[str, Any]:
    """Seeded inputs of the model's own input shapes and dtypes, by input name."""
    names = list(getattr(model, "input_names", None) or [])
    out = {}
    for i, tensor in enumerate(model.inputs):
        name = names[i] if i < len(names) else str(getattr(tensor, "name", f"input_{i}")).split(":")[0]
        shape = list(tensor.shape)[1:]
        if any(dim is None for dim in shape):
            raise ValueError(f"input {name!r} has a dimension of unknown size {tuple(tensor.shape)}: give the model "
                             "inputs (a .npy/.npz file, or shape and dtype)")
        dtype = getattr(tensor.dtype, "name", None) or str(tensor.dtype)
        out[name] = random_array([N_GENERATED, *shape], dtype, seed=SEED + i)
    return out


def numeric(outputs: Any, origin: str) -> Any:
    """Predictions as a numeric array; the report compares numbers."""
    array = np.asarray(outputs)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{origin} returned {array.dtype} values; return numbers (probabilities, scores, "
                        "class indices) so they can be compared")
    return array


def raw_inputs(arrays: List[Any], names: List[str]) -> Any:
    """What a predict hook receives: the one input array, or a dict of them by name."""
    return arrays[0] if len(arrays) == 1 else dict(zip(names, arrays))


# ---------------------------------------------------------------------------- save phase


def save_models(ctx: formats.Context, specs: List[Dict[str, Any]], out: str, *, writer: RecordWriter,
                base: Dict[str, Any]) -> Dict[str, Any]:
    """Build each factory model and save it in its formats, exactly as the save step saves a probe."""
    from harness.agent import save

    entries = {}
    for spec in specs:
        def reference(ctx: formats.Context, name: str, model_dir: str, spec: Dict[str, Any] = spec) -> Dict[str, Any]:
            return _reference(ctx, spec, model_dir)

        entry = save._save_model(ctx, spec["name"], spec["formats"], os.path.join(out, spec["name"]), writer=writer,
                                base=base, reference=reference)
        if entry is not None:
            entries[spec["name"]] = entry
    return entries


def _reference(ctx: formats.Context, spec: Dict[str, Any], model_dir: str) -> Dict[str, Any]:
    """Build the model; write its inputs, labels and the predictions every load is compared with."""
    user = {key: spec.get(key) for key in USER_KEYS if spec.get(key) is not None}
    model = build(ctx, user)
    if spec.get("inputs"):
        with np.load(spec["inputs"], allow_pickle=False) as data:
            inputs = {name: data[name] for name in data.files}
    else:
        inputs = inputs_from_model(model)
    names, arrays = list(inputs), list(inputs.values())
    labels = np.load(spec["labels"], allow_pickle=False) if spec.get("labels") else None
    loaded = _with_hook(formats.keras_model(model), user, names)
    reference = numeric(loaded.predict(arrays), loaded.call)
    os.makedirs(model_dir, exist_ok=True)
    np.savez(os.path.join(model_dir, "inputs.npz"), **inputs)
    np.save(os.path.join(model_dir, "reference.npy"), reference)
    evaluation = None
    if labels is not None and not user.get("predict"):  # a hook's raw inputs are not the model's inputs
        np.save(os.path.join(model_dir, "labels.npy"), labels)
        evaluation = formats.evaluate(model, arrays, labels)
    return {"model": model, "input_names": names, "evaluate": evaluation, "predict_call": loaded.call,
            "entry": {"user": user, "loaders": spec["loaders"]}}


# ---------------------------------------------------------------------------- load phase


def load(ctx: formats.Context, task: Dict[str, Any]) -> formats.Loaded:
    """Load a user model's artifact with one loader, with the user's custom objects, factory and predict hook."""
    user = task["user"]
    loader, path = task["loader"], task["artifact"]
    objects = custom_objects(user)
    loaders: Dict[str, Callable[[], formats.Loaded]] = {
        "load_model": lambda: _load_model(ctx, path, objects),
        "load_model_unsafe": lambda: _load_model(ctx, path, objects, safe_mode=False),
        "load_model_nocompile": lambda: _load_model(ctx, path, objects, compile_model=False),
        "rebuild": lambda: _rebuild(ctx, path, user),
        "model_from_json": lambda: _model_from_json(ctx, path, user, objects),
    }
    if loader in loaders:
        loaded = loaders[loader]()
    else:  # serving-signature loaders need no Keras code
        loaded = formats.load(ctx, loader, path, task["model"], task["input_names"])
    return _with_hook(loaded, user, task["input_names"])


def _load_model(ctx: formats.Context, path: str, objects: Dict[str, Any], safe_mode: Optional[bool] = None,
                compile_model: bool = True) -> formats.Loaded:
    options: Dict[str, Any] = {"custom_objects": bool(objects)}
    kwargs: Dict[str, Any] = {"custom_objects": objects or None}
    if safe_mode is False:
        if ctx.version < (2, 13):
            raise formats.Unsupported("load_model has no safe_mode before Keras 2.13")
        kwargs["safe_mode"] = options["safe_mode"] = False
    elif ctx.version >= (2, 13) and path.endswith(".keras"):
        options["safe_mode"] = "default (True)"
    if not compile_model:
        kwargs["compile"] = options["compile"] = False
    return formats.keras_model(ctx.keras.models.load_model(path, **kwargs), options, evaluable=compile_model)


def _rebuild(ctx: formats.Context, path: str, user: Dict[str, Any]) -> formats.Loaded:
    model = build(ctx, user)
    model.load_weights(path)
    return formats.keras_model(model, {"rebuilt_from_code": True})


def _model_from_json(ctx: formats.Context, path: str, user: Dict[str, Any], objects: Dict[str, Any]) -> formats.Loaded:
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    model = ctx.keras.models.model_from_json(text, custom_objects=objects or None)
    model.load_weights(os.path.join(os.path.dirname(path), user.get("weights") or "model.weights.h5"))
    # An architecture JSON carries no compile() settings: nothing to evaluate.
    return formats.keras_model(model, {"custom_objects": bool(objects)}, evaluable=False)


class _Served:
    """A loaded artifact without a Keras model, as a predict hook sees it: call it, or call its predict()."""

    def __init__(self, loaded: formats.Loaded) -> None:
        self._loaded = loaded

    def __call__(self, x: Any, **_: Any) -> Any:
        return self._loaded.predict(list(x) if isinstance(x, (list, tuple)) else [x])

    def predict(self, x: Any, **_: Any) -> Any:
        """The same as calling it; predict()'s batching options are accepted and ignored."""
        return self(x)


def _with_hook(loaded: formats.Loaded, user: Dict[str, Any], names: List[str]) -> formats.Loaded:
    """Predictions through the user's predict hook, when there is one."""
    if not user.get("predict"):
        return loaded
    hook = import_code(user.get("root"), user["predict"])
    target = loaded.model if loaded.model is not None else _Served(loaded)
    origin = f"predict hook {user['predict']}"
    return formats.Loaded(lambda arrays: numeric(hook(target, raw_inputs(arrays, names)), origin),
                          f"{user['predict']}(model, raw) over {loaded.call}", loaded.model, loaded.options)
