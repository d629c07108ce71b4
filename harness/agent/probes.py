"""Built-in probe models: tiny, seeded, each with fixed inputs stored beside it.

Every layer has an explicit name, so weights map by name whatever else the
process built before (Keras numbers unnamed layers per process).
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Dict, List, Tuple

import numpy as np

SEED = 1234
N_REFERENCE = 32
LABELS = ["ant", "bee", "cat", "dog", "eel", "fox", "gnu", "hen"]
CLASS_MAP_FILE = "classes.json"


def _data(seed: int, n: int, features: int, classes: int) -> Tuple[Any, Any]:
    rng = np.random.RandomState(seed)
    x = rng.standard_normal((n, features)).astype("float32")
    y = (np.abs(x[:, :classes]).argmax(axis=1)).astype("int64")
    return x, y


# Registered objects per Keras module: some Keras versions refuse a second
# registration under the same name within one process.
_REGISTERED: Dict[str, Any] = {}


def register_once(keras: Any, name: str, obj: Any) -> Any:
    """Register obj as harness>name with this Keras, once per process; return the registered object."""
    key = f"{id(keras)}:{name}"
    if key not in _REGISTERED:
        saving = getattr(keras, "saving", None)
        register = getattr(saving, "register_keras_serializable", None) or keras.utils.register_keras_serializable
        _REGISTERED[key] = register(package="harness", name=name)(obj)
    return _REGISTERED[key]


def custom_classes(keras: Any, register: bool = False) -> Dict[str, Any]:
    """The probes' custom layer and loss, as a loading process that has the code defines them.

    Registration happens only where the model is built (save phase): a loading
    process must get them through custom_objects, like a user's fresh process.
    """

    class ScaleLayer(keras.layers.Layer):  # type: ignore[name-defined,misc]
        def __init__(self, factor: float = 1.0, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.factor = factor

        def call(self, inputs: Any) -> Any:
            return inputs * self.factor

        def get_config(self) -> Dict[str, Any]:
            config = super().get_config()
            config["factor"] = self.factor
            return config

    def scaled_mse(y_true: Any, y_pred: Any) -> Any:
        return keras.ops.mean((y_true - y_pred) ** 2) * 2.0 if hasattr(keras, "ops") else \
            keras.backend.mean(keras.backend.square(y_true - y_pred)) * 2.0

    if register:
        ScaleLayer = register_once(keras, "ScaleLayer", ScaleLayer)
        scaled_mse = register_once(keras, "scaled_mse", scaled_mse)
    return {"ScaleLayer": ScaleLayer, "harness>ScaleLayer": ScaleLayer,
            "scaled_mse": scaled_mse, "harness>scaled_mse": scaled_mse}


def _compile_classifier(model: Any, metric: str) -> None:
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=[metric])


def _dense(keras: Any) -> Any:
    inputs = keras.Input(shape=(16,), name="features")
    x = keras.layers.Dense(32, activation="relu", name="hidden")(inputs)
    x = keras.layers.Dropout(0.2, name="dropout")(x)
    outputs = keras.layers.Dense(4, activation="softmax", name="probs")(x)
    model = keras.Model(inputs, outputs, name="dense_probe")
    _compile_classifier(model, "sparse_categorical_accuracy")
    return model


def _classifier(keras: Any, metric: str) -> Any:
    inputs = keras.Input(shape=(6, 6, 1), name="image")
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Flatten(name="flat")(x)
    x = keras.layers.Dropout(0.2, name="dropout")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="probs")(x)
    model = keras.Model(inputs, outputs, name="classifier_probe")
    _compile_classifier(model, metric)
    return model


def _lambda(keras: Any) -> Any:
    inputs = keras.Input(shape=(16,), name="features")
    x = keras.layers.Dense(8, name="hidden")(inputs)
    x = keras.layers.Lambda(lambda t: t * 2.0 + 1.0, name="affine")(x)
    outputs = keras.layers.Dense(4, activation="softmax", name="probs")(x)
    model = keras.Model(inputs, outputs, name="lambda_probe")
    _compile_classifier(model, "sparse_categorical_accuracy")
    return model


def _custom_layer(keras: Any, classes: Dict[str, Any]) -> Any:
    inputs = keras.Input(shape=(16,), name="features")
    x = classes["ScaleLayer"](factor=1.5, name="scale")(inputs)
    outputs = keras.layers.Dense(4, activation="softmax", name="probs")(x)
    model = keras.Model(inputs, outputs, name="custom_layer_probe")
    _compile_classifier(model, "sparse_categorical_accuracy")
    return model


def _custom_loss(keras: Any, classes: Dict[str, Any]) -> Any:
    inputs = keras.Input(shape=(16,), name="features")
    x = keras.layers.Dense(8, activation="tanh", name="hidden")(inputs)
    outputs = keras.layers.Dense(1, name="value")(x)
    model = keras.Model(inputs, outputs, name="custom_loss_probe")
    model.compile(optimizer="adam", loss=classes["scaled_mse"])
    return model


def _text_rnn(keras: Any) -> Any:
    inputs = keras.Input(shape=(12,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(50, 8, name="embed")(inputs)
    x = keras.layers.LSTM(8, return_sequences=True, name="lstm")(x)
    x = keras.layers.GRU(8, name="gru")(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="probs")(x)
    model = keras.Model(inputs, outputs, name="text_rnn_probe")
    _compile_classifier(model, "sparse_categorical_accuracy")
    return model


def _multi_input(keras: Any) -> Any:
    a = keras.Input(shape=(6,), name="a")
    b = keras.Input(shape=(4,), name="b")
    x = keras.layers.Concatenate(name="concat")([
        keras.layers.Dense(5, activation="relu", name="dense_a")(a),
        keras.layers.Dense(5, activation="relu", name="dense_b")(b),
    ])
    outputs = keras.layers.Dense(3, activation="softmax", name="probs")(x)
    model = keras.Model([a, b], outputs, name="multi_input_probe")
    _compile_classifier(model, "sparse_categorical_accuracy")
    return model


def _labels_model(keras: Any) -> Any:
    inputs = keras.Input(shape=(16,), name="features")
    x = keras.layers.Dense(16, activation="relu", name="hidden")(inputs)
    outputs = keras.layers.Dense(len(LABELS), activation="softmax", name="probs")(x)
    model = keras.Model(inputs, outputs, name="label_probe")
    _compile_classifier(model, "sparse_categorical_accuracy")
    return model


def _fault_model(keras: Any, mode: str) -> Any:
    from harness.agent import faults

    inputs = keras.Input(shape=(16,), name="features")
    x = faults.fault_layer(keras, mode, register=True)(mode=mode, name="fault")(inputs)
    outputs = keras.layers.Dense(4, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name="fault_probe")


def architecture(name: str, keras: Any, classes: Dict[str, Any]) -> Any:
    """A fresh, untrained model of a probe's architecture (the 'rebuild from code' path)."""
    if name.startswith("fault_"):
        return _fault_model(keras, name[len("fault_"):])
    builders: Dict[str, Callable[[], Any]] = {
        "dense": lambda: _dense(keras),
        "tf1_init": lambda: _dense(keras),
        "seeded": lambda: _dense(keras),
        "classifier": lambda: _classifier(keras, "accuracy"),
        "classifier_explicit": lambda: _classifier(keras, "sparse_categorical_accuracy"),
        "lambda": lambda: _lambda(keras),
        "custom_layer": lambda: _custom_layer(keras, classes),
        "custom_loss": lambda: _custom_loss(keras, classes),
        "text_rnn": lambda: _text_rnn(keras),
        "multi_input": lambda: _multi_input(keras),
        "label_order": lambda: _labels_model(keras),
        "label_order_sorted": lambda: _labels_model(keras),
    }
    return builders[name]()


