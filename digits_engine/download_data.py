"""Example datasets on disk, in the DIGITS folder layout: `python -m digits_engine.download_data`.

Owns fetching and unpacking the datasets DIGITS' `tools/download_data` offered
(MNIST, CIFAR-10, CIFAR-100) and generating the offline `shapes` demo set.
Every dataset ends up as::

    DIR/labels.txt                      one class name per line
    DIR/train.txt, DIR/test.txt         lines "<absolute png path> <label index>"
    DIR/train/<class>/NNNNN.png
    DIR/test/<class>/NNNNN.png

(CIFAR-100 writes that layout twice, under DIR/fine and DIR/coarse.)
Archives are streamed into DIR/.downloads and reused on the next run; a
`train`/`test` folder that is rewritten is emptied first, as DIGITS did.
"""
import argparse
import gzip
import http.client
import os
import pickle
import shutil
import struct
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from digits_engine.errors import DigitsError

MNIST_URL = "http://yann.lecun.com/exdb/mnist/"
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/"
MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
               "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
CIFAR10_FILE = "cifar-10-python.tar.gz"
CIFAR100_FILE = "cifar-100-python.tar.gz"
SHAPE_CLASSES = ("circle", "square", "triangle")
SHAPE_SIZE = 32
DOWNLOADS = ".downloads"
TIMEOUT_S = 60


class DownloadError(DigitsError):
    """A dataset could not be fetched or unpacked; the message says why and what to try."""


# ---------------------------------------------------------------- writing

def _write_split(root: Path, phase: str, images: np.ndarray, labels, names) -> list[str]:
    """Write images as root/phase/<class>/%05d.png; return the "path index" lines."""
    phase_dir = root / phase
    if phase_dir.exists():
        shutil.rmtree(phase_dir)
    for name in names:
        (phase_dir / name).mkdir(parents=True, exist_ok=True)
    lines = []
    for index, (image, label) in enumerate(zip(images, labels)):
        path = phase_dir / names[label] / f"{index:05d}.png"
        Image.fromarray(image).save(path)
        lines.append(f"{path} {label}")
    return lines


def _write_lists(root: Path, names, splits: dict[str, list[str]]) -> None:
    """labels.txt and <phase>.txt. Written last, so their presence means the tree is complete."""
    (root / "labels.txt").write_text("".join(f"{n}\n" for n in names))
    for phase, lines in splits.items():
        (root / f"{phase}.txt").write_text("".join(f"{line}\n" for line in lines))


def _write_dataset(root: Path, names, phases: dict[str, tuple]) -> None:
    """phases: {"train": (images, labels), "test": (...)} -> the full DIGITS layout under root."""
    _check_names(names)
    for phase, (images, labels) in phases.items():
        if len(images) != len(labels) or any(not 0 <= label < len(names) for label in labels):
            raise DownloadError(f"The {phase} data has {len(images)} images and {len(labels)} labels, "
                                f"some outside the {len(names)} classes; the archive looks damaged.")
    root.mkdir(parents=True, exist_ok=True)
    splits = {p: _write_split(root, p, imgs, labels, names) for p, (imgs, labels) in phases.items()}
    _write_lists(root, names, splits)
    counts = ", ".join(f"{len(lines)} {p}" for p, lines in splits.items())
    print(f"Wrote {counts} images in {len(names)} classes to {root}")


def _check_names(names) -> None:
    for name in names:
        if not name or name in (".", "..") or "/" in name or "\\" in name:
            raise DownloadError(f"Class name {name!r} cannot be a folder name; the archive looks damaged.")


# ---------------------------------------------------------------- shapes

def _contrasting_colour(rng, background) -> np.ndarray:
    """A random colour whose brightness differs from the background's by at least 110 of 255."""
    luma = np.array([0.299, 0.587, 0.114])
    candidates = rng.integers(0, 256, (64, 3))
    usable = np.abs(candidates @ luma - luma @ background) >= 110
    if usable.any():
        return candidates[usable.argmax()]
    return np.full(3, 0 if luma @ background > 127 else 255)


def _shape_points(rng, kind: str, size: int) -> list[tuple[float, float]]:
    """Outline of one shape around (0, 0); size is the diameter or side length in pixels."""
    if kind == "circle":
        angles = np.linspace(0, 2 * np.pi, 32, endpoint=False)
        radius = size / 2
    elif kind == "square":
        angles = np.deg2rad(rng.uniform(-20, 20)) + np.pi / 4 + np.arange(4) * np.pi / 2
        radius = size / np.sqrt(2)
    else:
        angles = np.deg2rad(rng.uniform(-30, 30)) - np.pi / 2 + np.arange(3) * 2 * np.pi / 3
        radius = size / np.sqrt(3)
    return list(zip(radius * np.cos(angles), radius * np.sin(angles)))


