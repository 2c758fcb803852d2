"""Detection metrics on hand-made cases whose IoU, AP and mAP are worked out by hand
in the comments (PASCAL VOC all-point interpolation)."""
import numpy as np
import pytest

from digits_engine.detection_metrics import DetectionAccumulator, average_precision, evaluate, iou

A = [0, 0, 10, 10]
B = [20, 20, 40, 30]
C = [50, 0, 60, 20]


def truth(boxes, classes):
    return {"boxes": np.array(boxes, np.float32).reshape(-1, 4), "classes": np.array(classes, np.int64)}


def pred(boxes, scores, classes):
    return {"boxes": np.array(boxes, np.float32).reshape(-1, 4), "scores": np.array(scores, np.float32),
            "classes": np.array(classes, np.int64)}


def test_iou_by_hand():
    # half-overlapping squares: intersection 50, union 150; disjoint: 0; same box: 1
    assert iou([A], [[5, 0, 15, 10], B, A]) == pytest.approx(np.array([[1 / 3, 0.0, 1.0]]))
    assert iou(np.zeros((0, 4)), [A]).shape == (0, 1)


def test_average_precision_all_point():
    # recall 0.5 at precision 1, recall 1 at precision 0.5: 0.5 * 1 + 0.5 * 0.5
    assert average_precision([0.5, 1.0], [1.0, 0.5]) == pytest.approx(0.75)
    # a dip then a rise: precision is made monotone, so recall 0.5 counts at 2/3, not 1/2
    assert average_precision([0.0, 0.5, 1.0], [0.0, 0.5, 2 / 3]) == pytest.approx(2 / 3)


def test_perfect_detections():
    truths = [truth([A, B], [0, 1]), truth([C], [0])]
    preds = [pred([A, B], [0.9, 0.8], [0, 1]), pred([C], [0.3], [0])]
    result = evaluate(preds, truths, n_classes=2)
    assert result["AP"] == [pytest.approx(1.0), pytest.approx(1.0)]
    assert result["mAP"] == pytest.approx(1.0)


def test_false_positive_ranked_first():
    # ranked: FP (0.9), TP (0.8), TP (0.7): precision 0, 1/2, 2/3 at recall 0, 1/2, 1
    # monotone precision is 2/3 at both recall steps: AP = 0.5 * 2/3 + 0.5 * 2/3
    truths = [truth([A, B], [0, 0])]
    preds = [pred([C, A, B], [0.9, 0.8, 0.7], [0, 0, 0])]
    assert evaluate(preds, truths, n_classes=1)["mAP"] == pytest.approx(2 / 3)


def test_false_positive_in_another_image_ranks_globally():
    # image 1's FP (0.95) outranks image 2's TP (0.9): the same 2/3 as above, across images
    truths = [truth([A], [0]), truth([B], [0])]
    preds = [pred([C, A], [0.95, 0.5], [0, 0]), pred([B], [0.9], [0])]
    assert evaluate(preds, truths, n_classes=1)["mAP"] == pytest.approx(2 / 3)


def test_missed_box():
    # one of two boxes found: recall stops at 1/2 with precision 1, so AP = 1/2
    result = evaluate([pred([A], [0.9], [0])], [truth([A, B], [0, 0])], n_classes=1)
    assert result["mAP"] == pytest.approx(0.5)
    assert result["classes"][0]["recall"] == pytest.approx(0.5)


def test_duplicates_are_false_positives():
    # A found twice, then B: TP, FP, TP; precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1
    # AP = 0.5 * 1 + 0.5 * 2/3 = 5/6
    near_a = [0, 0, 10, 9]
    truths = [truth([A, B], [0, 0])]
    preds = [pred([A, near_a, B], [0.9, 0.8, 0.7], [0, 0, 0])]
    result = evaluate(preds, truths, n_classes=1)
    assert result["mAP"] == pytest.approx(5 / 6)
    assert result["classes"][0]["precision"] == pytest.approx(2 / 3)


def test_iou_threshold_is_inclusive_and_wrong_class_never_matches():
    half = [0, 0, 10, 20]  # IoU with A exactly 0.5
    assert evaluate([pred([half], [0.9], [0])], [truth([A], [0])], n_classes=1)["mAP"] == pytest.approx(1.0)
    assert evaluate([pred([[0, 0, 10, 21]], [0.9], [0])], [truth([A], [0])], n_classes=1)["mAP"] == 0.0
    assert evaluate([pred([A], [0.9], [1])], [truth([A], [0])], n_classes=2)["AP"] == [0.0, None]


def test_class_without_ground_truth_is_left_out_of_the_mean():
    # class 0 perfect (1), class 1 missed (0), class 2 has only false positives and no ground truth
    truths = [truth([A, B], [0, 1])]
    preds = [pred([A, C], [0.9, 0.8], [0, 2])]
    result = evaluate(preds, truths, n_classes=3)
    assert result["AP"] == [pytest.approx(1.0), 0.0, None]
    assert result["mAP"] == pytest.approx(0.5)
    assert result["classes"][2] == {"AP": None, "precision": 0.0, "recall": 0.0, "detections": 1,
                                    "ground_truth": 0}


def test_no_ground_truth_at_all_and_background_images():
    assert evaluate([pred([A], [0.9], [0])], [truth([], [])], n_classes=1)["mAP"] is None
    # a background-only image contributes its false positive to the class
    truths = [truth([A], [0]), truth([], [])]
    preds = [pred([A], [0.5], [0]), pred([B], [0.9], [0])]
    assert evaluate(preds, truths, n_classes=1)["mAP"] == pytest.approx(0.5)


def test_accumulator_batch_by_batch_equals_one_pass():
    rng = np.random.default_rng(0)
    truths, preds = [], []
    for _ in range(12):
        boxes = rng.uniform(0, 40, (4, 2))
        boxes = np.concatenate([boxes, boxes + rng.uniform(5, 20, (4, 2))], axis=1)
        truths.append(truth(boxes, rng.integers(0, 3, 4)))
        jitter = boxes + rng.normal(0, 2, boxes.shape)
        preds.append(pred(jitter, rng.uniform(size=4), rng.integers(0, 3, 4)))
    accumulator = DetectionAccumulator(3)
    for start in range(0, 12, 5):
        accumulator.add(preds[start:start + 5], truths[start:start + 5])
    whole = evaluate(preds, truths, n_classes=3)
    assert accumulator.result() == whole
    assert 0 < whole["mAP"] < 1


def test_class_outside_the_model_is_a_clear_error():
    with pytest.raises(ValueError, match="class 5 is outside 0..1"):
        evaluate([pred([A], [0.9], [5])], [truth([A], [0])], n_classes=2)
