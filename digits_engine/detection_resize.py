"""Resize an image to the dataset size and map its boxes the same way.

Boxes are float (left, top, right, bottom) in pixels.  Each resize mode is a
scale followed by a shift (``Placement``), after which the boxes are clipped
to the stored image and any left without area are dropped:

* ``squash``    - both axes scaled to the target independently;
* ``crop``      - scaled to cover the target, centre kept: boxes are shifted
  by the cropped margin and cut to the kept window (some may vanish);
* ``fill``      - scaled to fit inside, noise-padded on both sides of the short
  axis: boxes are shifted by the padding before them;
* ``half_crop`` - scaled by the mean ratio, then cropped on one axis and
  padded on the other: both of the above;
* ``pad``       - as DIGITS' detection padding: the image is not scaled unless
  it is larger than the target (then it is scaled down, keeping its aspect
  ratio, to fit), and is padded with black on the right and bottom only, so
  boxes keep their position and only that scale applies.

The pixels of squash, crop, fill and half_crop come from
``images.resize_image``, so they match an image dataset's exactly.
"""
from dataclasses import dataclass

import numpy as np

from . import images

RESIZE_MODES = images.RESIZE_MODES + ("pad",)


@dataclass(frozen=True)
class Placement:
    """Where the source lands in the target: x' = x * scale_x + shift_x (same for y)."""
    scale_x: float
    scale_y: float
    shift_x: float
    shift_y: float


def placement(src_h, src_w, height, width, resize_mode) -> Placement:
    """How a src_h x src_w image is mapped into height x width by ``resize_mode``."""
    if resize_mode not in RESIZE_MODES:
        raise ValueError(f"unknown resize_mode {resize_mode!r}; valid modes: {', '.join(RESIZE_MODES)}")
    if resize_mode == "pad":
        new_h, new_w = _pad_scaled_size(src_h, src_w, height, width)
        return Placement(new_w / src_w, new_h / src_h, 0.0, 0.0)
    if resize_mode == "squash" or src_h / height == src_w / width:
        return Placement(width / src_w, height / src_h, 0.0, 0.0)
    # images.py's own geometry, so boxes follow the pixels resize_image makes.
    new_h, new_w = images.intermediate_size(resize_mode, src_h, src_w, height, width)
    return Placement(new_w / src_w, new_h / src_h, _shift(new_w, width), _shift(new_h, height))


def _shift(size, target) -> float:
    """Offset of the scaled image's origin: minus the cropped margin, or plus the padding before it."""
    if size > target:
        return -float(images.round_half_up((size - target) / 2.0))
    return float((target - size) // 2)


def _pad_scaled_size(src_h, src_w, height, width):
    scale = min(1.0, height / src_h, width / src_w)
    if scale == 1.0:
        return src_h, src_w
    return (min(height, max(1, images.round_half_up(src_h * scale))),
            min(width, max(1, images.round_half_up(src_w * scale))))


def map_boxes(boxes, where: Placement, height, width):
    """``(boxes, kept)``: boxes (N x 4) moved by ``where`` and clipped to width x height,
    without those left with no area; ``kept`` are the indices of the boxes that remain."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scale = np.array([where.scale_x, where.scale_y] * 2)
    shift = np.array([where.shift_x, where.shift_y] * 2)
    moved = boxes * scale + shift
    moved = np.clip(moved, 0.0, [width, height, width, height])
    kept = np.flatnonzero((moved[:, 2] > moved[:, 0]) & (moved[:, 3] > moved[:, 1]))
    return moved[kept].astype(np.float32), kept


def unmap_boxes(boxes, where: Placement, src_h, src_w):
    """Boxes found in the resized image (N x 4), back in the source image's pixels, clipped to it:
    the inverse of ``map_boxes`` for the boxes a model predicts (none are dropped)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scale = np.array([where.scale_x, where.scale_y] * 2)
    shift = np.array([where.shift_x, where.shift_y] * 2)
    return np.clip((boxes - shift) / scale, 0.0, [src_w, src_h, src_w, src_h])


def resize_image(image, height, width, channels=None, resize_mode="pad", rng=None):
    """``(pixels, where)``: the image as (height, width, C) uint8, as a detection dataset stores it,
    and the ``Placement`` that took it there (``unmap_boxes`` takes boxes back)."""
    src_h, src_w = _source_size(image)
    where = placement(src_h, src_w, height, width, resize_mode)
    if resize_mode == "pad":
        return _pad(image, height, width, channels), where
    return images.resize_image(image, height, width, channels, resize_mode, rng), where


def resize_with_boxes(image, boxes, height, width, channels=None, resize_mode="pad", rng=None):
    """``(pixels, boxes, kept)``: the image as (height, width, C) uint8 and its boxes mapped
    the same way (see ``map_boxes``).  ``image``, ``channels`` and ``rng`` are as for
    ``images.resize_image``."""
    pixels, where = resize_image(image, height, width, channels, resize_mode, rng)
    return (pixels, *map_boxes(boxes, where, height, width))


def _source_size(image):
    if hasattr(image, "size") and hasattr(image, "mode"):  # a PIL image
        return image.height, image.width
    return np.asarray(image).shape[:2]


def _pad(image, height, width, channels):
    array = images.set_channels(images.to_array(image), channels)
    new_h, new_w = _pad_scaled_size(*array.shape[:2], height, width)
    scaled = images.resize_image(array, new_h, new_w, resize_mode="squash")
    out = np.zeros((height, width, array.shape[2]), np.uint8)
    out[:new_h, :new_w] = scaled
    return out