def _inputs_for(name: str, seed: int, n: int) -> Tuple[Dict[str, Any], Any]:
    """Named inputs, in the model's input order, and labels for a probe."""
    rng = np.random.RandomState(seed)
    if name in ("classifier", "classifier_explicit"):
        x = rng.standard_normal((n, 6, 6, 1)).astype("float32")
        return {"image": x}, (x.mean(axis=(1, 2, 3)) > 0).astype("int64") + (x[:, 0, 0, 0] > 1).astype("int64")
    if name == "text_rnn":
        tokens = rng.randint(1, 50, size=(n, 12)).astype("int32")
        return {"tokens": tokens}, (tokens.mean(axis=1) > 25).astype("int64")
    if name == "multi_input":
        a = rng.standard_normal((n, 6)).astype("float32")
        b = rng.standard_normal((n, 4)).astype("float32")
        return {"a": a, "b": b}, (np.abs(a[:, :3]) + np.abs(b[:, :3])).argmax(axis=1).astype("int64")
    if name == "custom_loss":
        x, _ = _data(seed, n, 16, 4)
        return {"features": x}, x[:, :3].sum(axis=1, keepdims=True).astype("float32")
    classes = len(LABELS) if name.startswith("label_order") else 4
    x, y = _data(seed, n, 16, classes)
    return {"features": x}, y


