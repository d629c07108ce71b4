"""How model.h5 and reference.npy here were made: the custom_model factory, saved by TF 2.12 / Keras 2.12.

Run inside an environment with that TensorFlow, from this directory, e.g. the harness image for
Python 3.9 and TensorFlow 2.12.1 (`python -m harness validate` prints its tag):

    docker run --rm --user "$(id -u):$(id -g)" -v "$PWD/examples:/examples" -w /examples/legacy_h5 \\
        harness-env:<tag> python make_legacy_h5.py
"""

import sys

import numpy as np
import tensorflow as tf

sys.path.insert(0, "../custom_model")
import mymodels  # noqa: E402 - the user's own module, one directory over

tf.keras.utils.set_random_seed(1234)
model = mymodels.build_model()
model.save("model.h5")
inputs = np.load("../custom_model/inputs.npy")
np.save("inputs.npy", inputs)
np.save("reference.npy", model.predict(inputs, verbose=0))
print("saved with TensorFlow", tf.__version__, "and Keras", tf.keras.__version__)
