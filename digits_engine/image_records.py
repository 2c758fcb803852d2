"""One image sample as a tf.train.Example record, and back.

Features: image/encoded (PNG, JPEG or raw HWC uint8 bytes), image/format
(b"png" | b"jpg" | b"raw"), image/shape [H, W, C], and either label [class
index] (classification) or label/encoded (a PNG of the HxW class-id mask) with
label/shape [H, W, 1] (segmentation), or boxes [N*4 floats: left, top, right,
bottom in pixels of the stored image] and boxes/classes [N class ids]
(detection; N may be 0, a background-only image).
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


def make_record(pixels: np.ndarray, label, encoding: str) -> bytes:
    """A record for an image and its label: a class index, an HxWx1 uint8 mask of class ids,
    or a dict {"boxes": Nx4, "classes": N} of a detection sample."""
    features = {
        "image/encoded": encode_pixels(pixels, encoding),
        "image/format": FORMATS[encoding],
        "image/shape": list(pixels.shape),
    }
    if isinstance(label, dict):
        boxes = np.asarray(label["boxes"], np.float32).reshape(-1).tolist()
        features["boxes/classes"] = [int(c) for c in label["classes"]]
        if boxes:  # an empty list would encode as int64; a missing feature reads as no boxes
            features["boxes"] = boxes
    elif isinstance(label, np.ndarray):
        mask = label.astype(np.uint8).reshape(label.shape[0], label.shape[1], 1)
        features.update({"label/encoded": encode_pixels(mask, "png"), "label/shape": list(mask.shape)})
    else:
        features["label"] = [int(label)]
    return tf_example.encode(features)


def _decode(data: bytes, fmt: bytes, shape) -> np.ndarray:
    if fmt == b"raw":
        return np.frombuffer(data, dtype=np.uint8).reshape(shape)
    return np.asarray(Image.open(io.BytesIO(data))).reshape(shape)


def read_record(record: bytes):
    """Record -> (HxWxC uint8 pixels, label: an int, an HxWx1 uint8 mask, or for detection
    {"boxes": float32 Nx4, "classes": int64 N})."""
    features = tf_example.decode(record)
    pixels = _decode(features["image/encoded"], features["image/format"], tuple(features["image/shape"]))
    if "label/encoded" in features:
        return pixels, _decode(features["label/encoded"], b"png", tuple(features["label/shape"]))
    if "boxes/classes" in features:
        return pixels, {"boxes": np.asarray(features.get("boxes", []), np.float32).reshape(-1, 4),
                        "classes": np.asarray(features.get("boxes/classes", []), np.int64)}
    return pixels, features["label"][0]
