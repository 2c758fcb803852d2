"""The layers at the front of every model that turn uint8-range pixels into
what the network trains on. They are part of the saved model, so inference
needs nothing but the snapshot.
"""
import numpy as np
from keras import layers


def preprocessor(params: dict, stats: dict):
    """`preprocess(inputs) -> tensor` for the job's parameters and its dataset's stats.json."""
    def preprocess(inputs):
        std = np.maximum(np.asarray(stats["pixel_std"], np.float32), 1.0)
        return layers.Normalization(mean=list(stats["pixel_mean"]), variance=list(std ** 2), name="normalize")(inputs)
    return preprocess
