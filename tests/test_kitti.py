"""KITTI label parsing, and boxes following an image through every resize mode."""
import numpy as np
import pytest

from digits_engine import detection_resize as dr
from digits_engine import kitti

CAR = "Car 0.00 0 -1.58 587.01 173.33 614.12 200.12 1.65 1.67 3.64 -0.65 1.71 46.70 -1.59"


def test_parses_fifteen_fields_lowercases_the_class():
    result = kitti.parse_labels(CAR + "\n" + CAR.replace("Car", "DontCare"), "labels/0001.txt")
    assert result.problems == []
    assert [o.name for o in result.objects] == ["car", "dontcare"]
    assert result.objects[0].box == (587.01, 173.33, 614.12, 200.12)
    assert result.objects[0].score is None and result.objects[0].line == 1


def test_sixteenth_field_is_a_score():
    (obj,) = kitti.parse_labels(CAR + " 0.87", "a.txt").objects
    assert obj.score == pytest.approx(0.87)


def test_bad_lines_are_reported_with_their_numbers_and_skipped():
    text = "\n".join([CAR, "", "Van 0 0 0 1 2 3", CAR.replace("587.01", "left"),
                      CAR.replace("614.12", "500"), CAR.replace("1.65", "nan"), CAR])
    result = kitti.parse_labels(text, "labels/0001.txt")
    assert [o.line for o in result.objects] == [1, 7]
    assert result.problems[0] == "labels/0001.txt, line 3: expected 15 or 16 fields, found 7"
    assert result.problems[1] == "labels/0001.txt, line 4: field 5 (left) is not a number: 'left'"
    assert result.problems[2].startswith(
        "labels/0001.txt, line 5: box (587.01, 173.33, 500, 200.12) has right < left")
    assert result.problems[3] == "labels/0001.txt, line 6: field 9 (height) is not a number: 'nan'"
    assert len(result.problems) == 4


def test_boxes_are_clipped_and_empty_ones_dropped():
    line = "car 0 0 0 {} 1 1 1 0 0 0 0"
    boxes = ("-5 10 30 40", "90 90 120 130", "100 5 120 20", "5 5 20 20")
    text = "\n".join(line.format(box) for box in boxes)
    result = kitti.parse_labels(text, "b.txt", image_size=(100, 80))
    assert [o.box for o in result.objects] == [(0.0, 10.0, 30.0, 40.0), (5.0, 5.0, 20.0, 20.0)]
    assert [o.line for o in result.objects] == [1, 4]
    assert result.clipped == 1
    assert result.problems == [
        "b.txt, line 2: box (90, 90, 120, 130) has no area inside the 100x80 image; dropped",
        "b.txt, line 3: box (100, 5, 120, 20) has no area inside the 100x80 image; dropped"]


def test_unreadable_file_is_a_problem_not_an_exception(tmp_path):
    result = kitti.read_label_file(tmp_path / "missing.txt", name="labels/missing.txt")
    assert result.objects == [] and result.problems[0].startswith("labels/missing.txt: cannot be read")
    (tmp_path / "ok.txt").write_bytes(CAR.encode() + b"\n\xff\n")
    result = kitti.read_label_file(tmp_path / "ok.txt", name="ok.txt")
    assert len(result.objects) == 1 and "line 2: expected 15 or 16 fields, found 1" in result.problems[0]


def test_default_classes_leave_out_dontcare():
    assert kitti.KITTI_CLASSES[:3] == ("car", "van", "truck")
    assert kitti.DONTCARE not in kitti.KITTI_CLASSES and len(kitti.KITTI_CLASSES) == 14


# ---------------------------------------------------------------- resize modes
# A 200 wide x 100 high source into 50 x 50; the numbers are worked out by hand
# from images.py's geometry (see each comment).
BOX = [[20, 10, 60, 50]]


@pytest.mark.parametrize("mode, expected", [
    ("squash", [5, 5, 15, 25]),               # x * 0.25, y * 0.5
    ("crop", [0, 5, 5, 25]),                  # scaled to 100x50, 25 px cropped left: 10-25 -> 0
    ("fill", [5, 14.6, 15, 25]),              # scaled to 50x26 (even gap), 12 px noise above
    ("half_crop", [0, 11.4, 11.1, 25]),       # ratio 3: 67x34, 9 px cropped left, 8 px padded above
    ("pad", [5, 2.5, 15, 12.5]),              # larger than 50x50: scaled by 0.25 to 50x25, no shift
])
def test_box_mapping_for_every_mode(mode, expected):
    where = dr.placement(100, 200, 50, 50, mode)
    boxes, kept = dr.map_boxes(BOX, where, 50, 50)
    np.testing.assert_allclose(boxes, [expected], atol=1e-4)
    assert kept.tolist() == [0]