def _shape_image(rng, kind: str) -> np.ndarray:
    """One 32x32 RGB image: a solid shape on a noisy background of another brightness."""
    background = rng.integers(0, 256, 3)
    img = Image.new("RGB", (SHAPE_SIZE, SHAPE_SIZE), tuple(int(c) for c in background))
    points = np.array(_shape_points(rng, kind, int(rng.integers(10, 25))))
    low, high = points.min(axis=0), points.max(axis=0)
    offset = rng.uniform(-low, SHAPE_SIZE - 1 - high)
    fill = tuple(int(c) for c in _contrasting_colour(rng, background))
    ImageDraw.Draw(img).polygon([tuple(p) for p in points + offset], fill=fill)
    noisy = np.asarray(img, np.int16) + rng.normal(0, 6, (SHAPE_SIZE, SHAPE_SIZE, 3)).astype(np.int16)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def _shape_split(seed: int, per_class: int) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    labels = [label for label in range(len(SHAPE_CLASSES)) for _ in range(per_class)]
    images = np.stack([_shape_image(rng, SHAPE_CLASSES[label]) for label in labels]) if labels else \
        np.zeros((0, SHAPE_SIZE, SHAPE_SIZE, 3), np.uint8)
    return images, labels


def make_shapes(out_dir, train_per_class: int = 800, test_per_class: int = 200, seed: int = 0) -> Path:
    """Generate the offline shapes dataset (no network); the same seed gives the same pixels."""
    root = Path(out_dir).expanduser().resolve()
    phases = {"train": _shape_split(seed * 2, train_per_class),
              "test": _shape_split(seed * 2 + 1, test_per_class)}
    _write_dataset(root, SHAPE_CLASSES, phases)
    return root


def ensure_shapes(out_dir, **kwargs) -> Path:
    """Generate the shapes dataset unless a complete one is already there; return its folder."""
    root = Path(out_dir).expanduser().resolve()
    if (root / "train").is_dir() and (root / "test.txt").is_file():
        return root
    return make_shapes(root, **kwargs)


# ---------------------------------------------------------------- downloading

def _source_url(base: str, filename: str) -> str:
    return base.rstrip("/") + "/" + filename


def fetch(url: str, downloads: Path) -> Path:
    """Stream url to downloads/<file name> via a temp file; an existing download is reused."""
    target = downloads / url.rstrip("/").rsplit("/", 1)[-1]
    if target.is_file():
        print(f"Using {target} (already downloaded)")
        return target
    downloads.mkdir(parents=True, exist_ok=True)
    print(f"Downloading {url} ...", flush=True)
    fd, tmp = tempfile.mkstemp(dir=downloads, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            shutil.copyfileobj(response, out, 1 << 20)
        os.replace(tmp, target)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise DownloadError(f"Could not download {url}: {_reason(exc)}. Check the network, or pass "
                            "--mirror URL with a server that has the same file names.") from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target


def _reason(exc: Exception) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__


def _damaged(path: Path, exc: Exception) -> DownloadError:
    return DownloadError(f"{path} is not a valid archive ({_reason(exc)}). "
                         "Delete it and run again to download it afresh.")


# ---------------------------------------------------------------- mnist

def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """An idx file (gzipped, big-endian header: magic 0x08<ndim>, then ndim sizes) as uint8."""
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
        magic, *dims = struct.unpack(f">{ndim + 1}I", data[:4 * (ndim + 1)])
        if magic != 0x0800 + ndim:
            raise ValueError(f"magic number {magic:#x}, expected {0x0800 + ndim:#x}")
        array = np.frombuffer(data, np.uint8, offset=4 * (ndim + 1))
        return array.reshape(dims)
    except (OSError, EOFError, struct.error, ValueError) as exc:
        raise _damaged(path, exc) from None


def build_mnist(root: Path, files: dict[str, Path]) -> None:
    """MNIST as 28x28 grayscale PNGs, inverted (dark digit on white) as DIGITS wrote them."""
    phases = {}
    for phase, prefix in (("train", "train"), ("test", "t10k")):
        images = _read_idx(files[f"{prefix}-images-idx3-ubyte.gz"], 3)
        labels = _read_idx(files[f"{prefix}-labels-idx1-ubyte.gz"], 1)
        phases[phase] = (255 - images, labels.tolist())
    _write_dataset(root, [str(d) for d in range(10)], phases)


# ---------------------------------------------------------------- cifar

class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles the CIFAR batches (dicts, lists, numpy arrays) and refuses anything else."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"),  # what the real (Python 2) files name
               ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("_codecs", "encode")}  # how Python 3 writes bytes at protocol 2, for re-packed mirrors

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected object {module}.{name} in the pickle")


