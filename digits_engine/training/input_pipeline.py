"""tf.data pipelines over a dataset's LMDB records.

Indices are batched and read in one Python call per batch (a short LMDB read
transaction), then parsed and decoded in the graph, in parallel. A split that
fits in memory is decoded once and cached; a larger one is read in a shuffled
order straight from LMDB each epoch.

Training batches can then be cropped at random places and augmented
(augmentation.py) in one numpy call per batch, run in order so that a seed
gives the same batches; validation batches are centre-cropped. Without crop or
augmentation, batches go straight from the decoder to the model.
"""
import math

import numpy as np
import tensorflow as tf

from .. import augmentation, lmdb_store
from . import detection_batches

READ_BATCH = 256
CACHE_LIMIT_BYTES = 2 << 30
FEATURES = {
    "classification": {"image/encoded": tf.io.FixedLenFeature([], tf.string),
                       "label": tf.io.FixedLenFeature([], tf.int64)},
    "segmentation": {"image/encoded": tf.io.FixedLenFeature([], tf.string),
                     "label/encoded": tf.io.FixedLenFeature([], tf.string)},
    "detection": detection_batches.FEATURES,
}


def _reader(db_path):
    def read(indices: np.ndarray) -> np.ndarray:
        return np.array(lmdb_store.read_indices(db_path, indices), dtype=object)
    return read


def _decoder(image_shape, encoding: str, task: str):
    height, width, channels = image_shape

    def decode(example):
        if encoding == "none":
            image = tf.reshape(tf.io.decode_raw(example["image/encoded"], tf.uint8), image_shape)
        else:
            image = tf.io.decode_image(example["image/encoded"], channels=channels, expand_animations=False)
            image = tf.ensure_shape(image, [height, width, channels])
        if task == "segmentation":  # the label is a PNG mask of class ids
            return image, tf.ensure_shape(tf.io.decode_png(example["label/encoded"], channels=1), [height, width, 1])
        if task == "detection":
            return image, detection_batches.padded_boxes(example)
        return image, example["label"]
    return decode


def make_dataset(db_path, image_shape, encoding: str, batch_size: int, shuffle: bool, seed=None,
                 task: str = "classification", crop: int | None = None,
                 train_changes: dict | None = None, cache: bool = True, n_classes: int = 0) -> tf.data.Dataset:
    """Batches of (float32 HxWxC pixels in 0..255, label): an int64 class, an HxWx1 mask of class ids,
    or a detection's boxes and targets for `n_classes` classes (detection_batches).

    crop: the network's input is crop x crop: random crops when `train_changes` is given (the training
    split), centre crops otherwise. train_changes: the job's params, for its random crop and augmentation.
    cache: decode a split that fits in memory once, for the later epochs (off for a single pass)."""
    count = lmdb_store.count(db_path)
    cache = cache and count * int(np.prod(image_shape)) <= CACHE_LIMIT_BYTES  # uint8 pixels
    indices = tf.data.Dataset.range(count)
    if shuffle and not cache:
        indices = indices.shuffle(count, seed=seed, reshuffle_each_iteration=True)
    read = _reader(str(db_path))
    records = indices.batch(READ_BATCH).map(
        lambda idx: tf.ensure_shape(tf.numpy_function(read, [idx], tf.string, stateful=False), [None]),
        num_parallel_calls=tf.data.AUTOTUNE)
    samples = records.map(lambda s: tf.io.parse_example(s, FEATURES[task])).unbatch().map(
        _decoder(tuple(image_shape), encoding, task), num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        samples = samples.cache()
        if shuffle:
            samples = samples.shuffle(count, seed=seed, reshuffle_each_iteration=True)
    batches = samples.batch(batch_size)
    if task == "detection":  # crops and other augmentations are refused for detection by the form
        flips = (train_changes or {}).get("aug_flip") or "none"
        batches = batches.map(detection_batches.with_targets(n_classes, image_shape, flips, seed))
        batches = batches.map(lambda x, y: (tf.cast(x, tf.float32), y))
    elif train_changes is not None and (crop or augmentation.enabled(train_changes)):
        batches = batches.map(_random_changes(train_changes, crop, seed, task, image_shape))  # in order: reproducible
    elif crop:
        batches = batches.map(_centre_crop(crop, image_shape, task))
    if task != "detection":
        batches = batches.map(lambda x, y: (tf.cast(x, tf.float32), tf.cast(y, tf.int32)))
    # unbatch() hides the length; telling it lets Keras size epochs and progress
    batches = batches.apply(tf.data.experimental.assert_cardinality(math.ceil(count / batch_size)))
    return batches.prefetch(tf.data.AUTOTUNE)


def _random_changes(params: dict, crop: int | None, seed, task: str, image_shape):
    """A batch map: random crop, then augmentation, in numpy (masks of segmentation moved alike)."""
    rng = np.random.default_rng(seed)
    height, width, channels = (crop, crop, image_shape[2]) if crop else image_shape

    def change(images: np.ndarray, labels: np.ndarray):
        masks = labels if task == "segmentation" else None
        if crop:
            images, masks = augmentation.random_crop(images, crop, rng, masks)
        images, masks = augmentation.augment_with_masks(images, masks, params, rng)
        return np.ascontiguousarray(images), np.ascontiguousarray(labels if masks is None else masks)

    def apply(images, labels):
        images, labels = tf.numpy_function(change, [images, labels], [tf.uint8, labels.dtype], stateful=True)
        label_shape = [None, height, width, 1] if task == "segmentation" else [None]
        return tf.ensure_shape(images, [None, height, width, channels]), tf.ensure_shape(labels, label_shape)
    return apply


def _centre_crop(crop: int, image_shape, task: str):
    top, left = augmentation.centre_crop_box(image_shape[0], image_shape[1], crop)

    def apply(images, labels):
        if task == "segmentation":
            labels = labels[:, top:top + crop, left:left + crop]
        return images[:, top:top + crop, left:left + crop], labels
    return apply
