"""augmentation.py, op by op, on small batches: exact where the op is exact
(flips, 90° turns, crops), statistical where it is random (noise, colour)."""
import numpy as np
import pytest

from digits_engine import augmentation
from digits_engine.augmentation import augment, augment_with_masks, enabled, random_crop


def batch(n=16, h=12, w=12, c=3, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, c), dtype=np.uint8)


def rng(seed=1):
    return np.random.default_rng(seed)


def test_no_options_leave_the_batch_unchanged():
    images = batch()
    for options in ({}, {"aug_flip": "none", "aug_rot90": False, "aug_rotation": 0, "aug_scale": 0.0,
                         "aug_noise": 0, "aug_hue": 0, "aug_saturation": 0, "aug_value": 0, "aug_contrast": 0}):
        assert not enabled(options)
        assert np.array_equal(augment(images, options, rng()), images)


def test_enabled_sees_each_option():
    for name, value in (("aug_flip", "both"), ("aug_rot90", True), ("aug_rotation", 5.0), ("aug_scale", 0.1),
                        ("aug_noise", 0.01), ("aug_hue", 0.1), ("aug_saturation", 0.1), ("aug_value", 0.1),
                        ("aug_contrast", 0.1)):
        assert enabled({name: value}), name


@pytest.mark.parametrize("mode,flips", [("horizontal", [(2,)]), ("vertical", [(1,)]),
                                        ("both", [(1,), (2,), (1, 2)])])
def test_flips_are_exact(mode, flips):
    images = batch(n=64)
    out = augment(images, {"aug_flip": mode}, rng())
    seen = set()
    for before, after in zip(images, out):
        if np.array_equal(after, before):
            seen.add(())
            continue
        match = [axes for axes in flips if np.array_equal(after, np.flip(before, [a - 1 for a in axes]))]
        assert match, "an image changed other than by the asked flip"
        seen.add(match[0])
    assert seen == {(), *flips}  # 64 images: every outcome happens


def test_rot90_turns_square_images_by_quarter_turns_exactly():
    images = batch(n=64)
    out = augment(images, {"aug_rot90": True}, rng())
    turns = []
    for before, after in zip(images, out):
        k = [k for k in range(4) if np.array_equal(after, np.rot90(before, k))]
        assert k, "not a multiple of 90°"
        turns.append(k[0])
    assert set(turns) == {0, 1, 2, 3}


def test_rot90_keeps_non_square_images_upright_or_upside_down():
    images = batch(n=32, h=8, w=12)
    out = augment(images, {"aug_rot90": True}, rng())
    assert out.shape == images.shape
    assert all(np.array_equal(a, b) or np.array_equal(a, np.rot90(b, 2)) for a, b in zip(out, images))


def test_noise_has_the_asked_standard_deviation():
    images = np.full((8, 32, 32, 3), 128, np.uint8)
    out = augment(images, {"aug_noise": 0.05}, rng())
    assert np.std(out.astype(float) - 128) == pytest.approx(0.05 * 255, rel=0.05)


@pytest.mark.parametrize("shape", [(12, 12), (8, 14)])
@pytest.mark.parametrize("options", [{"aug_rotation": 30.0}, {"aug_scale": 0.2},
                                     {"aug_rotation": 45, "aug_scale": 0.3}])
def test_rotation_and_scale_keep_shape_and_dtype(shape, options):
    images = batch(n=6, h=shape[0], w=shape[1])
    out = augment(images, options, rng())
    assert out.shape == images.shape and out.dtype == np.uint8
    assert not np.array_equal(out, images)


def test_rotation_of_a_flat_image_stays_flat_thanks_to_reflected_edges():
    images = np.full((4, 10, 10, 1), 77, np.uint8)
    assert np.array_equal(augment(images, {"aug_rotation": 40.0, "aug_scale": 0.3}, rng()), images)


def test_a_tiny_rotation_barely_moves_pixels():
    images = np.tile(np.arange(16, dtype=np.uint8)[None, None, :, None] * 16, (2, 16, 1, 1))  # a horizontal ramp
    out = augment(images, {"aug_rotation": 0.01}, rng())
    assert np.abs(out.astype(int) - images).max() <= 1


