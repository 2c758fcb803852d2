"""Odd image files, written cheaply, for the loader's tests and the dataset corpus.

Each maker writes one file at `path` and returns it. `SKIPPED` maps a bad
file's name to the words its skip reason must hold; `LOADABLE` maps an odd
but readable file's name to its maker.
"""
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

EXIF_ORIENTATION = 0x0112
BOMB_SIDE = 20000


def empty(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def text_named_image(path: Path) -> Path:
    path.write_text("this is a text file, not an image\n")
    return path


def truncated(path: Path) -> Path:
    """The first half of a noisy image in the format of `path`'s extension."""
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)
    Image.fromarray(noise).save(path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    return path


def sixteen_bit_png(path: Path, values=(0, 257 * 10, 65535, 128 * 257, 1000)) -> Path:
    """A one-row 16-bit grayscale PNG holding `values`."""
    Image.fromarray(np.array([values], np.uint16)).save(path)
    return path


def palette_with_transparency(path: Path) -> Path:
    """8x4 palette PNG: index 0 (left half) fully transparent black, index 1 (right half) opaque red."""
    image = Image.new("P", (8, 4), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.paste(1, (4, 0, 8, 4))
    image.save(path, transparency=0)
    return path


def cmyk_jpeg(path: Path) -> Path:
    """A red CMYK JPEG (C=0, M=255, Y=255, K=0)."""
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(path, quality=95)
    return path


def one_pixel(path: Path) -> Path:
    Image.new("RGB", (1, 1), (10, 200, 30)).save(path)
    return path


def animated_gif(path: Path) -> Path:
    """Three frames: red, green, blue."""
    frames = [Image.new("RGB", (8, 8), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return path


def exif_rotated_jpeg(path: Path) -> Path:
    """Stored 30 wide x 10 high, left third red, the rest blue, with EXIF orientation 6
    (shown turned 90 degrees clockwise: 10 wide x 30 high, the red part on top)."""
    image = Image.new("RGB", (30, 10), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 10, 10))
    exif = image.getexif()
    exif[EXIF_ORIENTATION] = 6
    image.save(path, exif=exif.tobytes(), quality=95)
    return path


def plain_copy(path: Path) -> Path:
    """A small green image in the format of `path`'s extension (tiff, webp, ...), losslessly where it can."""
    Image.new("RGB", (12, 12), (20, 180, 40)).save(path, **({"lossless": True} if path.suffix == ".webp" else {}))
    return path


def bomb_png(path: Path, width: int = BOMB_SIDE, height: int = BOMB_SIDE) -> Path:
    """A valid grayscale PNG of width x height black pixels, written row by row (about 2 MB for
    20000x20000): decoding it would take width*height bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor, rows = zlib.compressobj(1), bytes((width + 1) * 100)  # filter byte 0 + pixels, 100 rows
    with open(path, "wb") as out:
        out.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)))
        parts = [compressor.compress(rows) for _ in range(height // 100)]
        parts.append(compressor.compress(bytes((width + 1) * (height % 100))))
        parts.append(compressor.flush())
        out.write(chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b""))
    return path


SKIPPED = {
    "empty.jpg": (empty, "is an empty file (0 bytes)"),
    "notes.jpg": (text_named_image, "is not an image"),
    "truncated.png": (truncated, "truncated or corrupt"),
    "truncated.jpg": (truncated, "truncated or corrupt"),
    "bomb.png": (bomb_png, f"too large: {BOMB_SIDE}x{BOMB_SIDE} pixels, over the limit of 100000000"),
}

LOADABLE = {
    "depth16.png": sixteen_bit_png,
    "palette_alpha.png": palette_with_transparency,
    "cmyk.jpg": cmyk_jpeg,
    "tiny.png": one_pixel,
    "animated.gif": animated_gif,
    "rotated.jpg": exif_rotated_jpeg,
    "photo.tiff": plain_copy,
    "photo.webp": plain_copy,
}
