"""What a dataset keeps about each source image, besides its pixels: the
source's width, height and pixel mode before any conversion, whether an EXIF
orientation turned it, and a hash of its decoded pixels (for exact duplicates).
"""
import hashlib

import numpy as np
from PIL import Image

_GRAY_MODES = {"1", "L", "LA", "La", "I", "F"}
_MODE_NAMES = {"1": "grayscale", "L": "grayscale", "LA": "grayscale with alpha", "La": "grayscale with alpha",
               "RGB": "colour", "CMYK": "colour", "YCbCr": "colour", "LAB": "colour", "HSV": "colour",
               "RGBA": "colour with alpha", "RGBa": "colour with alpha", "P": "palette", "PA": "palette with alpha",
               "I": "32-bit grayscale", "F": "32-bit grayscale"}


def mode_name(mode: str) -> str:
    """A person's word for a PIL mode: grayscale, colour, colour with alpha, palette, 16-bit..."""
    if mode.startswith("I;16"):
        return "16-bit grayscale"
    return _MODE_NAMES.get(mode, mode)


def is_gray(mode: str) -> bool:
    """Whether a source in this PIL mode is grayscale (palette images count as colour, as DIGITS loads them)."""
    return mode in _GRAY_MODES or mode.startswith("I;16")


def pixel_hash(mode: str, size: tuple, data: bytes) -> bytes:
    """16 bytes that are equal for two images exactly when their decoded pixels are."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{mode} {size[0]}x{size[1]} ".encode())
    digest.update(data)
    return digest.digest()


def of_image(image: Image.Image, info: dict) -> dict:
    """The facts about a source image, from images.load_image_info's image (mode L or RGB, upright) and info
    (width, height and mode as stored in the file, whether an EXIF orientation was applied)."""
    return {"width": int(info["width"]), "height": int(info["height"]), "mode": info["mode"],
            "exif_rotated": bool(info["exif_rotated"]), "hash": pixel_hash(image.mode, image.size, image.tobytes())}


def of_array(pixels: np.ndarray) -> dict:
    """The facts about a sample a data plugin gave as an HxWxC array (it has no file mode nor EXIF)."""
    pixels = np.ascontiguousarray(pixels)
    height, width = pixels.shape[:2]
    mode = "L" if pixels.ndim == 2 or pixels.shape[2] == 1 else "RGB"
    return {"width": width, "height": height, "mode": mode, "exif_rotated": False,
            "hash": pixel_hash(f"{mode} {pixels.dtype}", (width, height), pixels.tobytes())}
