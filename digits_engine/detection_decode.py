"""Boxes from a CenterNet output: the peaks of the class heatmaps, with the size
and offset read at each peak, in the pixels of the network's input.

    detections = decode(outputs)   # outputs: B x h x w x (K + 4), the raw network output
    detections[0]["boxes"]         # M x 4 (left, top, right, bottom), best score first

Channels: K heatmap logits, then width and height in output cells, then the
centre's sub-cell offset (dx, dy) - the layout detection_boxes encodes. A peak
is a cell whose sigmoid score is the maximum of its 3x3 neighbourhood (this
replaces non-maximum suppression); the best `max_detections` peaks over all
classes with score >= `score_threshold` are kept. Pure numpy, no TensorFlow:
the UI, inference and exported models use it; model.json records DECODING as
"box_decoding" so an export says how to read its output.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

DECODING = {"type": "centernet", "stride": 4, "max_detections": 100}
BOX_CHANNELS = 4  # width, height, dx, dy after the K heatmaps


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """The logistic function, written with tanh so that large logits do not overflow."""
    return 0.5 * (np.tanh(0.5 * logits) + 1.0)


def max_pool_3x3(heat: np.ndarray) -> np.ndarray:
    """Per channel of an h x w x K map, the maximum over each cell's 3x3 neighbourhood (stride 1, same size)."""
    padded = np.pad(heat, ((1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
    return sliding_window_view(padded, (3, 3), axis=(0, 1)).max(axis=(-2, -1))


def decode(outputs, stride: int = 4, max_detections: int = 100, score_threshold: float = 0.01) -> list[dict]:
    """Per image, {"boxes": M x 4 float32 (l, t, r, b in input pixels), "scores": M, "classes": M int64},
    sorted by decreasing score."""
    outputs = np.asarray(outputs, np.float32)
    if outputs.ndim != 4 or outputs.shape[-1] <= BOX_CHANNELS:
        raise ValueError(f"a CenterNet output is B x h x w x (classes + {BOX_CHANNELS}), got shape "
                         f"{outputs.shape}: is this a detection model?")
    return [decode_image(image, stride, max_detections, score_threshold) for image in outputs]


def decode_image(output: np.ndarray, stride: int, max_detections: int, score_threshold: float) -> dict:
    """The detections of one h x w x (K + 4) output."""
    n_classes = output.shape[-1] - BOX_CHANNELS
    heat = sigmoid(output[..., :n_classes])
    peaks = np.where(heat == max_pool_3x3(heat), heat, 0.0).reshape(-1)
    best = _top(peaks, max_detections)
    best = best[peaks[best] >= score_threshold]
    ys, xs, classes = np.unravel_index(best, heat.shape)
    width, height, dx, dy = np.moveaxis(output[ys, xs, n_classes:], -1, 0)
    cx, cy = xs + dx, ys + dy
    width, height = np.maximum(width, 0), np.maximum(height, 0)
    boxes = np.stack([cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2], axis=-1) * stride
    return {"boxes": boxes.astype(np.float32).reshape(-1, 4), "scores": peaks[best].astype(np.float32),
            "classes": classes.astype(np.int64)}


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest scores, largest first."""
    if k < len(scores):
        candidates = np.argpartition(-scores, k)[:k]
    else:
        candidates = np.arange(len(scores))
    return candidates[np.argsort(-scores[candidates], kind="stable")]
