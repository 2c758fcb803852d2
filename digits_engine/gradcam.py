"""Grad-CAM: where in the image a network found the evidence for a class
(Selvaraju et al., 2017), and the heatmap laid over the image.

`gradcam` runs the model (TensorFlow, imported inside the function): the
gradients of the class score with respect to the last convolution-like
(4-D) activation before the head, averaged over its height and width, weight
that activation's channels; their sum, kept where positive, is the map, scaled
to 0..1 and upsampled to the input's size. `overlay` needs only numpy and PIL,
so the UI process can colour a heatmap the engine saved.

    heatmap = gradcam(model, image)           # H x W x C pixels as the network sees them -> H x W in 0..1
    picture = overlay(image.astype("uint8"), heatmap)
"""
import numpy as np
from PIL import Image

from .errors import DigitsError
from .layer_stats import trace

# The "jet" colour scale at five points: blue (0), cyan, green-yellow, orange, red (1).
_COLOURS = np.array([[0, 0, 143], [0, 160, 255], [130, 255, 120], [255, 160, 0], [160, 0, 0]], np.float64)


def target_layer(records: list) -> tuple[str, object]:
    """(name, output) of the activation Grad-CAM explains: the last 4-D output whose height x width is
    more than one pixel (the last 4-D output when none is), never the model's own output."""
    candidates = [(name, out) for name, _, out in records[:-1] if len(getattr(out, "shape", ())) == 4]
    if not candidates:
        raise DigitsError("Grad-CAM needs a network with convolution-like (4-D) layers; this one has none "
                          "before its output.")
    spatial = [(name, out) for name, out in candidates if out.shape[1] * out.shape[2] > 1]
    return (spatial or candidates)[-1]


def _class_scores(outputs):
    """N x K scores per class: the logits of a classifier, their mean over the pixels for a per-pixel output."""
    import tensorflow as tf
    return outputs if len(outputs.shape) == 2 else tf.reduce_mean(outputs, axis=list(range(1, len(outputs.shape) - 1)))


def gradcam(model, image_batch, class_index: int | None = None) -> np.ndarray:
    """The Grad-CAM heatmap of `class_index` (default: each image's top class), in 0..1.

    Args:
        model: a Keras model whose output is a score (logit) per class.
        image_batch: N x H x W x C images, or one H x W x C image, as the model takes them.
        class_index: the class to explain for every image. Defaults to None: the predicted class.

    Returns:
        N x H x W float32 heatmaps (H x W for one H x W x C image): 1 where the evidence is strongest,
        0 where there is none.
    """
    import tensorflow as tf

    images = np.asarray(image_batch, np.float32)
    single = images.ndim == 3
    images = tf.convert_to_tensor(images[None] if single else images)
    with tf.GradientTape() as tape:
        tape.watch(images)  # records every operation, frozen layers included
        records = trace(model, images)
        scores = _class_scores(records[-1][2])
        chosen = tf.argmax(scores, axis=1) if class_index is None else tf.fill([tf.shape(scores)[0]], class_index)
        score = tf.reduce_sum(tf.gather(scores, tf.cast(chosen, tf.int32), axis=1, batch_dims=1))
    _, activation = target_layer(records)
    gradients = tape.gradient(score, activation)
    channel_weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(channel_weights * activation, axis=-1, keepdims=True))
    cam = tf.image.resize(cam, images.shape[1:3], method="bilinear")[..., 0].numpy()
    peaks = cam.reshape(len(cam), -1).max(axis=1).reshape(-1, 1, 1)
    heatmaps = np.divide(cam, peaks, out=np.zeros_like(cam), where=peaks > 0).clip(0, 1).astype(np.float32)
    return heatmaps[0] if single else heatmaps


def colour(heatmap: np.ndarray) -> np.ndarray:
    """H x W x 3 uint8: a 0..1 heatmap on the jet colour scale (blue low, red high)."""
    values = np.clip(np.nan_to_num(np.asarray(heatmap, np.float64)), 0, 1)
    points = np.linspace(0, 1, len(_COLOURS))
    rgb = [np.interp(values, points, _COLOURS[:, c]) for c in range(3)]
    return np.round(np.stack(rgb, axis=-1)).astype(np.uint8)


def overlay(image_uint8: np.ndarray, heatmap: np.ndarray, opacity: float = 0.45) -> np.ndarray:
    """H x W x 3 uint8: the image (H x W, H x W x 1 or H x W x 3) with the coloured heatmap over it.

    A heatmap of another size is resized to the image's. `opacity` is the heatmap's share of each pixel;
    where the heatmap is 0 the image shows through more (its share fades with the heat)."""
    image = np.asarray(image_uint8)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    rgb = np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image[..., :3]
    heat = np.asarray(heatmap, np.float32)
    if heat.shape != rgb.shape[:2]:
        heat = np.asarray(Image.fromarray(heat).resize((rgb.shape[1], rgb.shape[0]), Image.BILINEAR))
    share = opacity * (0.4 + 0.6 * np.clip(heat, 0, 1))[..., None]
    mixed = (1 - share) * rgb.astype(np.float64) + share * colour(heat)
    return np.round(mixed).clip(0, 255).astype(np.uint8)
