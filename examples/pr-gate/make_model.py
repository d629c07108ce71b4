"""Make model.keras and inputs.npy: a small classifier saved by TensorFlow 2.15.1 (Keras 2.15), as the service
that pins TensorFlow 2.15 in pyproject.toml has it. Run in this folder with TensorFlow 2.15.1:

    python make_model.py
"""

import numpy as np
import tensorflow as tf

tf.keras.utils.set_random_seed(3)
model = tf.keras.Sequential([
    tf.keras.Input((6,), name="features"),
    tf.keras.layers.Dense(16, activation="relu"),
    tf.keras.layers.BatchNormalization(),
    tf.keras.layers.Dense(3, activation="softmax"),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
x = np.random.default_rng(0).normal(size=(64, 6)).astype("float32")
model.fit(x, (x[:, 0] > 0).astype("int64") + (x[:, 1] > 0), epochs=2, verbose=0)
model.save("model.keras")  # the format Keras recommends since 2.13
np.save("inputs.npy", x[:8])
