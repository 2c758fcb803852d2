"""Decoding CenterNet outputs: 3x3 peak picking, top-K and the score threshold,
and decode(encode(boxes)) giving the boxes back."""
import numpy as np
import pytest

from digits_engine.detection_boxes import encode_batch, pad_boxes
from digits_engine.detection_decode import DECODING, decode, max_pool_3x3


def outputs_from_targets(targets: np.ndarray, n_classes: int) -> np.ndarray:
    """What a perfect network would output: heatmap logits, then size and offset (the mask dropped)."""
    heat = np.clip(targets[..., :n_classes], 1e-4, 1 - 1e-4)
    return np.concatenate([np.log(heat / (1 - heat)), targets[..., n_classes:n_classes + 4]], axis=-1)


def test_max_pool_3x3_by_hand():
    heat = np.array([[1, 2, 0], [0, 0, 0], [0, 0, 5]], np.float32)[:, :, None]
    assert max_pool_3x3(heat)[:, :, 0].tolist() == [[2, 2, 2], [2, 5, 5], [0, 5, 5]]


def test_decode_of_encoded_boxes_gives_the_boxes_back():
    boxes = [[[10, 20, 31, 34], [40, 4, 60, 30], [2, 40, 22, 62]], [[16, 16, 48, 48]]]
    classes = [[1, 0, 1], [2]]
    padded = [pad_boxes(b, c) for b, c in zip(boxes, classes)]
    targets = encode_batch(np.stack([p[0] for p in padded]), np.stack([p[1] for p in padded]), 3, (64, 64))
    detections = decode(outputs_from_targets(targets, 3))
    assert len(detections) == 2
    for found, true_boxes, true_classes in zip(detections, boxes, classes):
        order = np.lexsort(np.asarray(true_boxes).T[::-1])
        found_order = np.lexsort(found["boxes"].T[::-1])
        assert found["boxes"][found_order] == pytest.approx(np.asarray(true_boxes, np.float32)[order], abs=1e-3)
        assert found["classes"][found_order].tolist() == np.asarray(true_classes)[order].tolist()
        assert found["scores"] == pytest.approx(1.0, abs=1e-3)
        assert found["classes"].dtype == np.int64 and found["boxes"].dtype == np.float32


def test_only_peaks_above_the_threshold_best_first_up_to_max_detections():
    outputs = np.full((1, 8, 8, 2 + 4), -10.0, np.float32)
    outputs[0, 1, 1, 0] = 3.0   # a peak
    outputs[0, 1, 2, 0] = 2.0   # its neighbour: not a peak
    outputs[0, 6, 6, 1] = 1.0   # a peak of class 1
    outputs[0, 1, 2, 1] = 0.0   # a peak of class 1 (neighbours are of class 0 or low)
    outputs[0, 4, 4, 0] = -3.0  # a peak under the threshold (sigmoid 0.047 < 0.1)
    outputs[0, :, :, 2:4] = 2.0  # 2 x 2 cells = 8 x 8 px at stride 4
    outputs[0, :, :, 4:6] = 0.5
    found = decode(outputs, score_threshold=0.1)[0]
    assert found["classes"].tolist() == [0, 1, 1]
    assert found["scores"] == pytest.approx(1 / (1 + np.exp(-np.array([3.0, 1.0, 0.0]))))
    assert found["boxes"][0].tolist() == pytest.approx([2.0, 2.0, 10.0, 10.0])  # centre (1.5, 1.5) cells
    best_two = decode(outputs, max_detections=2, score_threshold=0.01)[0]
    assert best_two["classes"].tolist() == [0, 1] and len(best_two["boxes"]) == 2
    assert len(decode(outputs, score_threshold=0.01)[0]["scores"]) == 4


def test_nothing_found_and_bad_shapes():
    found = decode(np.full((2, 4, 4, 5), -20.0))
    assert [len(f["scores"]) for f in found] == [0, 0] and found[0]["boxes"].shape == (0, 4)
    with pytest.raises(ValueError, match="is this a detection model"):
        decode(np.zeros((1, 4, 4, 4)))
    with pytest.raises(ValueError, match="B x h x w"):
        decode(np.zeros((4, 4, 9)))
    assert DECODING == {"type": "centernet", "stride": 4, "max_detections": 100}
