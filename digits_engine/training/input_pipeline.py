"""tf.data pipelines over a dataset's LMDB records.

Indices are batched and read in one Python call per batch (a short LMDB read
transaction), then parsed and decoded in the graph, in parallel. A split that
fits in memory is decoded once and cached; a larger one is read in a shuffled
order straight from LMDB each epoch.
"""
import math

import numpy as np
import tensorflow as tf

from .. import lmdb_store

READ_BATCH = 256
CACHE_LIMIT_BYTES = 2 << 30
FEATURES = {
    "classification": {"image/encoded": tf.io.FixedLenFeature([], tf.string),
                       "label": tf.io.FixedLenFeature([], tf.int64)},
    "segmentation": {"image/encoded": tf.io.FixedLenFeature([], tf.string),
                     "label/encoded": tf.io.FixedLenFeature([], tf.string)},
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
        return image, example["label"]
    return decode


def make_dataset(db_path, image_shape, encoding: str, batch_size: int, shuffle: bool, seed=None,
                 task: str = "classification") -> tf.data.Dataset:
    """Batches of (float32 HxWxC pixels in 0..255, label): an int64 class, or an HxWx1 mask of class ids."""
    count = lmdb_store.count(db_path)
    cache = count * int(np.prod(image_shape)) <= CACHE_LIMIT_BYTES  # uint8 pixels
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
    batches = samples.batch(batch_size).map(lambda x, y: (tf.cast(x, tf.float32), tf.cast(y, tf.int32)))
    # unbatch() hides the length; telling it lets Keras size epochs and progress
    batches = batches.apply(tf.data.experimental.assert_cardinality(math.ceil(count / batch_size)))
    return batches.prefetch(tf.data.AUTOTUNE)
