"""How legacy_classifier/ (a SavedModel), inputs.npy and reference.npy here were made.

A small classifier trained with the legacy Adam (tf.keras.optimizers.legacy, the optimizer of models trained
before TF 2.11), saved by TF 2.15 / Keras 2.15 with model.save() as a SavedModel (Keras 2's format for a path
without a suffix), its optimizer slots included. Keras 3 cannot read it: load_model refuses SavedModels, and
tf.saved_model.load and TFSMLayer fail restoring the slots ('_UserObject' object has no attribute 'add_slot');
tf-keras in the same TensorFlow loads it.

Run inside an environment with that TensorFlow, from this directory, e.g. the harness image for Python 3.11
and TensorFlow 2.15.1 (`python -m harness validate` prints its tag):

    docker run --rm --user "$(id -u):$(id -g)" -v "$PWD/examples:/examples" -w /examples/legacy_savedmodel \\
        harness-env:<tag> python make_savedmodel.py
"""

import numpy as np
import tensorflow as tf

keras = tf.keras
keras.utils.set_random_seed(1234)
rng = np.random.RandomState(7)
x = rng.standard_normal((256, 16)).astype("float32")
y = (x[:, :4].sum(axis=1) > 0).astype("int64") + (x[:, 4] > 1).astype("int64")

inputs = keras.Input(shape=(16,), name="features")
h = keras.layers.Dense(32, activation="relu", name="hidden")(inputs)
h = keras.layers.BatchNormalization(name="norm")(h)
outputs = keras.layers.Dense(3, activation="softmax", name="probs")(h)
model = keras.Model(inputs, outputs, name="classifier")
model.compile(optimizer=keras.optimizers.legacy.Adam(1e-3), loss="sparse_categorical_crossentropy",
              metrics=["sparse_categorical_accuracy"])
model.fit(x, y, epochs=3, batch_size=32, verbose=0, shuffle=False)
model.save("legacy_classifier")  # a SavedModel directory: Keras 2's model.save for a path without a suffix

sample = rng.standard_normal((16, 16)).astype("float32")
np.save("inputs.npy", sample)
np.save("reference.npy", model.predict(sample, verbose=0))
print("saved with TensorFlow", tf.__version__)
