"""Tests for digits_engine.images (after DIGITS' digits/utils/test_image.py)."""

import io
import itertools
import warnings

import image_corpus
import numpy as np
import pytest
from PIL import Image, ImageFile

from digits_engine.images import (RESIZE_MODES, SUPPORTED_EXTENSIONS,
                                  ImageError, load_image, load_image_info,
                                  resize_image, round_half_up, to_l_or_rgb)

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


# ---------------------------------------------------------------- odd files
# (tests/image_corpus.py writes them; tests/test_bad_images.py builds a dataset of them)


def test_truncated_images_are_not_loaded_half(tmp_path):
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    for name in ('cut.png', 'cut.jpg'):
        with pytest.raises(ImageError, match='truncated or corrupt'):
            load_image(image_corpus.truncated(tmp_path / name))


def test_empty_file_says_so(tmp_path):
    with pytest.raises(ImageError, match=r'empty\.jpg. is an empty file \(0 bytes\)'):
        load_image(image_corpus.empty(tmp_path / 'empty.jpg'))
    with pytest.raises(ImageError, match='is an empty file'):
        load_image(io.BytesIO(b''))


def test_text_named_jpg_is_not_an_image(tmp_path):
    with pytest.raises(ImageError, match='is not an image'):
        load_image(image_corpus.text_named_image(tmp_path / 'notes.jpg'))


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path):
    path = image_corpus.sixteen_bit_png(tmp_path / 'depth16.png', (0, 2570, 65535, 32896, 1000, 129))
    image, info = load_image_info(path)
    assert info == {'width': 6, 'height': 1, 'mode': 'I;16', 'exif_rotated': False}
    assert image.mode == 'L'
    assert np.asarray(image)[0].tolist() == [0, 10, 255, 128, 4, 1]  # round(v / 257)


def test_32_bit_integer_image_is_read_as_16_bit():
    image = Image.fromarray(np.array([[-5, 0, 65535, 70000, 257 * 3]], np.int32))
    assert image.mode == 'I'
    assert np.asarray(to_l_or_rgb(image))[0].tolist() == [0, 0, 255, 255, 3]


def test_palette_transparency_is_composited_over_white(tmp_path):
    image, info = load_image_info(image_corpus.palette_with_transparency(tmp_path / 'p.png'))
    assert info['mode'] == 'P' and image.mode == 'RGB'
    pixels = np.asarray(image)
    assert np.all(pixels[:, :4] == 255)  # transparent: white
    assert np.all(pixels[:, 4:] == (255, 0, 0))  # opaque red stays red


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    image, info = load_image_info(image_corpus.cmyk_jpeg(tmp_path / 'cmyk.jpg'))
    assert info['mode'] == 'CMYK' and image.mode == 'RGB'
    assert np.abs(np.asarray(image, np.int16) - (255, 0, 0)).max() < 8


@pytest.mark.parametrize('mode', RESIZE_MODES)
def test_one_pixel_image_loads_and_resizes(tmp_path, mode):
    image = load_image(image_corpus.one_pixel(tmp_path / 'tiny.png'))
    assert image.size == (1, 1)
    pixels = resize_image(image, 16, 12, resize_mode=mode, rng=np.random.default_rng(0))
    assert pixels.shape == (16, 12, 3)
    assert tuple(pixels[8, 6]) == (10, 200, 30)


def test_animated_gif_gives_its_first_frame(tmp_path):
    path = image_corpus.animated_gif(tmp_path / 'animated.gif')
    with Image.open(path) as gif:
        assert gif.n_frames == 3
    image = load_image(path)
    assert image.mode == 'RGB' and image.size == (8, 8)
    assert np.abs(np.asarray(image, np.int16) - (255, 0, 0)).max() < 8


def test_exif_orientation_is_honoured_and_reported(tmp_path):
    image, info = load_image_info(image_corpus.exif_rotated_jpeg(tmp_path / 'rotated.jpg'))
    assert info == {'width': 30, 'height': 10, 'mode': 'RGB', 'exif_rotated': True}
    assert image.size == (10, 30)  # shown upright: turned a quarter clockwise
    pixels = np.asarray(image, np.int16)
    assert np.abs(pixels[2:8].mean(axis=(0, 1)) - (255, 0, 0)).max() < 20  # the red part on top
    assert np.abs(pixels[-8:].mean(axis=(0, 1)) - (0, 0, 255)).max() < 20


