"""Make model.keras: a Keras 3 model wrapping a SavedModel in TFSMLayer, as the Keras migration guide suggests
for a SavedModel Keras 3 cannot load_model. Run with TensorFlow 2.20.0 and Keras 3.12.0, in this folder:

    python make_model.py

It writes serving/ (the SavedModel, exported from a small seeded classifier), model.keras (a Sequential
model whose only layer is TFSMLayer("serving"): the path is kept relative, so the file loads from this
folder) and inputs.npy. Keras 3.12.1 and 3.13.2 refuse to deserialize TFSMLayer in safe mode.
"""

import numpy as np

import keras

keras.utils.set_random_seed(7)
inputs = keras.Input((4,), name="features")
hidden = keras.layers.Dense(8, activation="relu")(inputs)
classifier = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden))
classifier.export("serving")  # the SavedModel a serving stack reads

wrapped = keras.Sequential([keras.Input((4,)), keras.layers.TFSMLayer("serving", call_endpoint="serve")])
wrapped.save("model.keras")
np.save("inputs.npy", np.random.default_rng(0).normal(size=(8, 4)).astype("float32"))
