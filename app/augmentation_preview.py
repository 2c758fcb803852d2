"""A grid of training images as the augmentation will show them to the network:
the same numpy code the worker runs, on the first images of the chosen dataset."""
import numpy as np
from PIL import Image

from digits_engine import augmentation, lmdb_store
from digits_engine.image_records import read_record
from digits_engine.job_state import JobState
from digits_engine.job_store import Job

SAMPLES = 6
VARIANTS = 3
SHOWN_PX = 96


def sample_images(dataset: Job, count: int = SAMPLES) -> np.ndarray | None:
    """The first `count` training images (N,H,W,C uint8), or None while the dataset is not built."""
    if dataset.state is not JobState.DONE or not dataset.artifact("train").exists():
        return None
    total = lmdb_store.count(dataset.artifact("train"))
    step = max(total // count, 1)
    records = lmdb_store.read_indices(dataset.artifact("train"), list(range(0, min(total, step * count), step)))
    return np.stack([read_record(r)[0] for r in records]) if records else None


def variants(images: np.ndarray, options: dict, seed: int = 0) -> list[np.ndarray]:
    """The originals, then VARIANTS augmented copies of the batch."""
    rng = np.random.default_rng(seed)
    return [images] + [augmentation.augment(images, options, rng) for _ in range(VARIANTS)]


def shown(pixels: np.ndarray) -> Image.Image:
    """One image scaled up (nearest, so pixels stay visible) for the grid."""
    image = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)
    scale = max(SHOWN_PX // max(image.size), 1)
    return image.resize((image.width * scale, image.height * scale), Image.NEAREST)
