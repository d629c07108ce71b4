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
