"""A user's own model code: a custom layer, a custom loss, the factory that builds and trains the model.

The harness imports this module inside each environment's containers (from a read-only mount)
and calls `build_model()` there; a loading process gets `CUSTOM_OBJECTS`, as a user's serving
code would pass them to `load_model`.
"""

import numpy as np
import tensorflow as tf

keras = tf.keras  # whichever Keras this TensorFlow resolves to: Keras 2 up to TF 2.15, Keras 3 from 2.16

FEATURES = 8
LABELS = ["bird", "cat", "dog", "fish"]


class Scale(keras.layers.Layer):
    """Multiplies its input by a trainable per-feature scale (a custom layer with get_config)."""

    def __init__(self, initial=1.0, **kwargs):
        super().__init__(**kwargs)
        self.initial = initial

    def build(self, input_shape):
        self.scale = self.add_weight(name="scale", shape=(input_shape[-1],),
                                     initializer=keras.initializers.Constant(self.initial), trainable=True)
        super().build(input_shape)

    def call(self, inputs):
        return inputs * self.scale

    def get_config(self):
        config = super().get_config()
        config["initial"] = self.initial
        return config


def weighted_mse(y_true, y_pred):
    """A custom loss: squared error, doubled for positive targets."""
    weight = tf.where(y_true > 0, 2.0, 1.0)
    return tf.reduce_mean(weight * tf.square(y_true - y_pred), axis=-1)


CUSTOM_OBJECTS = {"Scale": Scale, "weighted_mse": weighted_mse}


def _data(n, seed):
    rng = np.random.RandomState(seed)
    x = rng.standard_normal((n, FEATURES)).astype("float32")
    y = (x[:, :3].sum(axis=1, keepdims=True) * 0.5).astype("float32")
    return x, y


def build_model():
    """A small regressor with the custom layer and loss, briefly trained (seeded by the harness)."""
    inputs = keras.Input(shape=(FEATURES,), name="features")
    x = keras.layers.Dense(16, activation="tanh", name="hidden")(inputs)
    x = Scale(0.5, name="scale")(x)
    outputs = keras.layers.Dense(1, name="value")(x)
    model = keras.Model(inputs, outputs, name="regressor")
    model.compile(optimizer="adam", loss=weighted_mse, metrics=["mae"])
    x_train, y_train = _data(128, seed=7)
    model.fit(x_train, y_train, epochs=3, batch_size=32, verbose=0, shuffle=False)
    return model


def build_tagger():
    """A small classifier over LABELS (its outputs are indices into a class list)."""
    inputs = keras.Input(shape=(FEATURES,), name="features")
    x = keras.layers.Dense(16, activation="relu", name="hidden")(inputs)
    outputs = keras.layers.Dense(len(LABELS), activation="softmax", name="probs")(x)
    model = keras.Model(inputs, outputs, name="tagger")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def predict_by_label(model, raw):
    """Serving code with a hidden bug: probabilities by label name, in a class order built from a set.

    list(set(...)) of strings is ordered by string hashes, which change with PYTHONHASHSEED:
    every fresh process may map the model's outputs to different labels.
    """
    classes = list(set(LABELS))
    probs = np.asarray(model.predict(raw, verbose=0))
    return probs[:, [classes.index(name) for name in sorted(LABELS)]]


def predict_by_label_sorted(model, raw):
    """The fix: one stable class order."""
    classes = sorted(set(LABELS))
    probs = np.asarray(model.predict(raw, verbose=0))
    return probs[:, [classes.index(name) for name in sorted(LABELS)]]
