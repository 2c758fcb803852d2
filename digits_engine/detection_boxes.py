"""Boxes as training data for CenterNet: the fixed-size padding of an image's
boxes, and the target maps the network learns (Objects as Points, Zhou et al. 2019).

    boxes, classes = pad_boxes(record_boxes, record_classes)          # MAX_BOXES x 4, MAX_BOXES (-1 = none)
    targets = encode_batch(boxes[None], classes[None], n_classes=3, image_size=(64, 64))

The targets of an image are one float32 map, (H/stride) x (W/stride) x (K + 5),
laid out like the network's output plus a mask:
- channels 0..K-1: per-class heatmaps, a Gaussian around each object's centre
  cell (peak 1, the CenterNet radius for the box size), overlapping ones merged by max;
- K, K+1: the box width and height in output cells, at the centre cell;
- K+2, K+3: the centre's sub-cell offset (dx, dy) in [0, 1), at the centre cell;
- K+4: the mask, 1 at each object's centre cell.
The centre of a box (l, t, r, b) in input pixels is ((l + r) / 2, (t + b) / 2);
divided by the stride it falls in cell (floor, floor) at offset (frac, frac).
detection_decode inverts exactly this.

Numpy rather than TF ops: drawing one Gaussian per box, each with its own
radius and window, is a short loop here and awkward as graph ops; the input
pipeline calls encode_batch per batch through tf.numpy_function (at most
MAX_BOXES boxes per image, so it is cheap next to the network).
"""
import numpy as np

MAX_BOXES = 100  # boxes kept per image; the records' extra boxes are dropped
TARGET_EXTRA = 5  # size (2), offset (2), mask (1) after the K heatmaps


def pad_boxes(boxes, classes, max_boxes: int = MAX_BOXES) -> tuple[np.ndarray, np.ndarray]:
    """An image's N boxes as (max_boxes x 4 float32, max_boxes int32) with class -1 in the padding rows."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)[:max_boxes]
    classes = np.asarray(classes, np.int32).reshape(-1)[:max_boxes]
    padded = np.zeros((max_boxes, 4), np.float32)
    padded_classes = np.full(max_boxes, -1, np.int32)
    padded[:len(boxes)] = boxes
    padded_classes[:len(classes)] = classes
    return padded, padded_classes


def gaussian_radius(height: float, width: float, min_overlap: float = 0.7) -> float:
    """CenterNet's radius: how far a corner may move with the box still overlapping by min_overlap.

    The three cases and their `(b + sq) / 2` are CenterNet's own code (not the textbook root with
    2a), kept as is so that the heatmaps spread as in the paper's training."""
    b1 = height + width
    c1 = width * height * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + np.sqrt(b1 ** 2 - 4 * c1)) / 2
    b2 = 2 * (height + width)
    c2 = (1 - min_overlap) * width * height
    r2 = (b2 + np.sqrt(b2 ** 2 - 16 * c2)) / 2
    a3 = 4 * min_overlap
    b3 = -2 * min_overlap * (height + width)
    c3 = (min_overlap - 1) * width * height
    r3 = (b3 + np.sqrt(b3 ** 2 - 4 * a3 * c3)) / 2
    return float(min(r1, r2, r3))


def draw_gaussian(heatmap: np.ndarray, x: int, y: int, radius: int) -> None:
    """Max a (2r+1)^2 Gaussian (sigma = diameter / 6, peak 1) into heatmap (h x w) at cell (x, y), clipped."""
    sigma = (2 * radius + 1) / 6
    span = np.arange(-radius, radius + 1)
    kernel = np.exp(-(span[:, None] ** 2 + span[None, :] ** 2) / (2 * sigma * sigma))
    h, w = heatmap.shape
    top, bottom = min(y, radius), min(h - y, radius + 1)
    left, right = min(x, radius), min(w - x, radius + 1)
    window = heatmap[y - top:y + bottom, x - left:x + right]
    np.maximum(window, kernel[radius - top:radius + bottom, radius - left:radius + right], out=window)


def encode_image(boxes, classes, n_classes: int, out_size: tuple[int, int], stride: int = 4) -> np.ndarray:
    """The (h x w x (K + 5)) targets of one image's boxes (input pixels; class -1 rows are padding)."""
    h, w = out_size
    targets = np.zeros((h, w, n_classes + TARGET_EXTRA), np.float32)
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    classes = np.asarray(classes, np.int64).reshape(-1)
    for box, c in zip(boxes, classes):
        if c < 0:
            continue
        if c >= n_classes:
            raise ValueError(f"box class {c} is outside 0..{n_classes - 1}: the dataset has more classes "
                             f"than the network was built for")
        _encode_box(targets, box / stride, int(c), n_classes)
    return targets


def _encode_box(targets: np.ndarray, box: np.ndarray, c: int, n_classes: int) -> None:
    """Draw one box (in output cells) into targets; empty boxes and centres outside the map are skipped."""
    width, height = box[2] - box[0], box[3] - box[1]
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    x, y = int(np.floor(cx)), int(np.floor(cy))
    h, w = targets.shape[:2]
    if width <= 0 or height <= 0 or not (0 <= x < w and 0 <= y < h):
        return
    radius = max(0, int(gaussian_radius(np.ceil(height), np.ceil(width))))
    draw_gaussian(targets[:, :, c], x, y, radius)
    targets[y, x, n_classes:] = (width, height, cx - x, cy - y, 1.0)


def encode_batch(boxes, classes, n_classes: int, image_size: tuple[int, int], stride: int = 4) -> np.ndarray:
    """B x H/stride x W/stride x (K + 5) float32 targets of padded boxes (B x MAX x 4) and classes (B x MAX)."""
    height, width = image_size
    out_size = (height // stride, width // stride)
    if not len(boxes):
        return np.zeros((0, *out_size, n_classes + TARGET_EXTRA), np.float32)
    return np.stack([encode_image(b, c, n_classes, out_size, stride) for b, c in zip(boxes, classes)])
