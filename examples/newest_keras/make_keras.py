"""How model.keras, inputs.npy and reference.npy here were made: a small Dense/BatchNormalization regressor saved
as .keras by Keras 3.15.1 (TensorFlow 2.20.0), the newest Keras 3 when it was made.

Each Keras 3 minor adds keys to layer configs (Dense's quantization_config, BatchNormalization's renorm, ...); an
older Keras refuses the keys it does not know, so `harness bisect` over the Keras 3 minors finds the oldest one
that still loads this file.

Run inside an environment with that Keras, from this directory, e.g. the harness image for Python 3.11 and
TensorFlow 2.20.0 (`python -m harness validate` prints its tag):

    docker run --rm --user "$(id -u):$(id -g)" -v "$PWD/examples:/examples" -w /examples/newest_keras \\
        harness-env:<tag> python make_keras.py
"""

import keras
import numpy as np

keras.utils.set_random_seed(1234)
rng = np.random.RandomState(7)
x = rng.standard_normal((256, 8)).astype("float32")
y = (x[:, :3].sum(axis=1, keepdims=True) * 0.5).astype("float32")

inputs = keras.Input(shape=(8,), name="features")
h = keras.layers.Dense(16, activation="relu", name="hidden")(inputs)
h = keras.layers.BatchNormalization(name="norm")(h)
outputs = keras.layers.Dense(1, name="value")(h)
model = keras.Model(inputs, outputs, name="regressor")
model.compile(optimizer="adam", loss="mse")
model.fit(x, y, epochs=3, batch_size=32, verbose=0, shuffle=False)
model.save("model.keras")

sample = rng.standard_normal((16, 8)).astype("float32")
np.save("inputs.npy", sample)
np.save("reference.npy", model.predict(sample, verbose=0))
print("saved with Keras", keras.__version__)
