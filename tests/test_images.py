"""Tests for digits_engine.images (after DIGITS' digits/utils/test_image.py)."""

import itertools

import numpy as np
import pytest
from PIL import Image

from digits_engine.images import (RESIZE_MODES, SUPPORTED_EXTENSIONS,
                                  ImageError, load_image, resize_image,
                                  round_half_up)

BILINEAR = Image.Resampling.BILINEAR


def _pixel(mode):
    """A mid-grey-ish value for a 10x10 test image of the given mode."""
    return {'1': 1, 'L': 128, 'P': 5, 'LA': (128, 255), 'RGB': (10, 20, 30),
            'RGBA': (10, 20, 30, 255), 'CMYK': (0, 100, 150, 0),
            'YCbCr': (100, 120, 130)}[mode]


# ---------------------------------------------------------------- load_image


@pytest.mark.parametrize('mode,ext,expected', [
    ('1', 'png', 'L'), ('1', 'ppm', 'L'),
    ('L', 'png', 'L'), ('L', 'jpg', 'L'), ('L', 'ppm', 'L'),
    ('LA', 'png', 'L'),
    ('RGB', 'png', 'RGB'), ('RGB', 'jpg', 'RGB'), ('RGB', 'ppm', 'RGB'),
    ('RGBA', 'png', 'RGB'),
    ('P', 'png', 'RGB'),
    ('CMYK', 'jpg', 'RGB'),
    ('YCbCr', 'jpg', 'RGB'),
])
def test_load_image_modes(tmp_path, mode, ext, expected):
    path = tmp_path / f'image.{ext}'
    Image.new(mode, (10, 10), _pixel(mode)).save(path)
    image = load_image(str(path))
    assert image.mode == expected
    assert image.size == (10, 10)


def test_load_image_accepts_pathlike(tmp_path):
    path = tmp_path / 'image.png'
    Image.new('RGB', (3, 2)).save(path)
    assert load_image(path).size == (3, 2)


def test_transparent_pixels_become_white(tmp_path):
    Image.new('LA', (4, 4), (0, 0)).save(tmp_path / 'la.png')
    Image.new('RGBA', (4, 4), (0, 0, 0, 0)).save(tmp_path / 'rgba.png')
    palette = Image.new('P', (4, 4), 0)
    palette.info['transparency'] = 0
    palette.save(tmp_path / 'p.png', transparency=0)
    assert np.all(np.array(load_image(tmp_path / 'la.png')) == 255)
    assert np.all(np.array(load_image(tmp_path / 'rgba.png')) == 255)
    assert np.all(np.array(load_image(tmp_path / 'p.png')) == 255)


def test_opaque_rgba_keeps_its_colour(tmp_path):
    Image.new('RGBA', (4, 4), (10, 20, 30, 255)).save(tmp_path / 'a.png')
    assert tuple(np.array(load_image(tmp_path / 'a.png'))[0, 0]) == (10, 20, 30)


def test_one_bit_becomes_0_or_255(tmp_path):
    Image.new('1', (4, 4), 1).save(tmp_path / 'b.png')
    assert np.all(np.array(load_image(tmp_path / 'b.png')) == 255)


@pytest.mark.parametrize('path', ['some string', '/tmp/not-a-file',
                                  'http://not-a-url'])
def test_bad_paths_raise(path):
    with pytest.raises(ImageError, match='not found'):
        load_image(path)


def test_directory_raises(tmp_path):
    with pytest.raises(ImageError):
        load_image(tmp_path)


def test_text_file_named_png_raises(tmp_path):
    path = tmp_path / 'notes.png'
    path.write_text('this is not an image\n')
    with pytest.raises(ImageError, match='is not an image'):
        load_image(path)


@pytest.mark.parametrize('fmt', ['png', 'jpg'])
def test_truncated_file_raises_at_load(tmp_path, fmt):
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)
    path = tmp_path / f'full.{fmt}'
    Image.fromarray(noise).save(path)
    data = path.read_bytes()
    cut = tmp_path / f'cut.{fmt}'
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(ImageError, match='truncated or corrupt'):
        load_image(cut)


def test_unsupported_mode_raises(tmp_path):
    path = tmp_path / 'float.tif'
    Image.new('F', (4, 4), 0.5).save(path)
    with pytest.raises(ImageError, match="unsupported pixel mode 'F'"):
        load_image(path)


