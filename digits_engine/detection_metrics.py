"""Object-detection metrics: box IoU, per-class average precision (PASCAL VOC
all-point interpolation) and the mean AP over classes, computed the standard way.

    result = evaluate(predictions, ground_truths, n_classes=3)   # {"mAP": 0.71, "AP": [...], ...}

A prediction is {"boxes": Mx4 (left, top, right, bottom), "scores": M,
"classes": M}; a ground truth is {"boxes": Nx4, "classes": N}, one of each per
image. Boxes are in continuous pixel coordinates: a box's area is
(right - left) * (bottom - top), with no VOC "+1".

Matching (as VOC's devkit): the detections of a class, over all images, are
taken by decreasing score; each is a true positive when its best-overlapping
ground truth of that class in its image has IoU >= `iou` and was not matched
before, else a false positive (a second hit on a matched box is a duplicate).
AP is the area under the precision-recall curve with precision made monotone
(all-point interpolation, VOC 2010+). mAP averages the classes that have
ground truth; a class without any has AP None. Pure numpy: the UI may import it.
"""
import numpy as np


def iou(boxes_a, boxes_b) -> np.ndarray:
    """N x M intersection over union of two sets of (left, top, right, bottom) boxes."""
    a = np.asarray(boxes_a, np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, np.float64).reshape(-1, 4)
    width = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    height = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(width, 0, None) * np.clip(height, 0, None)
    union = _area(a)[:, None] + _area(b)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _area(boxes: np.ndarray) -> np.ndarray:
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def average_precision(recall, precision) -> float:
    """VOC all-point AP: precision made non-increasing from the right, summed at every recall change."""
    recall = np.concatenate([[0.0], np.asarray(recall, np.float64), [1.0]])
    precision = np.concatenate([[0.0], np.asarray(precision, np.float64), [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.flatnonzero(recall[1:] != recall[:-1])
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def match_image(prediction: dict, ground_truth: dict, n_classes: int, iou_threshold: float = 0.5):
    """One image's detections as (class, score, is_true_positive) arrays, and its ground-truth count per class.

    Within one image, VOC's global score order gives the same result as ordering that image's
    detections by score, so images can be matched one at a time (what makes batching possible)."""
    boxes = np.asarray(prediction["boxes"], np.float64).reshape(-1, 4)
    scores = np.asarray(prediction["scores"], np.float64).reshape(-1)
    classes = np.asarray(prediction["classes"], np.int64).reshape(-1)
    true_boxes = np.asarray(ground_truth["boxes"], np.float64).reshape(-1, 4)
    true_classes = np.asarray(ground_truth["classes"], np.int64).reshape(-1)
    _check_classes(classes, n_classes, "predicted")
    _check_classes(true_classes, n_classes, "ground-truth")
    overlaps = iou(boxes, true_boxes)
    overlaps[classes[:, None] != true_classes[None, :]] = -1.0  # only boxes of the same class can match
    hits = np.zeros(len(scores), bool)
    taken = np.zeros(len(true_boxes), bool)
    for d in np.argsort(-scores, kind="stable"):
        if not len(true_boxes):
            break
        best = int(np.argmax(overlaps[d]))
        if overlaps[d, best] >= iou_threshold and not taken[best]:
            hits[d] = taken[best] = True
    return classes, scores, hits, np.bincount(true_classes, minlength=n_classes)


def _check_classes(classes: np.ndarray, n_classes: int, what: str) -> None:
    bad = classes[(classes < 0) | (classes >= n_classes)]
    if len(bad):
        raise ValueError(f"{what} class {int(bad[0])} is outside 0..{n_classes - 1}: "
                         f"the model and the dataset must have the same {n_classes} classes")


class DetectionAccumulator:
    """Detections and ground-truth counts gathered batch by batch; `result()` gives AP per class and mAP.

    Keeps one (score, hit) pair per detection, which the decoder caps per image."""

    def __init__(self, n_classes: int, iou_threshold: float = 0.5):
        self.n_classes = n_classes
        self.iou_threshold = iou_threshold
        self.scores = [[] for _ in range(n_classes)]
        self.hits = [[] for _ in range(n_classes)]
        self.n_true = np.zeros(n_classes, np.int64)

    def add(self, predictions, ground_truths) -> None:
        """One batch: a list of predictions and the list of ground truths of the same images."""
        if len(predictions) != len(ground_truths):
            raise ValueError(f"{len(predictions)} predictions for {len(ground_truths)} ground truths")
        for prediction, truth in zip(predictions, ground_truths):
            classes, scores, hits, n_true = match_image(prediction, truth, self.n_classes, self.iou_threshold)
            self.n_true += n_true
            for c in np.unique(classes):
                self.scores[c].append(scores[classes == c])
                self.hits[c].append(hits[classes == c])

    def class_result(self, c: int) -> dict:
        """{"AP", "precision", "recall", "detections", "ground_truth"} of class c (AP None without ground truth)."""
        scores = np.concatenate(self.scores[c]) if self.scores[c] else np.zeros(0)
        hits = np.concatenate(self.hits[c]) if self.hits[c] else np.zeros(0, bool)
        hits = hits[np.argsort(-scores, kind="stable")]
        true_pos = np.cumsum(hits)
        n_true = int(self.n_true[c])
        recall = true_pos / n_true if n_true else np.zeros(len(hits))
        precision = true_pos / np.arange(1, len(hits) + 1)
        return {"AP": average_precision(recall, precision) if n_true else None,
                "precision": float(precision[-1]) if len(hits) else 0.0,
                "recall": float(recall[-1]) if len(hits) else 0.0,
                "detections": int(len(hits)), "ground_truth": n_true}

    def result(self) -> dict:
        """{"mAP": mean AP over classes with ground truth (None if none has any), "AP": per class,
        "classes": per-class details}."""
        classes = [self.class_result(c) for c in range(self.n_classes)]
        aps = [c["AP"] for c in classes if c["AP"] is not None]
        return {"mAP": float(np.mean(aps)) if aps else None, "AP": [c["AP"] for c in classes],
                "classes": classes}


def evaluate(predictions, ground_truths, n_classes: int, iou: float = 0.5) -> dict:
    """mAP and per-class AP of whole lists of predictions and ground truths (see DetectionAccumulator.result)."""
    accumulator = DetectionAccumulator(n_classes, iou)
    accumulator.add(predictions, ground_truths)
    return accumulator.result()