@pytest.mark.parametrize("mode", dr.RESIZE_MODES)
def test_predicted_boxes_map_back_to_the_source(mode):
    box = [[60, 30, 140, 80]]  # inside the window every mode keeps
    where = dr.placement(100, 200, 50, 50, mode)
    mapped, _ = dr.map_boxes(box, where, 50, 50)
    np.testing.assert_allclose(dr.unmap_boxes(mapped, where, 100, 200), box, atol=1e-3)


def test_unmapped_boxes_stay_inside_the_source():
    where = dr.placement(100, 200, 50, 50, "fill")  # 12 px of noise above the image
    np.testing.assert_allclose(dr.unmap_boxes([[0, 0, 50, 50]], where, 100, 200), [[0, 0, 200, 100]])


def test_pad_keeps_small_images_where_they_are():
    where = dr.placement(30, 40, 64, 64, "pad")
    assert where == dr.Placement(1.0, 1.0, 0.0, 0.0)
    boxes, _ = dr.map_boxes([[1.5, 2, 39, 30]], where, 64, 64)
    np.testing.assert_allclose(boxes, [[1.5, 2, 39, 30]])


def test_crop_drops_boxes_outside_the_kept_window():
    where = dr.placement(100, 200, 50, 50, "crop")
    boxes, kept = dr.map_boxes([[0, 0, 30, 30], [100, 0, 140, 40]], where, 50, 50)
    assert kept.tolist() == [1]
    np.testing.assert_allclose(boxes, [[25, 0, 45, 20]])


def test_no_boxes_is_fine():
    boxes, kept = dr.map_boxes(np.zeros((0, 4)), dr.placement(10, 10, 5, 5, "squash"), 5, 5)
    assert boxes.shape == (0, 4) and boxes.dtype == np.float32 and kept.size == 0


def _white_box_image(width, height, box):
    array = np.zeros((height, width, 3), np.uint8)
    left, top, right, bottom = box
    array[top:bottom, left:right] = 255
    return array


@pytest.mark.parametrize("mode", dr.RESIZE_MODES)
def test_pixels_and_boxes_move_together(mode):
    """The white rectangle in the resized pixels sits where the mapped box says."""
    source = _white_box_image(200, 100, (120, 20, 160, 80))
    pixels, boxes, kept = dr.resize_with_boxes(source, [[120, 20, 160, 80]], 48, 64, resize_mode=mode,
                                               rng=np.random.default_rng(0))
    assert pixels.shape == (48, 64, 3) and pixels.dtype == np.uint8 and kept.tolist() == [0]
    left, top, right, bottom = boxes[0]
    inner = pixels[int(np.ceil(top)) + 1:int(bottom) - 1, int(np.ceil(left)) + 1:int(right) - 1]
    assert inner.size and inner.min() > 200
    if mode in ("squash", "crop", "pad"):  # no noise padding: everything else is dark
        bright = np.argwhere(pixels[:, :, 0] > 127)
        (y0, x0), (y1, x1) = bright.min(axis=0), bright.max(axis=0) + 1
        np.testing.assert_allclose([x0, y0, x1, y1], boxes[0], atol=1.0)


def test_pad_pixels_sit_top_left_on_black():
    source = np.full((30, 40, 1), 200, np.uint8)
    pixels, boxes, _ = dr.resize_with_boxes(source, [[0, 0, 40, 30]], 64, 64, resize_mode="pad")
    assert (pixels[:30, :40] == 200).all() and pixels[30:].max() == 0 and pixels[:, 40:].max() == 0
    np.testing.assert_allclose(boxes, [[0, 0, 40, 30]])


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="valid modes: squash, crop, fill, half_crop, pad"):
        dr.placement(10, 10, 5, 5, "stretch")


@pytest.mark.parametrize("mode", ("squash", "crop", "fill", "half_crop"))
def test_pixels_match_an_image_dataset(mode):
    from digits_engine import images
    source = np.random.default_rng(1).integers(0, 256, (70, 90, 3), dtype=np.uint8)
    pixels, _, _ = dr.resize_with_boxes(source, [], 40, 40, 1, mode, np.random.default_rng(2))
    expected = images.resize_image(source, 40, 40, 1, mode, np.random.default_rng(2))
    np.testing.assert_array_equal(pixels, expected)