def test_constants():
    assert SUPPORTED_EXTENSIONS == ('.png', '.jpg', '.jpeg', '.bmp', '.ppm',
                                    '.pgm')
    assert RESIZE_MODES == ('squash', 'crop', 'fill', 'half_crop')


@pytest.mark.parametrize('value,expected', [
    (42.5, 43), (7.5, 8), (0.5, 1), (2.5, 3), (2.49, 2), (0, 0), (341.33, 341)])
def test_round_half_up(value, expected):
    assert round_half_up(value) == expected


# ------------------------------------------------------- resize: the matrix


def _source(color, as_pil):
    rng = np.random.default_rng(1)
    shape = (10, 10, 3) if color else (10, 10)
    array = rng.integers(0, 256, shape, dtype=np.uint8)
    return Image.fromarray(array) if as_pil else array


@pytest.mark.parametrize('mode,color,channels,as_pil,height,width',
                         list(itertools.product(
                             RESIZE_MODES, [False, True], [None, 1, 3],
                             [False, True], [10, 15], [10, 16])))
def test_resize_shape_and_dtype(mode, color, channels, as_pil, height, width):
    image = _source(color, as_pil)
    out = resize_image(image, height, width, channels=channels,
                       resize_mode=mode, rng=np.random.default_rng(0))
    expected_c = channels if channels is not None else (3 if color else 1)
    assert out.shape == (height, width, expected_c)
    assert out.dtype == np.uint8


@pytest.mark.parametrize('mode', RESIZE_MODES)
def test_resize_accepts_hxwx1(mode):
    image = np.zeros((7, 5, 1), np.uint8)
    out = resize_image(image, 10, 16, resize_mode=mode)
    assert out.shape == (10, 16, 1)


def test_resize_mode_none_is_squash():
    image = _source(True, False)
    expected = resize_image(image, 15, 16, resize_mode='squash')
    np.testing.assert_array_equal(resize_image(image, 15, 16, resize_mode=None),
                                  expected)


# ------------------------------------------------- resize: pixel-level checks


def _noise_source(height, width, seed=2):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def _pil_resize(array, height, width):
    return np.array(Image.fromarray(array).resize((width, height), BILINEAR))


def test_squash_is_pil_bilinear():
    src = _noise_source(480, 640)
    out = resize_image(src, 256, 256, resize_mode='squash')
    np.testing.assert_array_equal(out, _pil_resize(src, 256, 256))


def test_crop_640x480_to_256():
    src = _noise_source(480, 640)
    out = resize_image(src, 256, 256, resize_mode='crop')
    # intermediate 341 wide x 256 high; columns start at round_half_up(42.5)
    expected = _pil_resize(src, 256, 341)[:, 43:43 + 256]
    np.testing.assert_array_equal(out, expected)


def test_fill_640x480_to_256():
    colour = (10, 200, 30)
    src = np.empty((480, 640, 3), np.uint8)
    src[:] = colour
    out = resize_image(src, 256, 256, resize_mode='fill',
                       rng=np.random.default_rng(0))
    assert np.all(out[32:224] == colour)
    for band in (out[:32], out[224:]):
        assert not np.all(band == colour)
        assert band.std() > 50  # uniform noise, not a flat colour
    assert out.max() <= 254  # DIGITS draws randint(0, 255)


def test_fill_content_is_the_resized_image():
    src = _noise_source(480, 640)
    out = resize_image(src, 256, 256, resize_mode='fill')
    np.testing.assert_array_equal(out[32:224], _pil_resize(src, 192, 256))


def test_half_crop_640x480_to_256():
    src = _noise_source(480, 640)
    out = resize_image(src, 256, 256, resize_mode='half_crop',
                       rng=np.random.default_rng(0))
    # 293 wide x 219 high, bumped to 220 for parity; crop columns from 19;
    # 18 noise rows above and below.
    expected = _pil_resize(src, 220, 293)[:, 19:19 + 256]
    np.testing.assert_array_equal(out[18:238], expected)


def test_half_crop_solid_colour_bands():
    src = np.full((480, 640, 3), 77, np.uint8)
    out = resize_image(src, 256, 256, resize_mode='half_crop')
    assert np.all(out[18:238] == 77)
    assert not np.all(out[:18] == 77)
    assert not np.all(out[238:] == 77)


def test_crop_10x10_to_10_high_16_wide():
    src = _noise_source(10, 10)
    out = resize_image(src, 10, 16, resize_mode='crop')
    np.testing.assert_array_equal(out, _pil_resize(src, 16, 16)[3:13])


