"""ResNet-18 (He et al. 2015), built by hand: basic blocks [2, 2, 2, 2] of 64-512 filters.

At 224 px the stem is the paper's (7x7 convolution with stride 2, then a 3x3 max
pooling with stride 2: the first blocks see 56x56). Smaller inputs get fewer
stem downsamplings; at 64 px and below it is one 3x3 convolution with stride 1,
as the CIFAR ResNets use, so that 16-32 px images keep some resolution.
"""
import math

from keras import layers

STAGES = ((64, 2), (128, 2), (256, 2), (512, 2))  # (filters, basic blocks)
STAGE1_SIZE = 56  # the map size the paper's stem gives the first blocks at 224 px


def conv_bn(x, filters: int, size: int, strides: int = 1):
    x = layers.Conv2D(filters, size, strides=strides, padding="same", use_bias=False)(x)
    return layers.BatchNormalization()(x)


def basic_block(x, filters: int, strides: int):
    """Two 3x3 convolutions and the shortcut (a 1x1 projection when the shape changes)."""
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = conv_bn(x, filters, 1, strides)
    y = layers.Activation("relu")(conv_bn(x, filters, 3, strides))
    y = conv_bn(y, filters, 3)
    return layers.Activation("relu")(layers.Add()([shortcut, y]))


def stem_downsamplings(size: int) -> int:
    """How many times the stem halves the input: 2 at 224 px, none at 64 px and below."""
    return max(0, min(2, round(math.log2(max(size, 1) / STAGE1_SIZE))))


def stem(x, downsamplings: int):
    if downsamplings == 0:
        return layers.Activation("relu")(conv_bn(x, 64, 3))
    x = layers.Activation("relu")(conv_bn(x, 64, 7, strides=2))
    if downsamplings >= 2:
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    return x


def resnet18(inputs, n_classes: int):
    x = stem(inputs, stem_downsamplings(min(inputs.shape[1:3])))
    for stage, (filters, blocks) in enumerate(STAGES):
        for block in range(blocks):
            x = basic_block(x, filters, strides=2 if stage and not block else 1)
    x = layers.GlobalAveragePooling2D()(x)
    return layers.Dense(n_classes, name="logits")(x)
