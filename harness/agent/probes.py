"""The built-in probes' code: tiny models, their seeded data, and the quirks some of them exercise.

A probe's catalog entry (catalog.py) names the functions here; they follow the same contract as a
user's code (a factory takes no arguments and imports TensorFlow itself). Every layer has an
explicit name, so weights map by name whatever else the process built before.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Tuple

import numpy as np

LABELS = ["ant", "bee", "cat", "dog", "eel", "fox", "gnu", "hen"]
CLASS_MAP_FILE = "classes.json"
Data = Tuple[Dict[str, Any], Any]


def _keras() -> Any:
    import tensorflow as tf

    return tf.keras


# ---------------------------------------------------------------------------- custom objects

_CUSTOM: Dict[int, Dict[str, Any]] = {}  # per Keras module: one set of classes per process


def custom_objects() -> Dict[str, Any]:
    """The probes' custom layer and loss, as a loading process that has the code defines them."""
    keras = _keras()
    if id(keras) not in _CUSTOM:
        _CUSTOM[id(keras)] = _custom_classes(keras)
    return dict(_CUSTOM[id(keras)])


def _custom_classes(keras: Any) -> Dict[str, Any]:
    class ScaleLayer(keras.layers.Layer):  # type: ignore[misc]
        def __init__(self, factor: float = 1.0, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.factor = factor

        def call(self, inputs: Any) -> Any:
            return inputs * self.factor

        def get_config(self) -> Dict[str, Any]:
            config: Dict[str, Any] = super().get_config()
            config["factor"] = self.factor
            return config

    def scaled_mse(y_true: Any, y_pred: Any) -> Any:
        if hasattr(keras, "ops"):
            return keras.ops.mean((y_true - y_pred) ** 2) * 2.0
        return keras.backend.mean(keras.backend.square(y_true - y_pred)) * 2.0

    return {"ScaleLayer": ScaleLayer, "harness>ScaleLayer": ScaleLayer,
            "scaled_mse": scaled_mse, "harness>scaled_mse": scaled_mse}


# ---------------------------------------------------------------------------- architectures


def _compile_classifier(model: Any, metric: str) -> Any:
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=[metric])
    return model


def dense() -> Any:
    """Dense/Dropout classifier on 16 features."""
    keras = _keras()
    inputs = keras.Input(shape=(16,), name="features")
    x = keras.layers.Dense(32, activation="relu", name="hidden")(inputs)
    x = keras.layers.Dropout(0.2, name="dropout")(x)
    outputs = keras.layers.Dense(4, activation="softmax", name="probs")(x)
    return _compile_classifier(keras.Model(inputs, outputs, name="dense_probe"), "sparse_categorical_accuracy")


def _classifier(metric: str) -> Any:
    keras = _keras()
    inputs = keras.Input(shape=(6, 6, 1), name="image")
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Flatten(name="flat")(x)
    x = keras.layers.Dropout(0.2, name="dropout")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="probs")(x)
    return _compile_classifier(keras.Model(inputs, outputs, name="classifier_probe"), metric)


def classifier() -> Any:
    """Conv classifier compiled with the ambiguous 'accuracy'."""
    return _classifier("accuracy")


def classifier_explicit() -> Any:
    """The same classifier with an explicit metric (control)."""
    return _classifier("sparse_categorical_accuracy")


def lambda_model() -> Any:
    """A Lambda layer holding a Python lambda."""
    keras = _keras()
    inputs = keras.Input(shape=(16,), name="features")
    x = keras.layers.Dense(8, name="hidden")(inputs)
    x = keras.layers.Lambda(lambda t: t * 2.0 + 1.0, name="affine")(x)
    outputs = keras.layers.Dense(4, activation="softmax", name="probs")(x)
    return _compile_classifier(keras.Model(inputs, outputs, name="lambda_probe"), "sparse_categorical_accuracy")


