"""Where a pretrained network's ImageNet weights come from, and whether they can be had:
a weights file the person points to, Keras' cache, or a download from
storage.googleapis.com. Imports no TensorFlow: the model form uses it.
"""
import os
import socket
import time
from pathlib import Path

from . import config, server_paths

PRETRAINABLE = ("resnet50", "mobilenetv2")
TITLES = {"resnet50": "ResNet-50", "mobilenetv2": "MobileNetV2"}
MIN_INPUT = 32  # px: the smallest side keras.applications accepts; smaller images are upsampled to it
WEIGHTS_HOST = "storage.googleapis.com"
PROBE_TIMEOUT = 2.0  # seconds
PROBE_FRESH = 60.0  # seconds a probe's answer is reused (a sweep checks one form per combination)
_probed: dict = {}
BASE_URLS = {"resnet50": "https://storage.googleapis.com/tensorflow/keras-applications/resnet/",
             "mobilenetv2": "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/"}
MOBILENET_SIZES = (96, 128, 160, 192, 224)  # Keras has MobileNetV2 weights for these square sizes, else uses 224's


def model_input_size(height: int, width: int) -> tuple[int, int]:
    """The size the application sees: the image's, upsampled to at least MIN_INPUT a side."""
    return max(height, MIN_INPUT), max(width, MIN_INPUT)


def file_name(network: str, height: int = 224, width: int = 224) -> str:
    """The file keras.applications downloads for `network` without its top, for images of this size."""
    if network == "resnet50":
        return "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    rows, cols = model_input_size(height, width)
    size = rows if rows == cols and rows in MOBILENET_SIZES else 224
    return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{size}_no_top.h5"


def cache_dirs() -> list[Path]:
    """Where keras.utils.get_file keeps application weights: $KERAS_HOME/models or ~/.keras/models,
    and /tmp/.keras/models, Keras' fallback when that home is not writable."""
    home = Path(os.environ.get("KERAS_HOME") or os.path.expanduser(os.path.join("~", ".keras")))
    fallback = Path("/tmp/.keras")
    return [home / "models"] + ([fallback / "models"] if home != fallback and not os.access(home, os.W_OK) else [])


def cached(network: str, height: int = 224, width: int = 224) -> Path | None:
    """The cached weights file for `network`, if Keras has it already."""
    name = file_name(network, height, width)
    return next((d / name for d in cache_dirs() if (d / name).is_file()), None)


def can_download() -> bool:
    """Whether this machine reaches the weights' host (never tried when DIGITS_OFFLINE=1)."""
    if config.offline():
        return False
    if time.monotonic() - _probed.get("at", -PROBE_FRESH) < PROBE_FRESH:
        return _probed["reachable"]
    try:
        with socket.create_connection((WEIGHTS_HOST, 443), timeout=PROBE_TIMEOUT):
            reachable = True
    except OSError:
        reachable = False
    _probed.update(at=time.monotonic(), reachable=reachable)
    return reachable


def unavailable(network: str, height: int = 224, width: int = 224) -> str | None:
    """Why the ImageNet weights of `network` cannot be had without a weights file, or None when they can."""
    if cached(network, height, width) or can_download():
        return None
    name = file_name(network, height, width)
    why = "DIGITS_OFFLINE=1 is set" if config.offline() else f"this server cannot reach {WEIGHTS_HOST}"
    return (f"The ImageNet weights of {TITLES[network]} are not in Keras' cache ({cache_dirs()[0]}) and {why}. "
            f"Download {BASE_URLS[network]}{name} on a machine that can, copy it to this server, and point "
            f"\"Weights file\" to it (named exactly {name}), or untick this to train from scratch.")


def file_problem(path: str) -> str | None:
    """Why `path` cannot be read as a weights file, or None."""
    if found := server_paths.problem(path, "file"):
        return found
    file = Path(path)
    if file.suffix.lower() not in (".h5", ".hdf5"):
        return f"{file.name} is not a Keras weights file: give an .h5 (or .weights.h5) file."
    return None


def check(network: str | None, pretrained: bool, weights_file: str | None, image: dict | None) -> dict[str, str]:
    """{field: message} for the pretrained options; `image` ({height, width, channels}) when known."""
    if weights_file and not pretrained:
        return {"weights_file": "A weights file is used only when starting from pretrained weights: tick "
                                "\"Start from ImageNet weights\", or clear the file."}
    if not pretrained:
        return {}
    if network not in PRETRAINABLE:
        return {"pretrained": f"Pretrained weights exist only for {' and '.join(TITLES.values())}; pick one of "
                              f"them as the network, or untick this."}
    if image and image.get("channels") not in (1, 3):
        return {"pretrained": f"ImageNet weights need colour or grayscale images; this dataset's have "
                              f"{image.get('channels')} channels."}
    if weights_file:
        problem = file_problem(weights_file)
        return {"weights_file": problem} if problem else {}
    size = (image["height"], image["width"]) if image else (224, 224)
    problem = unavailable(network, *size)
    return {"pretrained": problem} if problem else {}
