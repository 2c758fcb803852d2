"""CenterNet targets of hand-placed boxes: padding, the CenterNet radius, the
Gaussian peak at the centre cell, and the size, offset and mask there."""
import numpy as np
import pytest

from digits_engine.detection_boxes import MAX_BOXES, encode_batch, encode_image, gaussian_radius, pad_boxes


def test_pad_boxes_pads_with_class_minus_one_and_truncates():
    boxes, classes = pad_boxes([[1, 2, 3, 4], [5, 6, 7, 8]], [2, 0])
    assert boxes.shape == (MAX_BOXES, 4) and boxes.dtype == np.float32
    assert classes.dtype == np.int32
    assert boxes[1].tolist() == [5, 6, 7, 8] and not boxes[2:].any()
    assert classes[:3].tolist() == [2, 0, -1] and (classes[2:] == -1).all()
    many, many_classes = pad_boxes(np.ones((MAX_BOXES + 5, 4)), np.zeros(MAX_BOXES + 5))
    assert many.shape == (MAX_BOXES, 4) and (many_classes == 0).all()
    empty, empty_classes = pad_boxes(np.zeros((0, 4)), np.zeros(0))
    assert not empty.any() and (empty_classes == -1).all()


def test_centernet_radius_by_hand():
    # 10 x 10 box, overlap 0.7: the third case wins, r = (-28 + sqrt(28^2 + 4 * 2.8 * 30)) / 2
    assert gaussian_radius(10, 10) == pytest.approx((-28 + np.sqrt(1120)) / 2)
    assert gaussian_radius(4, 6) == pytest.approx((-14 + np.sqrt(196 + 4 * 2.8 * 7.2)) / 2)  # 1.316


def test_targets_of_one_box():
    # box (10, 20, 31, 34) px at stride 4 = (2.5, 5, 7.75, 8.5) cells: centre (5.125, 6.75),
    # so cell x=5, y=6, offset (0.125, 0.75), size 5.25 x 3.5 cells, radius int(1.316) = 1
    targets = encode_image([[10, 20, 31, 34]], [1], n_classes=3, out_size=(16, 16))
    assert targets.shape == (16, 16, 8) and targets.dtype == np.float32
    heat = targets[:, :, 1]
    assert heat[6, 5] == 1.0 and np.unravel_index(np.argmax(heat), heat.shape) == (6, 5)
    # a 3x3 Gaussian with sigma 3/6: exp(-d^2 / 0.5)
    assert heat[6, 6] == pytest.approx(np.exp(-2)) and heat[7, 4] == pytest.approx(np.exp(-4))
    assert heat[6, 7] == 0 and np.count_nonzero(heat) == 9
    assert not targets[:, :, [0, 2]].any()
    assert targets[6, 5, 3:].tolist() == pytest.approx([5.25, 3.5, 0.125, 0.75, 1.0])
    assert targets[:, :, 7].sum() == 1.0 and not np.delete(targets[:, :, 3:].reshape(-1, 5), 6 * 16 + 5, 0).any()


def test_overlapping_gaussians_merge_by_max_and_clip_at_the_border():
    boxes = [[0, 0, 40, 40], [8, 8, 48, 48], [60, 60, 64, 64]]
    targets = encode_image(boxes, [0, 0, 0], n_classes=1, out_size=(16, 16))
    heat = targets[:, :, 0]
    assert heat.max() == 1.0 and heat[5, 5] == 1.0 and heat[7, 7] == 1.0 and heat[15, 15] == 1.0
    alone = encode_image(boxes[:1], [0], n_classes=1, out_size=(16, 16))[:, :, 0]
    assert (heat >= alone).all() and heat.max() <= 1.0


def test_padding_empty_and_outside_boxes_are_skipped():
    boxes = [[10, 10, 10, 30], [70, 70, 90, 90], [0, 0, 0, 0]]
    targets = encode_image(boxes, [0, 0, -1], n_classes=2, out_size=(16, 16))
    assert not targets.any()


def test_class_beyond_the_network_is_a_clear_error():
    with pytest.raises(ValueError, match="class 3 is outside 0..2"):
        encode_image([[0, 0, 8, 8]], [3], n_classes=3, out_size=(16, 16))


def test_encode_batch_of_padded_boxes():
    one = pad_boxes([[10, 20, 31, 34]], [1])
    empty = pad_boxes(np.zeros((0, 4)), [])
    boxes, classes = np.stack([one[0], empty[0]]), np.stack([one[1], empty[1]])
    batch = encode_batch(boxes, classes, n_classes=3, image_size=(64, 48))
    assert batch.shape == (2, 16, 12, 8) and batch.dtype == np.float32
    assert batch[0, 6, 5, 1] == 1.0 and not batch[1].any()
    assert encode_batch(boxes[:0], classes[:0], 3, (64, 48)).shape == (0, 16, 12, 8)
