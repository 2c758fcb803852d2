"""The standard networks, built for a dataset's image shape and class count.

Each model takes uint8-range HxWxC pixels, passes them through the job's
preprocessing layers (training/preprocessing.py: part of the model, so a saved
model is self-contained), and outputs logits from a layer named "logits" (what
fine-tuning replaces). GoogLeNet, ResNet-18 and the keras.applications networks
(ResNet-50, MobileNetV2) have modules of their own, and so has CenterNet (detection:
one packed output, named "logits" too, and a model class that computes its own loss).
"""
from typing import Callable

import keras
from keras import layers

from ..pretrained_weights import PRETRAINABLE
from . import centernet
from .googlenet import googlenet
from .keras_applications import application
from .resnet18 import resnet18


def lenet(inputs, n_classes: int):
    """LeNet as DIGITS shipped it: conv20-pool-conv50-pool-fc500-fc(n).

    Unpadded convolutions as in the original when the input allows (16 px and
    up); padded ones for smaller images so that any size builds.
    """
    padding = "valid" if min(inputs.shape[1:3]) >= 16 else "same"
    x = layers.Conv2D(20, 5, padding=padding, activation="relu")(inputs)
    x = layers.MaxPooling2D(2, padding="same")(x)
    x = layers.Conv2D(50, 5, padding=padding, activation="relu")(x)
    x = layers.MaxPooling2D(2, padding="same")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(500, activation="relu")(x)
    return layers.Dense(n_classes, name="logits")(x)


def alexnet(inputs, n_classes: int):
    """AlexNet's shape (five convolutions, two wide dense layers with dropout), sized for small inputs."""
    x = inputs
    for filters, pool in ((64, True), (128, True), (192, False), (192, False), (128, True)):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        if pool:
            x = layers.MaxPooling2D(2, padding="same")(x)
    x = layers.GlobalAveragePooling2D()(x)
    for units in (512, 512):
        x = layers.Dense(units, activation="relu")(x)
        x = layers.Dropout(0.5)(x)
    return layers.Dense(n_classes, name="logits")(x)


def unet(inputs, n_classes: int):
    """A small U-Net for CPU training: two poolings (16-32-64 filters) and skip
    connections; per-pixel logits at the input's size (H and W divisible by 4)."""
    def block(x, filters):
        for _ in range(2):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization()(x)
            x = layers.Activation("relu")(x)
        return x

    down1 = block(inputs, 16)
    down2 = block(layers.MaxPooling2D(2)(down1), 32)
    bottom = block(layers.MaxPooling2D(2)(down2), 64)
    up2 = block(layers.Concatenate()([layers.UpSampling2D(2)(bottom), down2]), 32)
    up1 = block(layers.Concatenate()([layers.UpSampling2D(2)(up2), down1]), 16)
    return layers.Conv2D(n_classes, 1, name="logits")(up1)


NETWORKS = {"lenet": lenet, "alexnet": alexnet, "googlenet": googlenet, "resnet18": resnet18,
            "resnet50": application("resnet50"), "mobilenetv2": application("mobilenetv2"), "unet": unet,
            "centernet": centernet.centernet_body}


def build(name: str, image_shape, n_classes: int, preprocess: Callable, weights: str | None = None) -> keras.Model:
    """`preprocess(inputs)` -> the normalised tensor the network body starts from. `weights`
    (keras.applications only): "imagenet" or the path of a weights file for the body without its top."""
    try:
        body = NETWORKS[name]
    except KeyError:
        raise ValueError(f"Unknown network {name!r}; expected one of {', '.join(NETWORKS)}.") from None
    if weights and name not in PRETRAINABLE:
        raise ValueError(f"Pretrained weights exist only for {', '.join(PRETRAINABLE)}; not for {name}.")
    if name == "unet" and (image_shape[0] % 4 or image_shape[1] % 4):
        raise ValueError(f"U-Net needs an image height and width divisible by 4; this dataset's images are "
                         f"{image_shape[1]}x{image_shape[0]}. Rebuild the dataset at e.g. 64x64.")
    if name == "centernet":
        return centernet.build(image_shape, n_classes, preprocess)
    inputs = keras.Input(shape=tuple(image_shape), name="image")
    features = preprocess(inputs)
    outputs = body(features, n_classes, weights=weights) if name in PRETRAINABLE else body(features, n_classes)
    return keras.Model(inputs, outputs, name=name)