def class_names(name: str, artifact_dir: str) -> List[str]:
    """The class list a process uses for a label probe (the hazard and its fix)."""
    if name == "label_order_sorted":
        path = os.path.join(artifact_dir, CLASS_MAP_FILE)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as fh:
                return list(json.load(fh))
        return sorted(set(LABELS))
    return list(set(LABELS))  # the hazard: order depends on this process's PYTHONHASHSEED


def postprocess(name: str, outputs: Any, artifact_dir: str) -> Any:
    """Map model outputs to what a user's code would report (label probes: by class name)."""
    if not name.startswith("label_order"):
        return outputs
    names = class_names(name, artifact_dir)
    # Column j of the result is the probability of the j-th label in alphabetical order.
    return outputs[:, [names.index(label) for label in sorted(LABELS)]]


def build(name: str, keras: Any) -> Dict[str, Any]:
    """Build and briefly train a probe: {'model', 'inputs' (by name), 'y'}."""
    keras.utils.set_random_seed(SEED)
    # Register custom objects only for probes that use them: a load worker that
    # rebuilds the seeded probe must not learn classes other cells load without.
    classes = custom_classes(keras, register=name in ("custom_layer", "custom_loss"))
    model = architecture(name, keras, classes)
    train_x, train_y = _inputs_for(name, SEED, 96)
    if name.startswith("label_order"):
        # Labels are strings; the model sees indices into this process's class list.
        names = class_names("label_order", "") if name == "label_order" else sorted(set(LABELS))
        train_y = np.array([names.index(sorted(LABELS)[i]) for i in train_y], dtype="int64")
    if not name.startswith("fault_"):
        # Eager: tracing train_step costs more than two epochs of probe-sized data.
        model.run_eagerly = True
        model.fit(feed(list(train_x.values())), train_y, epochs=2, batch_size=32, verbose=0, shuffle=False)
    ref_x, ref_y = _inputs_for(name, SEED + 1, N_REFERENCE)
    return {"model": model, "inputs": ref_x, "y": ref_y}


def feed(arrays: List[Any]) -> Any:
    """What a model is called with: one array, or a list in the model's input order."""
    return arrays[0] if len(arrays) == 1 else arrays


def custom_objects(name: str, keras: Any) -> Dict[str, Any]:
    """custom_objects a user would pass to load this probe (unregistered classes)."""
    if name.startswith("fault_"):
        from harness.agent import faults

        layer = faults.fault_layer(keras, name[len("fault_"):], register=False)
        return {"FaultLayer": layer, "harness>FaultLayer": layer}
    return custom_classes(keras, register=False)
