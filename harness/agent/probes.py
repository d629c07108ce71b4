"""Built-in probe models: tiny, seeded, each with fixed inputs stored beside it."""

from __future__ import annotations

from typing import Any, Callable, Dict, Tuple

import numpy as np

SEED = 1234
N_REFERENCE = 32


def _data(seed: int, n: int, features: int, classes: int) -> Tuple[Any, Any]:
    rng = np.random.RandomState(seed)
    x = rng.standard_normal((n, features)).astype("float32")
    y = (np.abs(x[:, :classes]).argmax(axis=1)).astype("int64")
    return x, y


def build_dense(keras: Any) -> Dict[str, Any]:
    """A small Dense/Dropout classifier, briefly trained with a fixed seed."""
    keras.utils.set_random_seed(SEED)
    inputs = keras.Input(shape=(16,), name="features")
    x = keras.layers.Dense(32, activation="relu")(inputs)
    x = keras.layers.Dropout(0.2)(x)
    outputs = keras.layers.Dense(4, activation="softmax")(x)
    model = keras.Model(inputs, outputs, name="dense_probe")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["sparse_categorical_accuracy"])
    x_train, y_train = _data(SEED, 256, 16, 4)
    model.fit(x_train, y_train, epochs=3, batch_size=32, verbose=0, shuffle=False)
    x_ref, y_ref = _data(SEED + 1, N_REFERENCE, 16, 4)
    return {"model": model, "x": x_ref, "y": y_ref}


BUILDERS: Dict[str, Callable[[Any], Dict[str, Any]]] = {
    "dense": build_dense,
}


def build(name: str, keras: Any) -> Dict[str, Any]:
    """Build a probe by name: {'model', 'x', 'y'}."""
    return BUILDERS[name](keras)
