"""Training throughput: our LMDB -> tf.data pipeline against plain Keras on
in-memory arrays, same LeNet, same data, same run.

    python bench/train_throughput.py [--images 6000] [--size 28] [--epochs 3]

Prints `ratio train_lmdb_vs_memory: X` (1.0 = as fast as in-memory arrays).
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras  # noqa: E402
import numpy as np  # noqa: E402

from digits_engine import lmdb_store  # noqa: E402
from digits_engine.image_records import make_record  # noqa: E402
from digits_engine.training import networks  # noqa: E402
from digits_engine.training.input_pipeline import make_dataset  # noqa: E402
from digits_engine.training.preprocessing import preprocessor  # noqa: E402


def images(n, size, rng):
    labels = rng.integers(0, 10, n)
    pixels = rng.integers(0, 255, (n, size, size, 1), dtype=np.uint8)
    pixels[np.arange(n), labels, labels] = 255  # learnable, not that it matters for speed
    return pixels, labels


def write_lmdb(path, pixels, labels):
    writer = lmdb_store.Writer(path)
    for p, y in zip(pixels, labels):
        writer.append(make_record(p, int(y), "png"))
    writer.close()


def fit_rate(data, n, epochs, shape, batch=64, **fit_kwargs):
    model = networks.build("lenet", shape, 10, preprocessor({}, {"pixel_mean": [127.0], "pixel_std": [70.0]}))
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(data, epochs=1, verbose=0, **fit_kwargs)  # warm-up: tracing, caches
    start = time.perf_counter()
    model.fit(data, epochs=epochs, verbose=0, **fit_kwargs)
    return n * epochs / (time.perf_counter() - start)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=6000)
    ap.add_argument("--size", type=int, default=28)
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    pixels, labels = images(args.images, args.size, rng)
    shape = (args.size, args.size, 1)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "train"
        write_lmdb(db, pixels, labels)
        ours = fit_rate(make_dataset(db, shape, "png", 64, shuffle=True, seed=0), args.images, args.epochs, shape)
    plain = fit_rate(pixels.astype(np.float32), args.images, args.epochs, shape, y=labels, batch_size=64, shuffle=True)
    print(f"images/s in-memory arrays: {plain:.0f}")
    print(f"images/s LMDB pipeline:    {ours:.0f}")
    print(f"ratio train_lmdb_vs_memory: {ours / plain:.3f}")


if __name__ == "__main__":
    sys.exit(main())