def test_hue_shift_moves_hue_and_keeps_saturation_and_value():
    red = np.zeros((32, 4, 4, 3), np.uint8)
    red[..., 0] = 200
    red[..., 1] = 50
    red[..., 2] = 50
    out = augment(red, {"aug_hue": 0.3}, rng())
    h0, s0, v0 = augmentation.rgb_to_hsv(red / 255.0)
    h1, s1, v1 = augmentation.rgb_to_hsv(out / 255.0)
    shift = np.abs((h1 - h0 + 0.5) % 1.0 - 0.5)[:, 0, 0]
    assert shift.max() > 0.1 and shift.max() <= 0.3 + 0.01
    assert np.allclose(s1, s0, atol=0.02) and np.allclose(v1, v0, atol=0.01)


def test_saturation_and_value_scale_within_their_range():
    images = np.zeros((32, 4, 4, 3), np.uint8)
    images[..., 0], images[..., 1], images[..., 2] = 180, 120, 60
    _, s0, v0 = augmentation.rgb_to_hsv(images / 255.0)
    _, s1, _ = augmentation.rgb_to_hsv(augment(images, {"aug_saturation": 0.5}, rng()) / 255.0)
    _, _, v2 = augmentation.rgb_to_hsv(augment(images, {"aug_value": 0.3}, rng()) / 255.0)
    ratio_s, ratio_v = (s1 / s0)[:, 0, 0], (v2 / v0)[:, 0, 0]
    assert ratio_s.min() >= 0.5 - 0.02 and ratio_s.max() <= 1.5 + 0.02 and ratio_s.std() > 0.1
    assert ratio_v.min() >= 0.7 - 0.02 and ratio_v.max() <= 1.3 + 0.02 and ratio_v.std() > 0.05


def test_hsv_conversion_round_trips():
    pixels = batch(n=4).astype(np.float64) / 255.0
    assert np.allclose(augmentation.hsv_to_rgb(*augmentation.rgb_to_hsv(pixels)), pixels, atol=1e-9)


def test_grey_images_skip_the_hsv_changes():
    grey = batch(c=1)
    assert np.array_equal(augment(grey, {"aug_hue": 0.5, "aug_saturation": 1.0, "aug_value": 1.0}, rng()), grey)


def test_contrast_scales_the_spread_around_the_mean():
    images = np.zeros((32, 8, 8, 1), np.uint8)
    images[:, :, :4], images[:, :, 4:] = 100, 150
    out = augment(images, {"aug_contrast": 0.4}, rng()).astype(float)
    spread = out[:, 0, 4, 0] - out[:, 0, 0, 0]
    assert np.allclose(out.mean(axis=(1, 2, 3)), 125, atol=1)  # the mean stays
    assert spread.min() >= 50 * 0.6 - 1 and spread.max() <= 50 * 1.4 + 1 and spread.std() > 3


def test_the_same_seed_gives_the_same_batch():
    images = batch()
    options = {"aug_flip": "both", "aug_rot90": True, "aug_rotation": 20, "aug_scale": 0.1, "aug_noise": 0.02,
               "aug_hue": 0.1, "aug_saturation": 0.2, "aug_value": 0.2, "aug_contrast": 0.2}
    first, second = augment(images, options, rng(7)), augment(images, options, rng(7))
    assert np.array_equal(first, second)
    assert not np.array_equal(first, augment(images, options, rng(8)))


def test_masks_move_with_their_images_and_keep_their_class_ids():
    images = batch(n=8, c=1)
    masks = (images // 64).astype(np.uint8)  # class ids 0..3 that follow the pixels
    options = {"aug_flip": "both", "aug_rot90": True, "aug_rotation": 30, "aug_scale": 0.2}
    out_images, out_masks = augment_with_masks(images, masks, options, rng())
    assert out_masks.shape == masks.shape and set(np.unique(out_masks)) <= {0, 1, 2, 3}
    flips_only = {"aug_flip": "both", "aug_rot90": True}
    out_images, out_masks = augment_with_masks(images, masks, flips_only, rng())
    assert np.array_equal(out_masks, out_images // 64)  # exact ops: the mask is the image's, moved alike


def test_random_crop_cuts_the_same_place_from_image_and_mask():
    images = batch(n=20, h=10, w=14)
    masks = images[..., :1].copy()
    crops, mask_crops = random_crop(images, 6, rng(), masks)
    assert crops.shape == (20, 6, 6, 3) and np.array_equal(mask_crops, crops[..., :1])
    places = set()
    for image, crop in zip(images, crops):
        found = [(t, l) for t in range(5) for l in range(9) if np.array_equal(image[t:t + 6, l:l + 6], crop)]
        assert found
        places.add(found[0])
    assert len(places) > 5


def test_centre_crop_box():
    assert augmentation.centre_crop_box(16, 16, 12) == (2, 2)
    assert augmentation.centre_crop_box(10, 15, 10) == (0, 2)
