"""Image loading and resizing with NVIDIA DIGITS semantics (numpy and PIL).

``load_image`` decodes a file into a PIL image in mode ``L`` or ``RGB`` using
DIGITS' mode rules (transparent images are composited over white; 16-bit
grayscale is scaled to 8 bits; the EXIF orientation is honoured).  It decodes
the pixels straight away, so a truncated or corrupt file fails here with an
``ImageError`` rather than later in the pipeline, and it refuses an image
over the pixel limit (``DIGITS_MAX_IMAGE_PIXELS``) from its header alone.

``resize_image`` returns a ``uint8`` array of shape ``(H, W, C)`` using one of
DIGITS' four resize modes:

* ``squash``    - resize straight to H x W, ignoring the aspect ratio;
* ``crop``      - resize so the image covers H x W, then keep the centre;
* ``fill``      - resize so the image fits inside H x W, then pad both sides
  of the short dimension with uniform random noise;
* ``half_crop`` - resize by the mean of the two ratios, centre-crop the
  dimension that is still too long and noise-pad the one that is too short.

Unlike DIGITS, the result always has a channel axis (``(H, W, 1)`` for
grayscale), which is what Keras expects.
"""

import math
import os
import warnings

import numpy as np
from PIL import Image, ImageOps

from . import config

SUPPORTED_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.ppm', '.pgm')
RESIZE_MODES = ('squash', 'crop', 'fill', 'half_crop')
CHANNEL_CHOICES = (None, 1, 3)
LOADABLE_MODES = ('1', 'L', 'LA', 'RGB', 'RGBA', 'P', 'PA', 'CMYK', 'YCbCr',
                  'I;16', 'I')

_EXIF_ORIENTATION = 0x0112
_GRAY_WEIGHTS = (0.299, 0.587, 0.114)
_WHITE = {'L': 255, 'RGB': (255, 255, 255)}
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError)


class ImageError(ValueError):
    """An image that cannot be opened, decoded or converted."""


def round_half_up(x):
    """Round to the nearest integer, halves away from zero for x >= 0.

    Python 3's ``round`` rounds halves to even; DIGITS ran on Python 2,
    whose ``round`` rounded 42.5 to 43.  This reproduces that.
    """
    return int(math.floor(x + 0.5))


# ---------------------------------------------------------------- loading


def load_image(path, target_size=None):
    """Open and decode an image file; return a PIL image in mode L or RGB.

    ``path`` is a filename, a path-like object or a binary file object.
    ``target_size`` is explained in ``load_image_info``.  Raises
    ``ImageError`` for a missing or empty file, a non-image, a truncated or
    corrupt file, an image over the pixel limit, or an unsupported pixel mode.
    """
    return load_image_info(path, target_size)[0]


def load_image_info(path, target_size=None):
    """``(image, info)``: the image as ``load_image`` returns it, and what the
    file held: ``{"width", "height", "mode", "exif_rotated"}`` (the size and
    PIL mode as stored, before any conversion; whether an EXIF orientation
    turned or flipped it).

    The first frame of an animated image is used.  An image over
    ``config.max_image_pixels()`` is refused from its header, before anything
    is decoded.  ``target_size`` ``(width, height)``, when given, is the size
    the image will be resized to: a JPEG at least twice as large decodes at a
    reduced scale (1/2, 1/4 or 1/8 in the DCT, libjpeg's own downscaling),
    never below the target, so the resize that follows only shrinks it
    further.  That is much faster, and the geometry of DIGITS' resize modes
    stays the same within a pixel (a scaled side is rounded up); the pixel
    values differ from a full-size bilinear resize by about one level.
    """
    name = _describe(path)
    try:
        with _open(path, name) as image:
            info = {'width': image.width, 'height': image.height,
                    'mode': image.mode, 'exif_rotated': False}
            if target_size:
                side = max(target_size)  # either side may end up the width after an EXIF turn
                image.draft(None, (side, side))
            image.load()
            image, info['exif_rotated'] = _honour_orientation(image)
            return to_l_or_rgb(image, name), info
    except ImageError:
        raise
    except Image.UnidentifiedImageError as exc:
        if _is_empty(path):
            raise ImageError(f'{name} is an empty file (0 bytes)') from exc
        raise ImageError(f'{name} is not an image (or not in a format that '
                         f'can be read)') from exc
    except FileNotFoundError as exc:
        raise ImageError(f'{name}: file not found') from exc
    except IsADirectoryError as exc:
        raise ImageError(f'{name} is a directory, not an image file') from exc
    except Image.DecompressionBombError as exc:
        raise _too_large(name, _header_size(path)) from exc
    except _DECODE_ERRORS as exc:
        raise ImageError(f'{name} could not be decoded (truncated or corrupt '
                         f'file?): {exc}') from exc