def test_fill_10x10_to_10_high_16_wide():
    src = np.full((10, 10), 200, np.uint8)
    out = resize_image(src, 10, 16, resize_mode='fill')
    assert out.shape == (10, 16, 1)
    assert np.all(out[:, 3:13] == 200)
    assert not np.all(out[:, :3] == 200)
    assert not np.all(out[:, 13:] == 200)


def test_half_crop_10x10_to_10_high_16_wide():
    src = _noise_source(10, 10)
    out = resize_image(src, 10, 16, resize_mode='half_crop')
    np.testing.assert_array_equal(out[:, 2:14], _pil_resize(src, 12, 12)[1:11])


@pytest.mark.parametrize('mode', RESIZE_MODES)
def test_same_ratio_behaves_like_squash(mode):
    src = _noise_source(20, 10)
    out = resize_image(src, 10, 5, resize_mode=mode)
    np.testing.assert_array_equal(out, _pil_resize(src, 10, 5))


@pytest.mark.parametrize('mode', RESIZE_MODES)
def test_already_target_size_is_unchanged(mode):
    src = _noise_source(12, 9)
    out = resize_image(src, 12, 9, resize_mode=mode)
    np.testing.assert_array_equal(out, src)
    assert out is not src


@pytest.mark.parametrize('mode', ['fill', 'half_crop'])
def test_noise_reproducible_with_seeded_rng(mode):
    src = _noise_source(30, 10)
    first = resize_image(src, 16, 16, resize_mode=mode,
                         rng=np.random.default_rng(5))
    second = resize_image(src, 16, 16, resize_mode=mode,
                          rng=np.random.default_rng(5))
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize('mode', RESIZE_MODES)
@pytest.mark.parametrize('shape', [(1, 300), (300, 1), (3, 200), (7, 7)])
def test_extreme_aspect_ratios(mode, shape):
    src = np.full(shape, 9, np.uint8)
    assert resize_image(src, 16, 10, resize_mode=mode).shape == (16, 10, 1)


# -------------------------------------------------------- resize: channels


def test_colour_to_gray_is_truncating_dot():
    src = np.array([[[100, 150, 200], [255, 255, 255]]], np.uint8)
    out = resize_image(src, 1, 2, channels=1)
    # 0.299*100 + 0.587*150 + 0.114*200 = 140.75 -> 140
    assert out[:, :, 0].tolist() == [[140, 255]]


def test_pil_colour_to_gray_uses_same_dot():
    src = np.array([[[100, 150, 200]]], np.uint8)
    assert resize_image(Image.fromarray(src), 1, 1, channels=1)[0, 0, 0] == 140


def test_gray_to_colour_repeats():
    src = np.array([[7, 200]], np.uint8)
    out = resize_image(src, 1, 2, channels=3)
    assert out.tolist() == [[[7, 7, 7], [200, 200, 200]]]


def test_pil_rgba_is_composited_over_white():
    image = Image.new('RGBA', (2, 2), (0, 0, 0, 0))
    assert np.all(resize_image(image, 2, 2) == 255)


def test_non_uint8_arrays_are_clipped():
    src = np.array([[-5.0, 300.0, 12.7]])
    assert resize_image(src, 1, 3)[0, :, 0].tolist() == [0, 255, 12]


# ---------------------------------------------------------- resize: errors


def test_unknown_mode_lists_valid_ones():
    with pytest.raises(ValueError, match='squash, crop, fill, half_crop'):
        resize_image(np.zeros((4, 4), np.uint8), 2, 2, resize_mode='stretch')


@pytest.mark.parametrize('channels', [0, 2, 4, '3'])
def test_bad_channels(channels):
    with pytest.raises(ValueError, match='channels must be one of'):
        resize_image(np.zeros((4, 4), np.uint8), 2, 2, channels=channels)


@pytest.mark.parametrize('shape', [(4,), (4, 4, 2), (4, 4, 4), (0, 4),
                                   (2, 2, 2, 2)])
def test_bad_array_shapes(shape):
    with pytest.raises(ValueError, match='HxW, HxWx1 or HxWx3'):
        resize_image(np.zeros(shape, np.uint8), 2, 2)


@pytest.mark.parametrize('height,width', [(0, 5), (5, -1), (2.5, 4)])
def test_bad_target_size(height, width):
    with pytest.raises(ValueError, match='positive integer'):
        resize_image(np.zeros((4, 4), np.uint8), height, width)


def test_bad_input_type():
    with pytest.raises(TypeError):
        resize_image([[1, 2], [3, 4]], 2, 2)
