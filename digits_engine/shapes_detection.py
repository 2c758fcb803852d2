"""The offline object-detection demo set: coloured shapes on noise, labelled in KITTI format.

``python -m digits_engine.download_data shapes-detection DIR`` writes::

    DIR/train/images/NNNNN.png    128x128 RGB, 1-4 shapes each
    DIR/train/labels/NNNNN.txt    one 15-field KITTI line per shape
    DIR/val/images/..., DIR/val/labels/...
    DIR/classes.txt               circle, square, triangle; written last, so
                                  its presence means the set is complete

The class is the shape (circle, square or triangle); the colour is random,
chosen only to stand out from the background, so a detector has to learn
shapes, not colours.  Shapes are 16-48 px across, placed at random wholly
inside the image, and may overlap (a box always covers the whole shape, even
where a later one is drawn over it).  The same seed gives the same files.
"""
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from digits_engine.download_data import SHAPE_CLASSES, _contrasting_colour, _shape_points

IMAGE_SIZE = 128
MIN_SHAPE, MAX_SHAPE = 16, 48
MAX_SHAPES = 4
NOISE_SIGMA = 10
CLASSES_FILE = "classes.txt"


def _draw_shape(rng, canvas: Image.Image, background) -> tuple[str, tuple[int, int, int, int]]:
    """Draw one random shape on canvas; return its class and its exact (left, top, right, bottom) box."""
    kind = SHAPE_CLASSES[rng.integers(len(SHAPE_CLASSES))]
    points = np.array(_shape_points(rng, kind, int(rng.integers(MIN_SHAPE, MAX_SHAPE + 1))))
    low, high = points.min(axis=0), points.max(axis=0)
    outline = [tuple(p) for p in points + rng.uniform(-low, IMAGE_SIZE - 1 - high)]
    mask = Image.new("L", canvas.size, 0)
    ImageDraw.Draw(mask).polygon(outline, fill=255)
    canvas.paste(tuple(int(c) for c in _contrasting_colour(rng, background)), mask=mask)
    return kind, mask.getbbox()


def _scene(rng) -> tuple[np.ndarray, list[str]]:
    """One noisy image with 1-4 shapes, and its KITTI label lines."""
    background = rng.integers(0, 256, 3)
    canvas = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), tuple(int(c) for c in background))
    objects = [_draw_shape(rng, canvas, background) for _ in range(rng.integers(1, MAX_SHAPES + 1))]
    noise = rng.normal(0, NOISE_SIGMA, (IMAGE_SIZE, IMAGE_SIZE, 3))
    pixels = np.clip(np.asarray(canvas, np.float64) + noise, 0, 255).astype(np.uint8)
    return pixels, [kitti_line(kind, box) for kind, box in objects]


def kitti_line(kind: str, box) -> str:
    """A 15-field KITTI line: the class, the 2-D box, and zeros for what a 2-D set has not got."""
    left, top, right, bottom = box
    return f"{kind} 0.00 0 0.00 {left:.2f} {top:.2f} {right:.2f} {bottom:.2f} " + " ".join(["0.00"] * 7)


def _write_split(root: Path, split: str, count: int, rng) -> None:
    split_dir = root / split
    if split_dir.exists():
        shutil.rmtree(split_dir)
    (split_dir / "images").mkdir(parents=True)
    (split_dir / "labels").mkdir()
    for index in range(count):
        pixels, lines = _scene(rng)
        Image.fromarray(pixels).save(split_dir / "images" / f"{index:05d}.png")
        (split_dir / "labels" / f"{index:05d}.txt").write_text("".join(f"{line}\n" for line in lines))


def make_shapes_detection(out_dir, n_train: int = 400, n_val: int = 100, seed: int = 0) -> Path:
    """Generate the detection demo set under out_dir (no network); return the resolved folder."""
    root = Path(out_dir).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    (root / CLASSES_FILE).unlink(missing_ok=True)
    for offset, (split, count) in enumerate((("train", n_train), ("val", n_val))):
        _write_split(root, split, count, np.random.default_rng([seed, offset]))
    (root / CLASSES_FILE).write_text("".join(f"{name}\n" for name in SHAPE_CLASSES))
    print(f"Wrote {n_train} train and {n_val} val images with KITTI labels "
          f"({', '.join(SHAPE_CLASSES)}) to {root}")
    return root


def ensure_shapes_detection(out_dir, **kwargs) -> Path:
    """Generate the set unless a complete one is already there; return its folder."""
    root = Path(out_dir).expanduser().resolve()
    if (root / CLASSES_FILE).is_file() and (root / "train" / "labels").is_dir():
        return root
    return make_shapes_detection(root, **kwargs)
