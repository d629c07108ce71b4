"""silabs-mltk's test image model, restated: mltk.utils.test_helper.test_image_model.my_model_builder.

Importing that module needs the whole mltk package; its builder is six lines of Keras (Zlib licence,
Silicon Laboratories), reproduced here with the arguments its test model passes (32x32x3 input, 10 classes).
"""

import tensorflow as tf


def my_model_builder():
    """Conv2D(8, 3, strides 2, same, relu) > Flatten > Dense(10) > softmax on 32x32x3 images."""
    keras = tf.keras
    model = keras.Sequential(name="test_image_model")
    model.add(keras.layers.Conv2D(8, strides=(2, 2), kernel_size=3, use_bias=True, padding="same",
                                  activation="relu", input_shape=(32, 32, 3)))
    model.add(keras.layers.Flatten())
    model.add(keras.layers.Dense(10, use_bias=True))
    model.add(keras.layers.Activation("softmax"))
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model
