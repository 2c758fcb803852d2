"""The layers at the front of every model that turn uint8-range pixels into
what the network trains on. They are built-in Keras layers holding constants,
part of the saved model, so inference needs nothing but the snapshot (and
keras.models.load_model needs no custom_objects).

Mean subtraction, as DIGITS offered it:
- "pixel" (default): subtract the training split's per-channel mean, divide by its per-channel std;
- "image": subtract the training split's mean image (mean.npy), divide by the per-channel std;
- "none": only scale 0..255 to 0..1.
"""
from pathlib import Path

import numpy as np
from keras import layers

from ..augmentation import centre_crop_box
from ..errors import DigitsError

MEAN_MODES = ("image", "pixel", "none")


def with_mean_image(params: dict, stats: dict, dataset_dir: Path) -> dict:
    """`stats` with the dataset's mean image (H x W x C) under "mean_image" when the job subtracts it."""
    if (params.get("mean_subtraction") or "pixel") != "image":
        return stats
    path = Path(dataset_dir) / "mean.npy"
    if not path.exists():
        raise DigitsError(f"The dataset has no mean image ({path.name}); choose the pixel mean subtraction, "
                          "or rebuild the dataset.")
    return {**stats, "mean_image": np.load(path)}


def preprocessor(params: dict, stats: dict):
    """`preprocess(inputs) -> tensor` for the job's parameters and its dataset's stats.json
    (plus "mean_image" from with_mean_image for the image mode)."""
    mode = params.get("mean_subtraction") or "pixel"
    std = np.maximum(np.asarray(stats["pixel_std"], np.float32), 1.0)

    def preprocess(inputs):
        if mode == "none":
            return layers.Rescaling(1.0 / 255.0, name="normalize")(inputs)
        if mode == "image":
            mean = _cropped(np.asarray(stats["mean_image"], np.float32), params.get("crop_size"))
            variance = np.broadcast_to(std ** 2, mean.shape)
            return layers.Normalization(mean=mean, variance=variance, axis=(-3, -2, -1), name="normalize")(inputs)
        return layers.Normalization(mean=list(stats["pixel_mean"]), variance=list(std ** 2), name="normalize")(inputs)
    return preprocess


def _cropped(mean: np.ndarray, crop: int | None) -> np.ndarray:
    """The mean image's centre crop when the network sees crops: exact for validation and inference
    (centre crops); for random training crops it is the usual approximation."""
    if mean.ndim == 2:
        mean = mean[:, :, None]
    if not crop:
        return mean
    top, left = centre_crop_box(mean.shape[0], mean.shape[1], crop)
    return mean[top:top + crop, left:left + crop]
