"""Detection records in tf.data: their box features parsed and padded to
MAX_BOXES, training batches flipped (image and boxes together), and every
batch given its CenterNet targets.

A batch is (float32 BxHxWxC in 0..255, {"boxes": B x MAX_BOXES x 4, "classes":
int32 B x MAX_BOXES (-1 = padding), "heatmaps": B x H/4 x W/4 x (K + 5)}): the
boxes and classes are what mAP is measured against, "heatmaps" what the loss
reads (detection_boxes' layout). The targets are drawn in numpy, one call per
batch, after the flip so that they follow the moved boxes.
"""
import numpy as np
import tensorflow as tf

from ..detection_boxes import MAX_BOXES, TARGET_EXTRA, encode_batch

FEATURES = {"image/encoded": tf.io.FixedLenFeature([], tf.string),
            "boxes": tf.io.RaggedFeature(tf.float32),
            "boxes/classes": tf.io.RaggedFeature(tf.int64)}
STRIDE = 4


def padded_boxes(example) -> dict:
    """One parsed record's boxes as MAX_BOXES x 4 float32 and MAX_BOXES int32 classes (-1 = none)."""
    boxes = tf.reshape(tf.cast(example["boxes"], tf.float32), [-1, 4])[:MAX_BOXES]
    classes = tf.cast(example["boxes/classes"], tf.int32)[:MAX_BOXES]
    extra = MAX_BOXES - tf.shape(classes)[0]
    return {"boxes": tf.ensure_shape(tf.pad(boxes, [[0, extra], [0, 0]]), [MAX_BOXES, 4]),
            "classes": tf.ensure_shape(tf.pad(classes, [[0, extra]], constant_values=-1), [MAX_BOXES])}


def flip(images: np.ndarray, boxes: np.ndarray, classes: np.ndarray, how: str, rng: np.random.Generator):
    """Each image flipped with probability 1/2 per asked direction ("horizontal", "vertical", "both"),
    its real boxes (class >= 0) mirrored with it."""
    images, boxes = images.copy(), boxes.copy()
    height, width = images.shape[1:3]
    for axis, wanted, (low, high), size in ((2, ("horizontal", "both"), (0, 2), width),
                                             (1, ("vertical", "both"), (1, 3), height)):
        if how not in wanted:
            continue
        for i in np.flatnonzero(rng.random(len(images)) < 0.5):
            images[i] = np.flip(images[i], axis=axis - 1)
            real = classes[i] >= 0
            boxes[i, real, low], boxes[i, real, high] = size - boxes[i, real, high], size - boxes[i, real, low]
    return images, boxes


def with_targets(n_classes: int, image_shape, flips: str = "none", seed=None):
    """A batch map adding the "heatmaps" targets, after a random flip when `flips` asks for one."""
    rng = np.random.default_rng(seed)
    height, width = image_shape[:2]

    def change(images, boxes, classes):
        if flips != "none":
            images, boxes = flip(images, boxes, classes, flips, rng)
        return images, boxes, encode_batch(boxes, classes, n_classes, (height, width), STRIDE)

    def apply(images, truth):
        images, boxes, heatmaps = tf.numpy_function(change, [images, truth["boxes"], truth["classes"]],
                                                    [images.dtype, tf.float32, tf.float32], stateful=flips != "none")
        out = (height // STRIDE, width // STRIDE, n_classes + TARGET_EXTRA)
        return (tf.ensure_shape(images, [None, *image_shape]),
                {"boxes": tf.ensure_shape(boxes, [None, MAX_BOXES, 4]), "classes": truth["classes"],
                 "heatmaps": tf.ensure_shape(heatmaps, [None, *out])})
    return apply
