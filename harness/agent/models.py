"""A model's code in one process, whatever the model is: built, fed, loaded and served from its spec alone.

Probes and users' models differ only in their specs (catalog.py, or a matrix's `models:` entry):
the code named there is imported here, from the harness package or from a user's directory
mounted read-only. Standard library and numpy at import time; TensorFlow is reached through the
Keras module the caller passes in.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

import numpy as np

from harness.agent.protocol import INPUTS, LABELS, USER_MOUNT, USERDATA_MOUNT, ModelSpec, random_array, userdata_file

N_TRAIN = 96  # samples a probe is trained on
N_REFERENCE = 32  # reference samples: generated from a model's own input shapes when nothing else gives them
_REGISTERED: Set[Tuple[int, str]] = set()  # (Keras module, name) registered in this process
_STARTED_IN = os.getcwd()
# (Keras module, model, seed) -> the weights its factory makes under the seed, in this process: what a rebuild
# whose weights a file then overwrites starts from (ModelCode.rebuilt).
_FIRST_WEIGHTS: Dict[Tuple[int, str, int], List[Any]] = {}


def import_code(root: Optional[str], ref: str) -> Any:
    """The object named by 'module:attribute', or the module itself; `root` (a user's directory) goes on sys.path."""
    module_name, _, attribute = ref.partition(":")
    if root:
        _from_root(root, module_name.split(".")[0])
    module = importlib.import_module(module_name)
    return getattr(module, attribute) if attribute else module


def work_in(root: Optional[str]) -> None:
    """Work in a user's model folder while building or loading it, as the project that loads it does: a relative
    path its config keeps (TFSMLayer's SavedModel folder) resolves there. Any other model: where the process
    started."""
    try:
        os.chdir(root if root and os.path.isdir(root) else _STARTED_IN)
    except OSError:  # a folder the containers' user may not enter: the load says what it misses there
        os.chdir(_STARTED_IN)


def _from_root(root: str, top: str) -> None:
    """Make `top` import from `root` alone (two users' models may both call their module 'models'; one process
    loads both): `root` first on sys.path and no other user's directory there at all, since a regular package
    of that name anywhere on sys.path wins over a namespace package (a folder without __init__.py) of this
    user's; and a module of that name imported from another user's directory forgotten."""
    sys.path[:] = [root] + [p for p in sys.path if p != root and not _within(p, USER_MOUNT)]
    module = sys.modules.get(top)
    # Where it came from: a module's file, or every folder of a (namespace) package.
    found = [getattr(module, "__file__", None), *(getattr(module, "__path__", None) or [])]
    places = [os.path.abspath(p) for p in found if isinstance(p, str)]
    if any(_within(p, USER_MOUNT) and not _within(p, root) for p in places):
        for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
            del sys.modules[name]
        importlib.invalidate_caches()


def _within(path: str, folder: str) -> bool:
    return os.path.abspath(path).startswith(folder.rstrip("/") + "/")


def feed(arrays: List[Any]) -> Any:
    """What a model is called with: one array, or a list in the model's input order."""
    return arrays[0] if len(arrays) == 1 else arrays


def first_output(outputs: Any) -> Any:
    """One output array from a tensor, a list, or a dict of outputs (sorted by name)."""
    if isinstance(outputs, dict):
        outputs = outputs[sorted(outputs)[0]]
    elif isinstance(outputs, (list, tuple)):
        outputs = outputs[0]
    return np.asarray(outputs)


class Loaded:
    """A loaded artifact: how to predict with it, the Keras model to evaluate (if any), and the Keras model
    whatever its compile() state (`keras`: what a migration saves again)."""

    def __init__(self, predict: Callable[[List[Any]], Any], call: str, model: Optional[Any] = None,
                 options: Optional[Dict[str, Any]] = None, keras: Optional[Any] = None) -> None:
        self.predict = predict
        self.call = call
        self.model = model
        self.options = options or {}
        self.keras = keras if keras is not None else model


def keras_model(model: Any, options: Optional[Dict[str, Any]] = None, evaluable: bool = True) -> Loaded:
    """Wrap a Keras model; evaluable=False when the loader does not restore compile() state.

    A direct call avoids predict()'s per-call tf.function tracing and batching, which costs far
    more than the arithmetic for probe-sized inputs.
    """
    return Loaded(lambda arrays: first_output(model(feed(arrays), training=False)),
                  "model(x, training=False)", model if evaluable else None, options, keras=model)


def _fully_built(model: Any) -> bool:
    """Whether a model and every layer in it have made their weights (none is left to a later build)."""
    layers = [model, *getattr(model, "layers", ())]
    return all(getattr(layer, "built", False) for layer in layers) and bool(model.weights)


def inputs_from_model(model: Any, seed: int) -> Dict[str, Any]:
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
        out[name] = random_array([N_REFERENCE, *shape], dtype, seed=seed + i)
    return out


def numeric(outputs: Any, origin: str) -> Any:
    """Predictions as a numeric array; the report compares numbers."""
    array = np.asarray(outputs)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{origin} returned {array.dtype} values; return numbers (probabilities, scores, "
                        "class indices) so they can be compared")
    return array


class Built:
    """A freshly built (and, for probes, trained) model with its reference inputs and labels."""

    def __init__(self, model: Any, inputs: Dict[str, Any], labels: Optional[Any], files: Dict[str, Any]) -> None:
        self.model = model
        self.inputs = inputs
        self.labels = labels
        self.files = files


class _Served:
    """A loaded artifact without a Keras model, as a predict hook sees it: call it, or call its predict()."""

    def __init__(self, loaded: Loaded) -> None:
        self._loaded = loaded

    def __call__(self, x: Any, **_: Any) -> Any:
        return self._loaded.predict(list(x) if isinstance(x, (list, tuple)) else [x])

    def predict(self, x: Any, **_: Any) -> Any:
        """The same as calling it; predict()'s batching options are accepted and ignored."""
        return self(x)


class ModelCode:
    """One model's code in this process: its spec's references, imported on first use."""

    def __init__(self, spec: ModelSpec, keras: Any) -> None:
        self.spec = spec
        self.keras = keras

    def _code(self, ref: str) -> Any:
        return import_code(self.spec.code.root, ref)

    # -- building
    def fresh(self) -> Any:
        """A new model from the factory, under the model's seed: the same model wherever it is built."""
        factory = self.spec.code.factory
        if factory is None:
            raise ValueError(f"model {self.spec.name} has no factory: it cannot be rebuilt in code")
        self.keras.utils.set_random_seed(self.spec.seed)
        model = self._code(factory)()
        if not hasattr(model, "predict"):
            raise TypeError(f"factory {factory} returned {type(model).__name__}, expected a Keras model")
        return model

    def rebuilt(self) -> Any:
        """A model from the factory for load_weights: the same weights as fresh(), at less cost after the first.

        fresh() seeds every random generator, and seeding TensorFlow clears its kernel cache: every op after
        it is instantiated again, which costs more than the rebuild itself. A model whose factory draws random
        numbers for its weights only (spec.random_in_weights_only) is seeded once per process; later rebuilds
        copy that build's weights, so weights the file does not restore are still the seeded ones. Models
        that take a training step after a load, and models not built by their factory, are seeded each time.
        """
        key = (id(self.keras), self.spec.name, self.spec.seed)
        first = _FIRST_WEIGHTS.get(key)
        if first is None or not self.spec.random_in_weights_only or self.spec.train_step:
            model = self.fresh()
            if self.spec.random_in_weights_only and _fully_built(model):
                _FIRST_WEIGHTS[key] = [np.array(w, copy=True) for w in model.get_weights()]
            return model
        model = self._code(self.spec.code.factory or "")()
        model.set_weights(first)
        return model

    def build(self) -> Built:
        """The model as its saving environment makes it: built, trained if its spec says so, with its data."""
        if self.spec.register_custom_objects:
            self._register()
        model = self.fresh()
        inputs, labels = self._reference_data(model)
        files = self._code(self.spec.code.files)() if self.spec.code.files else {}
        return Built(model, inputs, labels, files)

    def _register(self) -> None:
        # Only the building process knows the custom objects by name; a loading process must be given them.
        # Some Keras versions refuse a second registration under one name within a process.
        saving = getattr(self.keras, "saving", None)
        register = getattr(saving, "register_keras_serializable", None) or self.keras.utils.register_keras_serializable
        for name, obj in self.custom_objects().items():
            if ">" not in name and (id(self.keras), name) not in _REGISTERED:
                register(package="harness", name=name)(obj)
                _REGISTERED.add((id(self.keras), name))

    def _reference_data(self, model: Any) -> Tuple[Dict[str, Any], Optional[Any]]:
        code = self.spec.code
        if code.data:
            data = self._code(code.data)
            if self.spec.train_epochs:
                train_x, train_y = data(self.spec.seed, N_TRAIN)
                if code.train_labels:
                    train_y = self._code(code.train_labels)(train_y)
                # Eager: tracing train_step costs more than a few epochs of probe-sized data.
                model.run_eagerly = True
                model.fit(feed(list(train_x.values())), train_y, epochs=self.spec.train_epochs, batch_size=32,
                          verbose=0, shuffle=False)
            inputs, labels = data(self.spec.seed + 1, N_REFERENCE)
            return dict(inputs), labels
        labels = None
        if self.spec.has_labels:
            labels = np.load(userdata_file(USERDATA_MOUNT, self.spec.name, LABELS), allow_pickle=False)
        if self.spec.has_inputs:
            with np.load(userdata_file(USERDATA_MOUNT, self.spec.name, INPUTS), allow_pickle=False) as data:
                return {name: data[name] for name in data.files}, labels
        return inputs_from_model(model, self.spec.seed), labels

    def train_step(self, model: Any) -> None:
        """One more training step on a fixed batch: what restored optimizer state (or its loss) changes."""
        data = self._code(self.spec.code.data or "")
        x, y = data(self.spec.seed + 2, N_REFERENCE)
        if self.spec.code.train_labels:
            y = self._code(self.spec.code.train_labels)(y)
        model.run_eagerly = True
        model.train_on_batch(feed(list(x.values())), y)

    def state_figures(self, model: Any) -> Dict[str, float]:
        """The model's state (its spec's state function) as one checksum per variable, named 'state: <name>'.

        Compared beside evaluate(): a variable that was not restored changes its checksum. The checksum
        weights each value by its position, so reordered values count as different too.
        """
        if not self.spec.code.state:
            return {}
        figures = {}
        for name, value in sorted(self._code(self.spec.code.state)(model).items()):
            flat = np.asarray(value, dtype="float64").ravel()
            weights = 1.0 + np.arange(flat.size) / max(flat.size, 1)
            figures["state: " + name] = float(np.sum(flat * weights))
        return figures

    # -- loading
    def custom_objects(self, loader: Optional[str] = None) -> Dict[str, Any]:
        """What a loading process passes as custom_objects (nothing to the loaders the spec withholds them from).

        The spec names a dict, a function returning one, or a module whose own classes and functions count.
        """
        ref = self.spec.code.custom_objects
        if not ref or loader in self.spec.withhold_custom_objects:
            return {}
        found = self._code(ref)
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

    def withholds(self, loader: str) -> bool:
        """Whether this loader loads the model without its custom objects."""
        return loader in self.spec.withhold_custom_objects

    def serve(self, loaded: Loaded, names: List[str], model_dir: str) -> Loaded:
        """Predictions as the model's own code reports them: through its predict hook, then its post-processing."""
        code = self.spec.code
        if code.predict:
            loaded = self._hooked(loaded, code.predict, names)
        if code.postprocess:
            inner, post = loaded.predict, self._code(code.postprocess)
            loaded = Loaded(lambda arrays: post(inner(arrays), model_dir), loaded.call, loaded.model, loaded.options)
        origin = loaded.call
        inner_predict = loaded.predict
        return Loaded(lambda arrays: numeric(inner_predict(arrays), origin), loaded.call, loaded.model,
                      loaded.options)

    def _hooked(self, loaded: Loaded, ref: str, names: List[str]) -> Loaded:
        hook = self._code(ref)
        target = loaded.model if loaded.model is not None else _Served(loaded)

        def predict(arrays: List[Any]) -> Any:
            raw = arrays[0] if len(arrays) == 1 else dict(zip(names, arrays))
            return numeric(hook(target, raw), f"predict hook {ref}")

        return Loaded(predict, f"{ref}(model, raw) over {loaded.call}", loaded.model, loaded.options)
