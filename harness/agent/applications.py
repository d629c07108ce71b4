"""Real architectures from keras.applications, small: the layer mixes users' models are made of.

Each factory builds an architecture with weights=None (no download), a small input (32x32x3, the
smallest most of them accept; Xception needs 71x71) and 10 classes, compiled like the probes. What
they bring across every path: depthwise convolutions, squeeze-and-excitation, Rescaling and
Normalization inside the model, hard-swish, stochastic depth, layer scale (ConvNeXt, whose
LayerScale is not a registered Keras class: its custom objects say so). The catalog entries
(catalog.py: APPLICATION_PROBES) say which Keras releases have which architecture.
"""

from __future__ import annotations

import sys
from typing import Any, Dict, Tuple

import numpy as np

CLASSES = 10
SIZE = 32
Data = Tuple[Dict[str, Any], Any]


def _applications() -> Any:
    import tensorflow as tf

    return tf.keras.applications


def _compiled(model: Any) -> Any:
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["sparse_categorical_accuracy"])
    return model


def _build(name: str, size: int = SIZE, **options: Any) -> Any:
    builder = getattr(_applications(), name)
    return _compiled(builder(input_shape=(size, size, 3), weights=None, classes=CLASSES, **options))


def mobilenet() -> Any:
    """MobileNet V1, alpha 0.25: depthwise separable convolutions, ReLU6."""
    return _build("MobileNet", alpha=0.25)


def mobilenet_v2() -> Any:
    """MobileNetV2, alpha 0.35: inverted residuals, depthwise convolutions."""
    return _build("MobileNetV2", alpha=0.35)


def mobilenet_v3_small() -> Any:
    """MobileNetV3Small, alpha 0.75: squeeze-and-excitation, hard-swish, Rescaling inside the model."""
    return _build("MobileNetV3Small", alpha=0.75)


def efficientnet_b0() -> Any:
    """EfficientNetB0: Rescaling and Normalization inside, squeeze-and-excitation, swish, stochastic depth."""
    return _build("EfficientNetB0")


def efficientnet_v2_b0() -> Any:
    """EfficientNetV2B0: fused MBConv blocks, Rescaling inside."""
    return _build("EfficientNetV2B0")


def densenet121() -> Any:
    """DenseNet121: dense concatenations, BatchNormalization everywhere."""
    return _build("DenseNet121")


def nasnet_mobile() -> Any:
    """NASNetMobile: searched cells of separable convolutions and poolings."""
    return _build("NASNetMobile")


def resnet50() -> Any:
    """ResNet50: residual bottlenecks."""
    return _build("ResNet50")


def xception() -> Any:
    """Xception at its smallest input, 71x71: entry/middle/exit flows of separable convolutions."""
    return _build("Xception", size=71)


def regnetx002() -> Any:
    """RegNetX002: grouped convolutions, Rescaling inside."""
    return _build("RegNetX002")


def _convnext_module() -> Any:
    # The ConvNeXt builder that ConvNeXtTiny calls, reached through that public function's own module: its
    # place moved (keras.applications.convnext, keras.src.applications.convnext, tf_keras.src...).
    return sys.modules[_applications().ConvNeXtTiny.__module__]


def convnext_micro() -> Any:
    """ConvNeXt from its own builder at a micro size (one block per stage, 8 to 64 channels): layer scale,
    LayerNormalization, depthwise 7x7, Normalization inside."""
    module = _convnext_module()
    model = module.ConvNeXt(depths=[1, 1, 1, 1], projection_dims=[8, 16, 32, 64], drop_path_rate=0.0,
                            layer_scale_init_value=1e-6, default_size=SIZE, model_name="convnext_micro",
                            include_preprocessing=True, include_top=True, weights=None, input_shape=(SIZE, SIZE, 3),
                            classes=CLASSES)
    return _compiled(model)


def convnext_objects() -> Dict[str, Any]:
    """ConvNeXt's LayerScale, which no Keras release registers: a loading process passes it."""
    return {"LayerScale": _convnext_module().LayerScale}


def _images(seed: int, n: int, size: int) -> Data:
    rng = np.random.RandomState(seed)
    x = rng.uniform(0.0, 255.0, size=(n, size, size, 3)).astype("float32")
    return {"image": x}, (x[..., 0].mean(axis=(1, 2)) // 25.6).astype("int64").clip(0, CLASSES - 1)


def images32(seed: int, n: int) -> Data:
    """32x32 RGB images in [0, 255) (the applications rescale inside, or expect that range), 10 classes."""
    return _images(seed, n, SIZE)


def images71(seed: int, n: int) -> Data:
    """71x71 RGB images, for Xception."""
    return _images(seed, n, 71)