def custom_layer() -> Any:
    """A custom layer with get_config."""
    keras = _keras()
    inputs = keras.Input(shape=(16,), name="features")
    x = custom_objects()["ScaleLayer"](factor=1.5, name="scale")(inputs)
    outputs = keras.layers.Dense(4, activation="softmax", name="probs")(x)
    return _compile_classifier(keras.Model(inputs, outputs, name="custom_layer_probe"), "sparse_categorical_accuracy")


def custom_loss() -> Any:
    """A regression model compiled with a custom loss."""
    keras = _keras()
    inputs = keras.Input(shape=(16,), name="features")
    x = keras.layers.Dense(8, activation="tanh", name="hidden")(inputs)
    outputs = keras.layers.Dense(1, name="value")(x)
    model = keras.Model(inputs, outputs, name="custom_loss_probe")
    model.compile(optimizer="adam", loss=custom_objects()["scaled_mse"])
    return model


def text_rnn() -> Any:
    """Embedding + LSTM + GRU."""
    keras = _keras()
    inputs = keras.Input(shape=(12,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(50, 8, name="embed")(inputs)
    x = keras.layers.LSTM(8, return_sequences=True, name="lstm")(x)
    x = keras.layers.GRU(8, name="gru")(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="probs")(x)
    return _compile_classifier(keras.Model(inputs, outputs, name="text_rnn_probe"), "sparse_categorical_accuracy")


def multi_input() -> Any:
    """A functional model with two named inputs."""
    keras = _keras()
    a = keras.Input(shape=(6,), name="a")
    b = keras.Input(shape=(4,), name="b")
    x = keras.layers.Concatenate(name="concat")([
        keras.layers.Dense(5, activation="relu", name="dense_a")(a),
        keras.layers.Dense(5, activation="relu", name="dense_b")(b),
    ])
    outputs = keras.layers.Dense(3, activation="softmax", name="probs")(x)
    return _compile_classifier(keras.Model([a, b], outputs, name="multi_input_probe"), "sparse_categorical_accuracy")


def labels_model() -> Any:
    """A classifier over the eight LABELS."""
    keras = _keras()
    inputs = keras.Input(shape=(16,), name="features")
    x = keras.layers.Dense(16, activation="relu", name="hidden")(inputs)
    outputs = keras.layers.Dense(len(LABELS), activation="softmax", name="probs")(x)
    return _compile_classifier(keras.Model(inputs, outputs, name="label_probe"), "sparse_categorical_accuracy")


# ---------------------------------------------------------------------------- data: (seed, n) -> (inputs, labels)


def _features(seed: int, n: int, classes: int) -> Data:
    rng = np.random.RandomState(seed)
    x = rng.standard_normal((n, 16)).astype("float32")
    return {"features": x}, np.abs(x[:, :classes]).argmax(axis=1).astype("int64")


def features4(seed: int, n: int) -> Data:
    """16 features, 4 classes."""
    return _features(seed, n, 4)


def features8(seed: int, n: int) -> Data:
    """16 features, one class per LABELS entry."""
    return _features(seed, n, len(LABELS))


def regression(seed: int, n: int) -> Data:
    """16 features and a real-valued target."""
    inputs, _ = _features(seed, n, 4)
    return inputs, inputs["features"][:, :3].sum(axis=1, keepdims=True).astype("float32")


def images(seed: int, n: int) -> Data:
    """6x6 one-channel images, 3 classes."""
    rng = np.random.RandomState(seed)
    x = rng.standard_normal((n, 6, 6, 1)).astype("float32")
    return {"image": x}, (x.mean(axis=(1, 2, 3)) > 0).astype("int64") + (x[:, 0, 0, 0] > 1).astype("int64")


def tokens(seed: int, n: int) -> Data:
    """12 token ids below 50, 2 classes."""
    rng = np.random.RandomState(seed)
    x = rng.randint(1, 50, size=(n, 12)).astype("int32")
    return {"tokens": x}, (x.mean(axis=1) > 25).astype("int64")


def two_inputs(seed: int, n: int) -> Data:
    """Inputs a (6 features) and b (4 features), 3 classes."""
    rng = np.random.RandomState(seed)
    a = rng.standard_normal((n, 6)).astype("float32")
    b = rng.standard_normal((n, 4)).astype("float32")
    return {"a": a, "b": b}, (np.abs(a[:, :3]) + np.abs(b[:, :3])).argmax(axis=1).astype("int64")


# ---------------------------------------------------------------------------- label order: the hazard and its fix


def _set_order() -> List[str]:
    return list(set(LABELS))  # the hazard: the order depends on this process's PYTHONHASHSEED


def labels_by_set_order(y: Any) -> Any:
    """Training labels as indices into this process's list(set(LABELS)): what the hazardous code trains on."""
    names = _set_order()
    return np.array([names.index(sorted(LABELS)[i]) for i in y], dtype="int64")


def class_files() -> Dict[str, Any]:
    """The sorted class list, stored beside the model (the fix)."""
    return {CLASS_MAP_FILE: sorted(set(LABELS))}


def _by_name(outputs: Any, names: List[str]) -> Any:
    # Column j of the result is the probability of the j-th label in alphabetical order.
    return outputs[:, [names.index(label) for label in sorted(LABELS)]]


def by_set_order(outputs: Any, model_dir: str) -> Any:
    """Outputs by class name, with the class list recomputed in this process (drifts across processes)."""
    return _by_name(outputs, _set_order())


def by_stored_order(outputs: Any, model_dir: str) -> Any:
    """Outputs by class name, with the class list stored beside the model."""
    path = os.path.join(model_dir, CLASS_MAP_FILE)
    names = sorted(set(LABELS))
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as fh:
            names = list(json.load(fh))
    return _by_name(outputs, names)


# ============================================================================ the hazard zoo
# Each factory below reproduces one break users report when they move saved models between
# versions; catalog.py says which hazard, which formats and loaders show it, and the fix.


def _classifier_head(keras: Any, inputs: Any, x: Any, name: str, classes: int = 4) -> Any:
    outputs = keras.layers.Dense(classes, activation="softmax", name="probs")(x)
    return _compile_classifier(keras.Model(inputs, outputs, name=name), "sparse_categorical_accuracy")


def _cached(key: str, make: Any) -> Any:
    """One class (or object) per Keras module and process: Keras keys custom classes by identity."""
    keras = _keras()
    slot = _CUSTOM.setdefault(id(keras), {})
    if key not in slot:
        slot[key] = make(keras)
    return slot[key]


# ---------------------------------------------------------------------------- DepthwiseConv2D and `groups`


def depthwise() -> Any:
    """A MobileNet-style block: DepthwiseConv2D, whose Keras 2 config carries groups=1."""
    keras = _keras()
    inputs = keras.Input(shape=(8, 8, 3), name="image")
    x = keras.layers.DepthwiseConv2D(3, padding="same", name="depthwise")(inputs)
    x = keras.layers.Conv2D(4, 1, activation="relu", name="pointwise")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return _classifier_head(keras, inputs, x, "depthwise_probe", classes=3)


def _depthwise_fix(keras: Any) -> Any:
    class DepthwiseConv2D(keras.layers.DepthwiseConv2D):  # type: ignore[misc]
        """The fix users were given: drop the `groups` argument Keras 3 no longer accepts."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.pop("groups", None)
            super().__init__(*args, **kwargs)

    return DepthwiseConv2D


def depthwise_fix() -> Dict[str, Any]:
    """custom_objects that load old DepthwiseConv2D configs: a subclass that pops `groups`."""
    return {"DepthwiseConv2D": _cached("DepthwiseConv2D", _depthwise_fix)}


def images8(seed: int, n: int) -> Data:
    """8x8 three-channel images, 3 classes."""
    rng = np.random.RandomState(seed)
    x = rng.standard_normal((n, 8, 8, 3)).astype("float32")
    return {"image": x}, (x[..., 0].mean(axis=(1, 2)) > 0).astype("int64") + (x[:, 0, 0, 1] > 1).astype("int64")


# ---------------------------------------------------------------------------- raw TF ops on Keras tensors


def tf_ops() -> Any:
    """Raw TensorFlow ops on Keras tensors (Keras 2 wraps them in TFOpLambda / SlicingOpLambda layers)."""
    import tensorflow as tf

    keras = tf.keras
    inputs = keras.Input(shape=(16,), name="features")
    x = keras.layers.Dense(8, name="hidden")(inputs)
    x = tf.concat([x[:, :4] + 1.0, tf.nn.relu(x[:, 4:])], axis=1)  # the hazard: TF functions on KerasTensors
    return _classifier_head(keras, inputs, x, "tf_ops_probe")


# ---------------------------------------------------------------------------- a TF-Hub-style layer

HUB_DIR = "harness-hub-module"  # below the temporary folder, as TF-Hub caches its downloads


def _hub_keras() -> Any:
    # tensorflow_hub >= 0.16 builds hub.KerasLayer on tf_keras whenever it is installed (it is a
    # dependency), whatever tf.keras resolves to.
    try:
        import tf_keras

        return tf_keras
    except ImportError:
        return _keras()


def _hub_module() -> str:
    """A tiny local SavedModel (a tf.Module with one tf.function), as TF-Hub would have downloaded it.

    Each build gets a folder of its own under the temporary folder, like a download cache: another
    process (another container) does not have it.
    """
    import tempfile

    import tensorflow as tf

    path = os.path.join(tempfile.mkdtemp(prefix=HUB_DIR + "-"), "module")
    module = tf.Module()
    module.w = tf.Variable(np.random.RandomState(7).standard_normal((16, 8)).astype("float32"))
    module.__call__ = tf.function(lambda x: tf.tanh(tf.matmul(x, module.w)),
                                  input_signature=[tf.TensorSpec([None, 16], tf.float32)])
    tf.saved_model.save(module, path)
    return path


def _hub_layer_class(keras: Any) -> Any:
    base = _hub_keras()

    class HubLayer(base.layers.Layer):  # type: ignore[misc,name-defined]
        """hub.KerasLayer's shape: a Keras layer around a SavedModel found by its handle (a path)."""

        def __init__(self, handle: str, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            import tensorflow as tf

            self.handle = handle
            self._module = tf.saved_model.load(handle)

        def call(self, inputs: Any) -> Any:
            return self._module(inputs)

        def compute_output_shape(self, input_shape: Any) -> Any:
            return (input_shape[0], 8)

        def get_config(self) -> Dict[str, Any]:
            config: Dict[str, Any] = super().get_config()
            config["handle"] = self.handle
            return config

    return HubLayer


def hub_objects() -> Dict[str, Any]:
    """The hub layer class, as a loading process that imports tensorflow_hub knows it."""
    cls = _cached("HubLayer", _hub_layer_class)
    return {"HubLayer": cls, "harness>HubLayer": cls}


def hub_layer() -> Any:
    """A Sequential model around a TF-Hub-style layer wrapping a local SavedModel."""
    keras = _keras()
    model = keras.Sequential([
        keras.Input(shape=(16,), name="features"),
        hub_objects()["HubLayer"](_hub_module(), name="hub"),
        keras.layers.Dense(4, activation="softmax", name="probs"),
    ], name="hub_probe")
    return _compile_classifier(model, "sparse_categorical_accuracy")


# ---------------------------------------------------------------------------- a Lambda using module globals

def lambda_globals() -> Any:
    """A Lambda calling tf.* through a module global, with no output_shape.

    The global `tf` exists only in a process that ran this factory: a loading process that has not
    (as a user's serving process that never imported the training script) lacks it.
    """
    import tensorflow

    globals()["tf"] = tensorflow  # what a script's top-level `import tensorflow as tf` does
    keras = tensorflow.keras
    inputs = keras.Input(shape=(16,), name="features")
    x = keras.layers.Dense(8, name="hidden")(inputs)
    x = keras.layers.Lambda(lambda t: tf.nn.relu(t) * 2.0, name="relu2")(x)  # type: ignore[name-defined]  # noqa: F821
    return _classifier_head(keras, inputs, x, "lambda_globals_probe")


# ---------------------------------------------------------------------------- subclassed model, weights only


def _subclassed_class(keras: Any) -> Any:
    class Net(keras.Model):  # type: ignore[misc]
        """Layers made in __init__, variables only at the first call."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.hidden = keras.layers.Dense(8, activation="relu", name="hidden")
            self.probs = keras.layers.Dense(4, activation="softmax", name="probs")

        def call(self, inputs: Any, training: Any = None) -> Any:
            return self.probs(self.hidden(inputs))

    return Net


def subclassed() -> Any:
    """A subclassed Model, returned unbuilt (as its code creates it)."""
    model = _cached("Net", _subclassed_class)(name="subclassed_probe")
    return _compile_classifier(model, "sparse_categorical_accuracy")


# ---------------------------------------------------------------------------- adapted Normalization


def normalized() -> Any:
    """A regression model between an adapted Normalization and an inverting one (invert=True)."""
    keras = _keras()
    x, y = regression(7, N_ADAPT)
    norm = keras.layers.Normalization(name="norm")
    norm.adapt(x["features"] * 3.0 + 2.0)
    denorm = keras.layers.Normalization(invert=True, name="denorm")
    denorm.adapt(y * 5.0 + 10.0)
    inputs = keras.Input(shape=(16,), name="features")
    h = keras.layers.Dense(8, activation="tanh", name="hidden")(norm(inputs))
    outputs = denorm(keras.layers.Dense(1, name="value")(h))
    model = keras.Model(inputs, outputs, name="normalized_probe")
    model.compile(optimizer="adam", loss=keras.losses.MeanSquaredError())
    return model


N_ADAPT = 64


def normalization_state(model: Any) -> Dict[str, Any]:
    """The statistics every Normalization layer normalizes with."""
    keras = _keras()
    out = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.Normalization):
            out[layer.name + ".mean"] = np.asarray(layer.mean, dtype="float64").ravel()
            out[layer.name + ".variance"] = np.asarray(layer.variance, dtype="float64").ravel()
    return out


# ---------------------------------------------------------------------------- Sequential with input_shape + build


def sequential_shape() -> Any:
    """Sequential whose first layer takes input_shape=, then build() (the Keras 2 idiom)."""
    keras = _keras()
    model = keras.Sequential([
        keras.layers.Dense(8, activation="relu", input_shape=(16,), name="hidden"),
        keras.layers.Dense(4, activation="softmax", name="probs"),
    ], name="sequential_probe")
    model.build([None, 16])  # a list, as shapes read back from JSON configs are
    return _compile_classifier(model, "sparse_categorical_accuracy")


# ---------------------------------------------------------------------------- serving signatures


def serving_model() -> Any:
    """Two named inputs and a named output, as serving configs refer to them."""
    keras = _keras()
    a = keras.Input(shape=(6,), name="a")
    b = keras.Input(shape=(4,), name="b")
    x = keras.layers.Concatenate(name="concat")([a, b])
    x = keras.layers.Dense(6, activation="relu", name="hidden")(x)
    return _classifier_head(keras, [a, b], x, "serving_probe", classes=3)


# ---------------------------------------------------------------------------- RNN zoo


def rnn_zoo() -> Any:
    """Bidirectional LSTM, GRU(reset_after=False) and TimeDistributed."""
    keras = _keras()
    inputs = keras.Input(shape=(6, 4), name="sequence")
    x = keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True, name="lstm"), name="bilstm")(inputs)
    x = keras.layers.GRU(4, reset_after=False, return_sequences=True, name="gru")(x)
    x = keras.layers.TimeDistributed(keras.layers.Dense(3, name="step_dense"), name="per_step")(x)
    x = keras.layers.Flatten(name="flat")(x)
    return _classifier_head(keras, inputs, x, "rnn_zoo_probe", classes=2)


def sequences(seed: int, n: int) -> Data:
    """Sequences of 6 steps x 4 features, 2 classes."""
    rng = np.random.RandomState(seed)
    x = rng.standard_normal((n, 6, 4)).astype("float32")
    return {"sequence": x}, (x[:, :, 0].sum(axis=1) > 0).astype("int64")


# ---------------------------------------------------------------------------- nested and shared sub-models


def nested_shared() -> Any:
    """A functional sub-model nested in another and shared by two inputs."""
    keras = _keras()
    inner_in = keras.Input(shape=(8,), name="inner_in")
    encoder = keras.Model(inner_in, keras.layers.Dense(4, activation="relu", name="inner_dense")(inner_in),
                          name="encoder")
    a = keras.Input(shape=(8,), name="a")
    b = keras.Input(shape=(8,), name="b")
    ea, eb = encoder(a), encoder(b)
    x = keras.layers.Concatenate(name="concat")([ea, keras.layers.Subtract(name="diff")([ea, eb])])
    return _classifier_head(keras, [a, b], x, "nested_probe", classes=3)


def pairs(seed: int, n: int) -> Data:
    """Inputs a and b of 8 features each, 3 classes."""
    rng = np.random.RandomState(seed)
    a = rng.standard_normal((n, 8)).astype("float32")
    b = rng.standard_normal((n, 8)).astype("float32")
    return {"a": a, "b": b}, (np.abs(a - b)[:, :3]).argmax(axis=1).astype("int64")


# ---------------------------------------------------------------------------- mixed precision


def mixed_precision() -> Any:
    """A layer under the mixed_float16 dtype policy (per layer: a global policy would leak into other probes)."""
    keras = _keras()
    policy = keras.mixed_precision.Policy("mixed_float16")
    inputs = keras.Input(shape=(16,), name="features")
    x = keras.layers.Dense(16, activation="relu", dtype=policy, name="hidden")(inputs)
    outputs = keras.layers.Dense(4, activation="softmax", dtype="float32", name="probs")(x)
    return _compile_classifier(keras.Model(inputs, outputs, name="mixed_probe"), "sparse_categorical_accuracy")


# ---------------------------------------------------------------------------- a vocabulary file

VOCABULARY = [3, 5, 8, 13, 21, 34, 55, 89]  # token ids the lookup knows; any other id is out of vocabulary
VOCAB_DIR = "harness-vocabulary"


def _vocabulary_file() -> str:
    import tempfile

    path = os.path.join(tempfile.mkdtemp(prefix=VOCAB_DIR + "-"), "vocab.txt")  # this build's own
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(str(token) for token in VOCABULARY) + "\n")
    return path


def vocabulary_lookup() -> Any:
    """An IntegerLookup (StringLookup's twin, numeric inputs) whose vocabulary is a file, as pipelines ship one."""
    keras = _keras()
    inputs = keras.Input(shape=(6,), dtype="int64", name="tokens")
    x = keras.layers.IntegerLookup(vocabulary=_vocabulary_file(), name="lookup")(inputs)
    x = keras.layers.Embedding(len(VOCABULARY) + 2, 4, name="embed")(x)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    return _classifier_head(keras, inputs, x, "vocabulary_probe", classes=2)


def token_ids(seed: int, n: int) -> Data:
    """Six token ids per sample, some out of vocabulary; class 1 when token 8 occurs."""
    rng = np.random.RandomState(seed)
    pool = np.array([*VOCABULARY, 2, 4, 100])
    x = pool[rng.randint(0, len(pool), size=(n, 6))].astype("int64")
    return {"tokens": x}, (x == 8).any(axis=1).astype("int64")


# ---------------------------------------------------------------------------- sublayers in nested lists


def _nested_blocks(keras: Any) -> Any:
    class NestedBlocks(keras.layers.Layer):  # type: ignore[misc]
        """Sublayers kept in a list of lists: not every Keras tracks them for saving."""

        def __init__(self, units: int = 4, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.units = units
            self.stages = [[keras.layers.Dense(units, activation="tanh", name="s0a"),
                            keras.layers.Dense(units, activation="tanh", name="s0b")],
                           [keras.layers.Dense(units, name="s1")]]

        def call(self, inputs: Any) -> Any:
            x = inputs
            for stage in self.stages:
                for layer in stage:
                    x = layer(x)
            return x

        def compute_output_shape(self, input_shape: Any) -> Any:
            return (input_shape[0], self.units)

        def get_config(self) -> Dict[str, Any]:
            config: Dict[str, Any] = super().get_config()
            config["units"] = self.units
            return config

    return NestedBlocks


def nested_objects() -> Dict[str, Any]:
    """The nested-list layer, as a loading process with the model's code knows it."""
    cls = _cached("NestedBlocks", _nested_blocks)
    return {"NestedBlocks": cls, "harness>NestedBlocks": cls}


def nested_lists() -> Any:
    """A custom layer holding its sublayers in nested lists."""
    keras = _keras()
    inputs = keras.Input(shape=(16,), name="features")
    x = nested_objects()["NestedBlocks"](units=6, name="blocks")(inputs)
    return _classifier_head(keras, inputs, x, "nested_lists_probe")


# ---------------------------------------------------------------------------- layer configs that grow


def grown_configs() -> Any:
    """Dense and BatchNormalization: layers whose configs gain keys in newer Keras 3 minors."""
    keras = _keras()
    inputs = keras.Input(shape=(16,), name="features")
    x = keras.layers.Dense(8, name="hidden")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    return _classifier_head(keras, inputs, x, "grown_configs_probe")


# ---------------------------------------------------------------------------- Concatenate on an integer axis


def concat_axis() -> Any:
    """Concatenate along axis=1 of two sequences of different lengths."""
    keras = _keras()
    a = keras.Input(shape=(3, 4), name="a")
    b = keras.Input(shape=(5, 4), name="b")
    x = keras.layers.Concatenate(axis=1, name="concat")([a, b])
    x = keras.layers.Flatten(name="flat")(x)
    return _classifier_head(keras, [a, b], x, "concat_axis_probe", classes=2)


def short_sequences(seed: int, n: int) -> Data:
    """Sequences a (3 x 4) and b (5 x 4), 2 classes."""
    rng = np.random.RandomState(seed)
    a = rng.standard_normal((n, 3, 4)).astype("float32")
    b = rng.standard_normal((n, 5, 4)).astype("float32")
    return {"a": a, "b": b}, (a.sum(axis=(1, 2)) > b.sum(axis=(1, 2))).astype("int64")


# ---------------------------------------------------------------------------- optimizer state and runtime numerics


def adam_dense() -> Any:
    """A Dense classifier under Adam, no dropout (a training step must be deterministic): its moments and
    iteration count are part of what is saved."""
    keras = _keras()
    inputs = keras.Input(shape=(16,), name="features")
    x = keras.layers.Dense(32, activation="relu", name="hidden")(inputs)
    return _classifier_head(keras, inputs, x, "optimizer_probe")


def conv_numeric() -> Any:
    """Convolutions and a wide Dense: long sums whose rounding depends on the kernels that run them."""
    keras = _keras()
    inputs = keras.Input(shape=(16, 16, 3), name="image")
    x = keras.layers.Conv2D(16, 3, activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(16, 3, activation="relu", name="conv2")(x)
    x = keras.layers.Flatten(name="flat")(x)
    x = keras.layers.Dense(64, activation="relu", name="wide")(x)
    return _classifier_head(keras, inputs, x, "numeric_probe", classes=3)


def images16(seed: int, n: int) -> Data:
    """16x16 three-channel images, 3 classes."""
    rng = np.random.RandomState(seed)
    x = rng.standard_normal((n, 16, 16, 3)).astype("float32")
    return {"image": x}, (x[..., 0].mean(axis=(1, 2)) > 0).astype("int64") + (x[:, 0, 0, 2] > 1).astype("int64")