def test_no_exif_orientation_is_not_rotated(tmp_path):
    path = tmp_path / 'plain.jpg'
    Image.new('RGB', (30, 10)).save(path)
    image, info = load_image_info(path)
    assert image.size == (30, 10) and info['exif_rotated'] is False


@pytest.mark.parametrize('name', ['photo.tiff', 'photo.webp'])
def test_tiff_and_webp_load(tmp_path, name):
    image = load_image(image_corpus.plain_copy(tmp_path / name))
    assert image.mode == 'RGB' and image.size == (12, 12)
    assert tuple(np.asarray(image)[5, 5]) == (20, 180, 40)


def test_load_image_info_reads_file_objects(tmp_path):
    data = image_corpus.exif_rotated_jpeg(tmp_path / 'r.jpg').read_bytes()
    image, info = load_image_info(io.BytesIO(data))
    assert image.size == (10, 30) and info['exif_rotated'] is True


def test_image_over_the_pixel_limit_is_refused_before_decoding(tmp_path, monkeypatch):
    path = image_corpus.bomb_png(tmp_path / 'bomb.png')
    monkeypatch.setattr(Image.Image, 'load', _must_not_decode)
    monkeypatch.setattr(ImageFile.ImageFile, 'load', _must_not_decode)
    with pytest.raises(ImageError, match=r"bomb\.png' is too large: 20000x20000 pixels, over the limit of "
                                         r'100000000 \(raise DIGITS_MAX_IMAGE_PIXELS to read it\)'):
        load_image(path)
    with pytest.raises(ImageError, match='too large: 20000x20000 pixels'):
        load_image(io.BytesIO(path.read_bytes()))


def _must_not_decode(self):
    raise AssertionError('decoded an image over the pixel limit')


@pytest.mark.parametrize('side', [
    12,  # 144 pixels: over the limit, under twice it (PIL only warns)
    40,  # 1600 pixels: over twice the limit (PIL raises DecompressionBombError)
])
def test_pixel_limit_is_the_setting_whichever_way_pil_reacts(tmp_path, monkeypatch, side):
    monkeypatch.setenv('DIGITS_MAX_IMAGE_PIXELS', '100')
    path = tmp_path / 'big.png'
    Image.new('L', (side, side)).save(path)
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # no DecompressionBombWarning escapes
        with pytest.raises(ImageError, match=f'too large: {side}x{side} pixels, over the limit of 100 '):
            load_image(path)
    small = tmp_path / 'small.png'
    Image.new('L', (10, 10)).save(small)
    assert load_image(small).size == (10, 10)  # exactly the limit is fine


def test_large_jpeg_decodes_at_a_reduced_scale_near_the_full_result(tmp_path):
    path = tmp_path / 'photo.jpg'
    Image.fromarray(_smooth_image(256, 320)).save(path, quality=95)
    image, info = load_image_info(path, target_size=(64, 48))
    assert image.size == (80, 64)  # 1/4: the largest reduction that keeps both sides >= 64
    assert (info['width'], info['height']) == (320, 256)  # the file's size, not the reduced one
    for mode in RESIZE_MODES:
        fast = resize_image(image, 48, 64, resize_mode=mode, rng=np.random.default_rng(0))
        full = resize_image(load_image(path), 48, 64, resize_mode=mode, rng=np.random.default_rng(0))
        assert fast.shape == full.shape
        assert np.abs(fast.astype(np.int16) - full).mean() < 1.5


def test_reduced_scale_only_when_the_target_size_remains(tmp_path):
    path = tmp_path / 'photo.jpg'
    Image.fromarray(_smooth_image(256, 256)).save(path)
    assert load_image(path, target_size=(200, 100)).size == (256, 256)  # 1/2 would be under 200
    assert load_image(path, target_size=(100, 128)).size == (128, 128)  # 1/2
    assert load_image(path, target_size=(16, 16)).size == (32, 32)  # 1/8 is the most JPEG offers
    png = tmp_path / 'photo.png'
    Image.fromarray(_smooth_image(256, 256)).save(png)
    assert load_image(png, target_size=(16, 16)).size == (256, 256)  # only JPEG decodes at a scale


def _smooth_image(height, width):
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // width, y * 255 // height, (x + y) * 255 // (width + height)], -1).astype(np.uint8)