def _open(path, name):
    """Image.open (header only) with the pixel limit checked before decoding.

    PIL's own guard is set to the same limit: it raises past twice the limit
    (handled by the caller) and only warns between the two, which is the
    check below, with the image's size in the message.
    """
    limit = config.max_image_pixels()
    Image.MAX_IMAGE_PIXELS = limit
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', Image.DecompressionBombWarning)
        image = Image.open(path)
    if image.width * image.height > limit:
        image.close()
        raise _too_large(name, image.size)
    return image


def _too_large(name, size):
    limit = config.max_image_pixels()
    fix = 'raise DIGITS_MAX_IMAGE_PIXELS to read it'
    if size is None:
        return ImageError(f'{name} is too large: over the limit of {limit} '
                          f'pixels ({fix})')
    return ImageError(f'{name} is too large: {size[0]}x{size[1]} pixels, over '
                      f'the limit of {limit} ({fix})')


def _header_size(path):
    """The (width, height) in an image's header, read without PIL's
    decompression-bomb check (which refused it); nothing is decoded."""
    Image.init()
    try:
        fp = open(path, 'rb') if _is_path(path) else path
    except OSError:
        return None
    try:
        fp.seek(0)
        prefix = fp.read(16)
        for fmt in Image.ID:
            factory, accept = Image.OPEN[fmt]
            result = accept(prefix) if accept else True
            if isinstance(result, str) or not result:
                continue
            fp.seek(0)
            try:
                return factory(fp, '').size
            except Exception:  # noqa: BLE001 - not this format: try the next
                continue
        return None
    finally:
        if fp is not path:
            fp.close()


def _honour_orientation(image):
    """(image turned upright as its EXIF orientation says, whether it was turned)."""
    try:
        orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # noqa: BLE001 - unreadable EXIF: keep the image as stored
        return image, False
    if orientation not in range(2, 9):
        return image, False
    return ImageOps.exif_transpose(image), True


def _is_empty(path):
    try:
        if _is_path(path):
            return os.path.getsize(path) == 0
        return len(path.getbuffer()) == 0 if hasattr(path, 'getbuffer') else False
    except (OSError, ValueError):
        return False


def _is_path(path):
    return isinstance(path, (str, bytes, os.PathLike))


def to_l_or_rgb(image, name='image'):
    """Convert a PIL image to mode L or RGB following DIGITS' rules.

    1 -> L; LA -> L over white; CMYK, YCbCr -> RGB; RGBA, P, PA -> RGB over
    white; 16-bit grayscale (I;16 and its byte orders, and I, read as 16-bit)
    -> L scaled by 255/65535 (PIL's own conversion would clip at 255).  Any
    other mode raises ``ImageError``.
    """
    mode = image.mode
    if mode in ('L', 'RGB'):
        return image
    if mode == '1':
        return image.convert('L')
    if mode == 'I' or mode.startswith('I;16'):
        return _sixteen_bit_to_l(image)
    if mode == 'LA':
        return _over_white(image, 'L')
    if mode in ('CMYK', 'YCbCr'):
        return image.convert('RGB')
    if mode in ('RGBA', 'P', 'PA'):
        return _over_white(image.convert('RGBA'), 'RGB')
    raise ImageError(f'{name} has unsupported pixel mode {mode!r} '
                     f'(supported: {", ".join(LOADABLE_MODES)})')