def _read_pickles(archive: Path, top: str, names) -> dict[str, dict]:
    """Load top/<name> for each name from the tar.gz, as the real files need: encoding='bytes'."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            return {name: _ArrayUnpickler(tar.extractfile(f"{top}/{name}"), encoding="bytes").load()
                    for name in names}
    except (tarfile.TarError, OSError, EOFError, KeyError, pickle.UnpicklingError, ValueError) as exc:
        raise _damaged(archive, exc) from None


def _cifar_images(batch: dict) -> np.ndarray:
    """b'data' rows are 3072 bytes: the red, green, then blue 32x32 planes -> N x 32 x 32 x 3."""
    return np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


def _label_names(meta: dict, key: bytes) -> list[str]:
    return [n.decode() if isinstance(n, bytes) else str(n) for n in meta[key]]


def build_cifar10(root: Path, archive: Path) -> None:
    batches = [f"data_batch_{i}" for i in range(1, 6)]
    data = _read_pickles(archive, "cifar-10-batches-py", batches + ["test_batch", "batches.meta"])
    try:
        names = _label_names(data["batches.meta"], b"label_names")
        train = (np.concatenate([_cifar_images(data[b]) for b in batches]),
                 [int(label) for b in batches for label in data[b][b"labels"]])
        test = (_cifar_images(data["test_batch"]), [int(x) for x in data["test_batch"][b"labels"]])
    except (KeyError, ValueError, TypeError) as exc:
        raise _damaged(archive, exc) from None
    _write_dataset(root, names, {"train": train, "test": test})


def build_cifar100(root: Path, archive: Path) -> None:
    """CIFAR-100 twice: root/fine (100 classes) and root/coarse (20 superclasses)."""
    data = _read_pickles(archive, "cifar-100-python", ["train", "test", "meta"])
    for level in ("fine", "coarse"):
        try:
            names = _label_names(data["meta"], f"{level}_label_names".encode())
            phases = {p: (_cifar_images(data[p]), [int(x) for x in data[p][f"{level}_labels".encode()]])
                      for p in ("train", "test")}
        except (KeyError, ValueError, TypeError) as exc:
            raise _damaged(archive, exc) from None
        _write_dataset(root / level, names, phases)


# ---------------------------------------------------------------- entry points

SOURCES = {"mnist": (MNIST_URL, MNIST_FILES), "cifar10": (CIFAR_URL, (CIFAR10_FILE,)),
           "cifar100": (CIFAR_URL, (CIFAR100_FILE,))}
DATASETS = ("shapes",) + tuple(SOURCES)


def download(name: str, out_dir, mirror: str | None = None, clean: bool = False) -> Path:
    """Fetch (or generate) dataset `name` into out_dir; return the resolved folder."""
    root = Path(out_dir).expanduser().resolve()
    if name == "shapes":
        return make_shapes(root)
    if name not in SOURCES:
        raise DownloadError(f"Unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}.")
    base, filenames = SOURCES[name]
    downloads = root / DOWNLOADS
    files = {f: fetch(_source_url(mirror or base, f), downloads) for f in filenames}
    if name == "mnist":
        build_mnist(root, files)
    elif name == "cifar10":
        build_cifar10(root, files[CIFAR10_FILE])
    else:
        build_cifar100(root, files[CIFAR100_FILE])
    if clean:
        shutil.rmtree(downloads, ignore_errors=True)
        print(f"Removed {downloads}")
    return root


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m digits_engine.download_data",
        description="Download an example dataset (or generate the offline 'shapes' one) "
                    "as DIGITS-style train/ and test/ folders of PNGs.")
    parser.add_argument("name", metavar="NAME", help=f"one of: {', '.join(DATASETS)}")
    parser.add_argument("dir", metavar="DIR", help="folder to write the dataset into")
    parser.add_argument("--mirror", metavar="URL",
                        help="base URL to fetch the same file names from instead of the upstream site")
    parser.add_argument("--clean", action="store_true", help="delete the downloaded archives afterwards")
    parser.add_argument("--if-missing", action="store_true",
                        help="shapes only: leave a complete existing dataset as it is (used by `make run`)")
    return parser


def main(argv=None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error argparse already explained
        return int(exc.code or 0)
    try:
        if args.name == "shapes" and args.mirror:
            print("Note: shapes is generated locally; --mirror is ignored.")
        if args.name == "shapes" and args.if_missing:
            print(f"Demo dataset ready in {ensure_shapes(args.dir)}")
        else:
            download(args.name, args.dir, mirror=args.mirror, clean=args.clean)
    except DigitsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: could not write the dataset: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    except Exception as exc:  # a person runs this: one line, never a traceback
        print(f"error: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
