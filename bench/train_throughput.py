"""Training throughput of our whole path (image files -> dataset job -> LMDB ->
tf.data -> training step in a real worker) against two baselines measured in
the same run on the same images and the same network:

- plain Keras `fit` on the pixels held in memory as numpy arrays;
- `keras.utils.image_dataset_from_directory` reading the same image files.

And the cost of progress reporting: the same fit over our pipeline, in one
process, with our callbacks (metrics to progress.jsonl, status, LR policy)
and with none. Rates are images/s over the epochs after the first.

    python bench/train_throughput.py [--images 10000] [--colour-images 2000] [--epochs 4]

Prints lines `ratio <what>: <number>`.
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
from PIL import Image  # noqa: E402

from digits_engine import dataset_spec, job_actions, model_spec  # noqa: E402
from digits_engine.atomic_json import read_json  # noqa: E402
from digits_engine.job_store import JobStore  # noqa: E402
from digits_engine.stop_token import StopToken  # noqa: E402
from digits_engine.training import networks  # noqa: E402
from digits_engine.training.callbacks import JobProgress, LearningRatePolicy  # noqa: E402
from digits_engine.training.input_pipeline import make_dataset  # noqa: E402
from digits_engine.training.preprocessing import preprocessor  # noqa: E402

BATCH = 64
CLASSES = 10


class EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)


def write_images(root: Path, n: int, size: int, channels: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """root/<class>/<i>.png, learnable (a bright pixel at the class's place) and the same pixels in memory."""
    labels = rng.integers(0, CLASSES, n)
    pixels = rng.integers(0, 255, (n, size, size, channels), dtype=np.uint8)
    pixels[np.arange(n), labels, labels] = 255
    for i, (p, y) in enumerate(zip(pixels, labels)):
        folder = root / f"class_{y}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(p[:, :, 0] if channels == 1 else p).save(folder / f"{i:05d}.png")
    return pixels, labels


def compiled(network: str, shape, stats: dict) -> keras.Model:
    model = networks.build(network, shape, CLASSES, preprocessor({}, stats))
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return model


def rate(n: int, seconds: list[float]) -> float:
    """images/s over the epochs after the first (tracing and caches happen in the first)."""
    return n * (len(seconds) - 1) / sum(seconds[1:])


def timed_fit(model: keras.Model, data, n: int, epochs: int, callbacks=(), **kwargs) -> float:
    timer = EpochTimer()
    model.fit(data, epochs=epochs, verbose=0, callbacks=[*callbacks, timer], **kwargs)
    return rate(n, timer.seconds)


def worker_rate(store: JobStore, folder: Path, network: str, size: int, channels: int, epochs: int):
    """Build the dataset and train with real jobs; images/s from the worker's own per-epoch records."""
    dataset = dataset_spec.create({"folder": str(folder), "name": "bench", "val_pct": 0, "width": size,
                                   "height": size, "channels": channels, "seed": 0}, store)
    job_actions.wait(store.get(dataset.id))
    model = model_spec.create({"dataset": dataset.id, "name": "bench", "network": network, "epochs": epochs,
                               "batch_size": BATCH, "seed": 0}, store)
    job_actions.wait(store.get(model.id))
    records = [r for r in store.get(model.id).metrics() if "time/epoch_seconds" in r]
    if store.get(model.id).state.value != "Done" or len(records) != epochs:
        sys.exit(f"the bench model did not finish: see {model.dir / 'log.txt'}")
    stats = read_json(dataset.dir / "stats.json")
    n = sum(stats["totals"].values())
    return rate(n, [r["time/epoch_seconds"] for r in records]), dataset, stats


def reporting_ratio(store: JobStore, dataset, stats: dict, network: str, shape, epochs: int) -> float:
    """Our pipeline and model in this process: with the worker's reporting callbacks / with none."""
    n = stats["totals"]["train"]
    data = make_dataset(dataset.dir / "train", shape, "png", BATCH, shuffle=True, seed=0)
    steps = -(-n // BATCH)
    job = store.create("model", "reporting", {"epochs": epochs, "lr": 0.01, "snapshot_interval": epochs},
                       parents=[dataset.id])
    params = dict(job.params)
    reporting = [LearningRatePolicy(params, steps * epochs), JobProgress(job, StopToken(job.dir / "abort"), epochs,
                                                                       steps, n)]
    on = timed_fit(compiled(network, shape, stats), data, n, epochs, callbacks=reporting)
    off = timed_fit(compiled(network, shape, stats), data, n, epochs)
    return on / off


def bench(name: str, network: str, n: int, size: int, channels: int, epochs: int, root: Path) -> None:
    rng = np.random.default_rng(0)
    folder = root / f"{name}-images"
    pixels, labels = write_images(folder, n, size, channels, rng)
    store = JobStore(root / f"{name}-jobs")
    ours, dataset, stats = worker_rate(store, folder, network, size, channels, epochs)
    shape = (size, size, channels)
    memory = timed_fit(compiled(network, shape, stats), pixels.astype(np.float32), n, epochs, y=labels,
                       batch_size=BATCH, shuffle=True)
    files = keras.utils.image_dataset_from_directory(folder, image_size=(size, size), batch_size=BATCH, seed=0,
                                                     color_mode="grayscale" if channels == 1 else "rgb", verbose=False)
    from_files = timed_fit(compiled(network, shape, stats), files.prefetch(2), n, epochs)
    reporting = reporting_ratio(store, dataset, stats, network, shape, epochs)
    print(f"{name}: {n} images {channels}x{size}x{size}, {network}, batch {BATCH}, {epochs} epochs (first not timed)")
    print(f"  images/s worker job (LMDB, tf.data):  {ours:.0f}")
    print(f"  images/s keras in-memory arrays:      {memory:.0f}")
    print(f"  images/s image_dataset_from_directory: {from_files:.0f}")
    print(f"ratio {name} vs keras in-memory: {ours / memory:.3f}")
    print(f"ratio {name} vs image_dataset_from_directory: {ours / from_files:.3f}")
    print(f"ratio {name} progress reporting on/off: {reporting:.3f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=10000, help="28x28 grayscale images for LeNet")
    ap.add_argument("--colour-images", type=int, default=2000, help="64x64 colour images for AlexNet")
    ap.add_argument("--epochs", type=int, default=4)
    args = ap.parse_args()
    print(f"cores: {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["DIGITS_JOBS_DIR"] = str(Path(tmp) / "jobs")
        os.environ.setdefault("DIGITS_GPUS", "none")
        bench("lenet-28x28-gray", "lenet", args.images, 28, 1, args.epochs, Path(tmp))
        if args.colour_images:
            bench("alexnet-64x64-colour", "alexnet", args.colour_images, 64, 3, max(args.epochs - 1, 2), Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