def _sixteen_bit_to_l(image):
    wide = np.clip(np.asarray(image), 0, 65535).astype(np.uint32)
    return Image.fromarray(((wide * 2 + 257) // 514).astype(np.uint8))  # round(v / 257)


def _over_white(image, mode):
    """Composite an image that has an alpha channel over a white background."""
    background = Image.new(mode, image.size, _WHITE[mode])
    background.paste(image.convert(mode), mask=image.getchannel('A'))
    return background


def _describe(path):
    if _is_path(path):
        return repr(os.fsdecode(path))
    return repr(getattr(path, 'name', 'image data'))


# ---------------------------------------------------------------- resizing


def resize_image(image, height, width, channels=None, resize_mode='squash',
                 rng=None):
    """Resize an image to ``(height, width, C)`` uint8 with a DIGITS mode.

    ``image`` is a PIL image or an ndarray of shape HxW, HxWx1 or HxWx3.
    ``channels`` is 1, 3, or None to keep the source's channel count.
    ``resize_mode`` is one of ``RESIZE_MODES`` (None means squash).
    ``rng`` is a ``numpy.random.Generator`` for the noise padding of fill
    and half_crop; a fresh unseeded one is used when it is None.
    """
    resize_mode = resize_mode or 'squash'
    _check_resize_args(height, width, channels, resize_mode)
    source = _resizable(image, channels)
    src_h, src_w = _height_width(source)
    if (src_h, src_w) == (height, width):
        return _bilinear(source, height, width)
    height_ratio, width_ratio = src_h / height, src_w / width
    if resize_mode == 'squash' or height_ratio == width_ratio:
        return _bilinear(source, height, width)
    size = intermediate_size(resize_mode, src_h, src_w, height, width)
    array = _centre_crop(_bilinear(source, *size), height, width)
    rng = np.random.default_rng() if rng is None else rng
    return np.ascontiguousarray(_noise_pad(array, height, width, rng))


def _check_resize_args(height, width, channels, resize_mode):
    for label, value in (('height', height), ('width', width)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f'{label} must be a positive integer, got {value!r}')
    if channels not in CHANNEL_CHOICES:
        raise ValueError(f'channels must be one of {CHANNEL_CHOICES} '
                         f'(None keeps the source), got {channels!r}')
    if resize_mode not in RESIZE_MODES:
        raise ValueError(f'unknown resize_mode {resize_mode!r}; '
                         f'valid modes: {", ".join(RESIZE_MODES)}')


def to_array(image):
    """Return a new uint8 array of shape (H, W, 1) or (H, W, 3)."""
    if isinstance(image, Image.Image):
        image = np.array(to_l_or_rgb(image))
    if not isinstance(image, np.ndarray):
        raise TypeError(f'expected a PIL image or a numpy array, '
                        f'got {type(image).__name__}')
    if image.ndim == 2:
        image = image[:, :, np.newaxis]
    if image.ndim != 3 or image.shape[2] not in (1, 3) or 0 in image.shape:
        raise ValueError(f'image array must have shape HxW, HxWx1 or HxWx3, '
                         f'got {image.shape}')
    if image.dtype.kind not in 'buif':
        raise ValueError(f'image array must be numeric, got dtype {image.dtype}')
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255)
    return np.array(image, dtype=np.uint8)


def set_channels(array, channels):
    """Convert an (H, W, C) uint8 array to 1 or 3 channels (None: unchanged).

    Colour -> gray is DIGITS' truncating 0.299/0.587/0.114 dot product;
    gray -> colour repeats the single channel.
    """
    if channels is None or array.shape[2] == channels:
        return array
    if channels == 1:
        gray = np.dot(array[:, :, :3], _GRAY_WEIGHTS).astype(np.uint8)
        return gray[:, :, np.newaxis]
    return np.repeat(array, 3, axis=2)


def intermediate_size(mode, src_h, src_w, height, width):
    """(h, w) to resize to before cropping and/or padding, as DIGITS does."""
    height_ratio, width_ratio = src_h / height, src_w / width
    wider = width_ratio > height_ratio
    if mode == 'crop':
        if wider:
            return height, round_half_up(src_w / height_ratio)
        return round_half_up(src_h / width_ratio), width
    if mode == 'fill':
        if wider:
            return _even_gap(round_half_up(src_h / width_ratio), height), width
        return height, _even_gap(round_half_up(src_w / height_ratio), width)
    ratio = (width_ratio + height_ratio) / 2.0  # half_crop
    new_h, new_w = round_half_up(src_h / ratio), round_half_up(src_w / ratio)
    if wider:
        return _even_gap(new_h, height), max(new_w, 1)
    return max(new_h, 1), _even_gap(new_w, width)


def _even_gap(size, target):
    """Bump ``size`` by one if needed so ``target - size`` splits evenly."""
    size = max(size, 1)
    return size + (target - size) % 2 if size < target else size


def _resizable(image, channels):
    """The source as a PIL image in mode L or RGB when its channels stay as they
    are (resizing it directly saves copying the full-size pixels twice), else
    as an (H, W, C) uint8 array with the channels converted."""
    if isinstance(image, Image.Image):
        image = to_l_or_rgb(image)
        if channels in (None, len(image.getbands())):
            return image
    return set_channels(to_array(image), channels)


def _height_width(source):
    if isinstance(source, Image.Image):
        return source.height, source.width
    return source.shape[:2]


def _bilinear(source, height, width):
    """``source`` (a PIL image or an (H, W, C) array) resized to an (height, width, C) uint8 array."""
    if isinstance(source, Image.Image):
        if source.size != (width, height):
            source = source.resize((width, height), Image.Resampling.BILINEAR)
        return to_array(source)
    array = source
    if array.shape[:2] == (height, width):
        return array
    pil = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
    resized = np.array(pil.resize((width, height), Image.Resampling.BILINEAR))
    return resized.reshape(height, width, array.shape[2])


def _centre_crop(array, height, width):
    """Keep the centre of any dimension longer than the target."""
    h, w = array.shape[:2]
    top = round_half_up((h - height) / 2.0) if h > height else 0
    left = round_half_up((w - width) / 2.0) if w > width else 0
    return array[top:top + height, left:left + width]


def _noise_pad(array, height, width, rng):
    """Pad any dimension shorter than the target with uniform noise, both sides."""
    for axis, target in ((0, height), (1, width)):
        missing = target - array.shape[axis]
        if missing > 0:
            before = _noise(array.shape, axis, missing // 2, rng)
            after = _noise(array.shape, axis, missing - missing // 2, rng)
            array = np.concatenate((before, array, after), axis=axis)
    return array


def _noise(shape, axis, length, rng):
    shape = list(shape)
    shape[axis] = length
    # DIGITS draws np.random.randint(0, 255): values 0..254.
    return rng.integers(0, 255, size=shape, dtype=np.uint8)
