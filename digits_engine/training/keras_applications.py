"""ResNet-50 and MobileNetV2 from keras.applications: the application without its
top, global average pooling, and a Dense layer of logits.

Images smaller than the applications accept (32 px a side) are upsampled by a
Resizing layer inside the model. With pretrained weights the input follows the
ImageNet convention the weights were trained with (ResNet-50: BGR minus the
ImageNet mean; MobileNetV2: pixels scaled to -1..1), grayscale tiled to three
channels, in one fixed layer saved with the model.
"""
import keras
import numpy as np
from keras import layers

from ..errors import DigitsError
from ..pretrained_weights import BASE_URLS, TITLES, file_name, model_input_size

APPLICATIONS = {"resnet50": keras.applications.ResNet50, "mobilenetv2": keras.applications.MobileNetV2}
IMAGENET_MEAN_BGR = (103.939, 116.779, 123.68)  # keras.applications.imagenet_utils, mode "caffe"


def imagenet_transform(network: str, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """(kernel C x 3, bias 3) mapping C-channel uint8-range pixels to the 3 channels `network`'s
    ImageNet weights expect: BGR minus the mean (ResNet-50, "caffe"), or RGB / 127.5 - 1 (MobileNetV2, "tf")."""
    if channels not in (1, 3):
        raise DigitsError(f"ImageNet weights need colour or grayscale images; these have {channels} channels.")
    kernel = np.zeros((channels, 3), np.float32)
    for out in range(3):
        if channels == 1:
            source = 0  # grayscale: the same value in all three
        else:
            source = 2 - out if network == "resnet50" else out  # RGB -> BGR for ResNet-50
        kernel[source, out] = 1.0 if network == "resnet50" else 1 / 127.5
    bias = -np.asarray(IMAGENET_MEAN_BGR, np.float32) if network == "resnet50" else -np.ones(3, np.float32)
    return kernel, bias


def imagenet_preprocessor(network: str, channels: int):
    """`preprocess(inputs)` for pretrained weights: a fixed (untrained) per-pixel linear layer."""
    kernel, bias = imagenet_transform(network, channels)

    def preprocess(inputs):
        layer = layers.Dense(3, trainable=False, name="imagenet_input")
        outputs = layer(inputs)
        layer.set_weights([kernel, bias])
        return outputs
    return preprocess


def application(network: str):
    """The body for networks.build: `body(x, n_classes, weights=None)`."""
    def body(x, n_classes: int, weights=None):
        height, width = x.shape[1:3]
        size = model_input_size(height, width)
        if size != (height, width):
            x = layers.Resizing(*size, interpolation="bilinear", name="upsample")(x)
        base = _base(network, (*size, x.shape[-1]), weights)
        return layers.Dense(n_classes, name="logits")(base(x))
    return body


def _base(network: str, shape: tuple, weights) -> keras.Model:
    title = TITLES[network]
    try:
        return APPLICATIONS[network](include_top=False, weights=weights, input_shape=shape, pooling="avg")
    except Exception as exc:  # noqa: BLE001 - a download or a file that does not fit: say which
        if weights == "imagenet":
            name = file_name(network, *shape[:2])
            raise DigitsError(f"Could not get the ImageNet weights of {title} ({BASE_URLS[network]}{name}): {exc}. "
                              f"Download the file where you can, give it as the weights file, and train again; "
                              f"or train from scratch.") from exc
        if weights:
            raise DigitsError(f"The weights file {weights} does not fit {title} without its top "
                              f"(include_top=False): {exc}") from exc
        raise
