"""One image sample as a tf.train.Example record, and back.

Features: image/encoded (PNG, JPEG or raw HWC uint8 bytes), image/format
(b"png" | b"jpg" | b"raw"), image/shape [H, W, C], label [class index].
"""
import io

import numpy as np
from PIL import Image

from . import tf_example

FORMATS = {"png": b"png", "jpg": b"jpg", "none": b"raw"}


def encode_pixels(pixels: np.ndarray, encoding: str) -> bytes:
    """HxWxC uint8 -> bytes in the dataset's encoding (png, jpg at quality 90, or none)."""
    if encoding == "none":
        return np.ascontiguousarray(pixels, dtype=np.uint8).tobytes()
    image = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)
    buf = io.BytesIO()
    if encoding == "png":
        image.save(buf, format="PNG", compress_level=1)
    else:
        image.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def make_record(pixels: np.ndarray, label: int, encoding: str) -> bytes:
    return tf_example.encode({
        "image/encoded": encode_pixels(pixels, encoding),
        "image/format": FORMATS[encoding],
        "image/shape": list(pixels.shape),
        "label": [int(label)],
    })


def read_record(record: bytes) -> tuple[np.ndarray, int]:
    """Record -> (HxWxC uint8 pixels, label)."""
    features = tf_example.decode(record)
    shape = tuple(features["image/shape"])
    data = features["image/encoded"]
    if features["image/format"] == b"raw":
        pixels = np.frombuffer(data, dtype=np.uint8).reshape(shape)
    else:
        pixels = np.asarray(Image.open(io.BytesIO(data))).reshape(shape)
    return pixels, features["label"][0]
