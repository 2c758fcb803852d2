"""GoogLeNet (Inception v1, Szegedy et al. 2014) scaled to the input size.

At 224 px it has the paper's shape: a stem that divides the size by 8, then
inception modules 3a-3b, 4a-4e and 5a-5b with a max pooling between the groups,
global average pooling, dropout 0.4 and the logits. Smaller inputs get fewer
downsamplings in the stem (none at 32 px and below) and one module per group,
so that 16-32 px images build and train fast. Convolutions are followed by
batch normalization, which makes the paper's auxiliary classifiers and local
response normalization unnecessary.
"""
import math

from keras import layers

# (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool projection): table 1 of the paper
MODULES = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64), "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64), "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128), "5b": (384, 192, 384, 48, 128, 128),
}
FULL_GROUPS = (("3a", "3b"), ("4a", "4b", "4c", "4d", "4e"), ("5a", "5b"))
SMALL_GROUPS = (("3a",), ("4a",), ("5a",))
SMALL_INPUT = 64  # px: below this, one module per group
STAGE3_SIZE = 28  # the feature map size the paper's stem gives inception 3a at 224 px


def conv(x, filters: int, size: int, strides: int = 1, name: str | None = None):
    x = layers.Conv2D(filters, size, strides=strides, padding="same", use_bias=False, name=name)(x)
    x = layers.BatchNormalization()(x)
    return layers.Activation("relu")(x)


def inception(x, name: str):
    """The four parallel branches of an inception module, concatenated on channels."""
    one, three_reduce, three, five_reduce, five, pool_projection = MODULES[name]
    branches = [
        conv(x, one, 1),
        conv(conv(x, three_reduce, 1), three, 3),
        conv(conv(x, five_reduce, 1), five, 5),
        conv(layers.MaxPooling2D(3, strides=1, padding="same")(x), pool_projection, 1),
    ]
    return layers.Concatenate(name=f"inception_{name}")(branches)


def stem_downsamplings(size: int) -> int:
    """How many times the stem halves the input: 3 at 224 px (to 28), none at 32 px and below."""
    return max(0, min(3, round(math.log2(max(size, 1) / STAGE3_SIZE))))


def stem(x, downsamplings: int):
    if downsamplings >= 1:
        x = conv(x, 64, 7, strides=2)
    else:
        x = conv(x, 64, 3)
    if downsamplings >= 2:
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    x = conv(conv(x, 64, 1), 192, 3)
    if downsamplings >= 3:
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    return x


def googlenet(inputs, n_classes: int):
    size = min(inputs.shape[1:3])
    x = stem(inputs, stem_downsamplings(size))
    groups = SMALL_GROUPS if size < SMALL_INPUT else FULL_GROUPS
    for i, group in enumerate(groups):
        if i and min(x.shape[1:3]) > 4:  # pool between groups while the map is large enough to halve
            x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        for name in group:
            x = inception(x, name)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.4)(x)
    return layers.Dense(n_classes, name="logits")(x)
