"""Training throughput of our whole path (image files -> dataset job -> LMDB ->
tf.data -> training step in a real worker) against two baselines measured in
the same run on the same images and the same network:

- plain Keras `fit` on the pixels held in memory as numpy arrays;
- `keras.utils.image_dataset_from_directory` reading the same image files.

And the cost of progress reporting: the same fit over our pipeline, in one
process, with our callbacks (metrics to progress.jsonl, status, LR policy)
and with none (the per-batch and per-epoch records; snapshots are written
after an epoch's timing ends). The in-process runs take one epoch each in
turn, so that a slow spell of the machine falls on all of them alike. A rate
is images/s of the median epoch, over the epochs after the first (tracing and
caches happen in the first) of every round: on a shared machine identical
epochs can differ by a factor of two.

    python bench/train_throughput.py [--images 10000] [--colour-images 500] [--epochs 4] [--rounds 2]

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
from digits_engine.training.epoch_plan import EpochPlan  # noqa: E402
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


def worker_epochs(store: JobStore, folder: Path, network: str, size: int, channels: int, epochs: int, dataset=None):
    """Build the dataset (once) and train with a real job; the worker's own records of its epochs after the first."""
    if dataset is None:
        dataset = dataset_spec.create({"folder": str(folder), "name": "bench", "val_pct": 0, "width": size,
                                       "height": size, "channels": channels, "seed": 0}, store)
        job_actions.wait(store.get(dataset.id))
    model = model_spec.create({"dataset": dataset.id, "name": "bench", "network": network, "epochs": epochs,
                               "batch_size": BATCH, "seed": 0}, store)
    job_actions.wait(store.get(model.id))
    records = [r for r in store.get(model.id).metrics() if "time/epoch_seconds" in r]
    if store.get(model.id).state.value != "Done" or len(records) != epochs:
        sys.exit(f"the bench model did not finish: see {model.dir / 'log.txt'}")
    return [r["time/epoch_seconds"] for r in records][1:], dataset, read_json(dataset.dir / "stats.json")


def reporting_callbacks(store: JobStore, dataset, n: int, epochs: int) -> list:
    """The worker's reporting: metrics to progress.jsonl and status.json, and the LR policy."""
    steps = -(-n // BATCH)
    job = store.create("model", "reporting", {"epochs": epochs, "lr": 0.01, "snapshot_interval": epochs},
                       parents=[dataset.id])
    plan = EpochPlan.for_job(job.params, steps)  # one snapshot, after the last epoch: not metric writing
    return [LearningRatePolicy(dict(job.params), steps * epochs),
            JobProgress(job, StopToken(job.dir / "abort"), epochs, steps, n, plan=plan)]


def interleaved_epochs(runs: dict, epochs: int) -> dict[str, list[float]]:
    """runs: name -> (model, fit kwargs). One epoch of each in turn, so that a slow spell of the machine
    falls on all of them alike; the seconds of each epoch after the first."""
    seconds = {name: [] for name in runs}
    for epoch in range(epochs):
        for name, (model, kwargs) in runs.items():
            timer = EpochTimer()  # first: its epoch ends before a callback's end-of-epoch work begins
            kwargs = dict(kwargs)
            callbacks = [timer, *kwargs.pop("callbacks", [])]
            model.fit(initial_epoch=epoch, epochs=epoch + 1, verbose=0, callbacks=callbacks, **kwargs)
            if epoch:
                seconds[name] += timer.seconds
    return seconds


def bench(name: str, network: str, n: int, size: int, channels: int, epochs: int, rounds: int, root: Path) -> None:
    """Each figure is the median of the timed epochs pooled over `rounds`; in a round the worker job
    runs first, then the in-process runs one epoch each in turn."""
    rng = np.random.default_rng(0)
    folder = root / f"{name}-images"
    pixels, labels = write_images(folder, n, size, channels, rng)
    store = JobStore(root / f"{name}-jobs")
    shape = (size, size, channels)
    files = keras.utils.image_dataset_from_directory(folder, image_size=(size, size), batch_size=BATCH, seed=0,
                                                     color_mode="grayscale" if channels == 1 else "rgb", verbose=False)
    pooled: dict[str, list[float]] = {}
    dataset = stats = None
    for _ in range(rounds):
        ours, dataset, stats = worker_epochs(store, folder, network, size, channels, epochs, dataset)
        ingested = make_dataset(dataset.dir / "train", shape, "png", BATCH, shuffle=True, seed=0)
        runs = {"memory": (compiled(network, shape, stats), {"x": pixels.astype(np.float32), "y": labels,
                                                             "batch_size": BATCH, "shuffle": True}),
                "files": (compiled(network, shape, stats), {"x": files.prefetch(2)}),
                "reporting on": (compiled(network, shape, stats),
                                 {"x": ingested, "callbacks": reporting_callbacks(store, dataset, n, epochs)}),
                "reporting off": (compiled(network, shape, stats), {"x": ingested})}
        seconds = {"worker": ours, **interleaved_epochs(runs, epochs)}
        pooled = {k: pooled.get(k, []) + v for k, v in seconds.items()}
    best = {k: n / float(np.median(v)) for k, v in pooled.items()}  # images/s of the median epoch
    print(f"{name}: {n} images {channels}x{size}x{size}, {network}, batch {BATCH}, {epochs} epochs (first not "
          f"timed), median of {rounds * (epochs - 1)} epochs from {rounds} rounds")
    for what, label in (("worker", "worker job (LMDB, tf.data)"), ("memory", "keras in-memory arrays"),
                        ("files", "image_dataset_from_directory"), ("reporting on", "in-process, reporting on"),
                        ("reporting off", "in-process, reporting off")):
        print(f"  images/s {label}: {best[what]:.0f}")
    print(f"ratio {name} vs keras in-memory: {best['worker'] / best['memory']:.3f}")
    print(f"ratio {name} vs image_dataset_from_directory: {best['worker'] / best['files']:.3f}")
    print(f"ratio {name} progress reporting on/off: {best['reporting on'] / best['reporting off']:.3f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=10000, help="28x28 grayscale images for LeNet")
    ap.add_argument("--colour-images", type=int, default=500, help="64x64 colour images for AlexNet")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2, help="interleaved repeats, their epochs pooled")
    args = ap.parse_args()
    print(f"cores: {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["DIGITS_JOBS_DIR"] = str(Path(tmp) / "jobs")
        os.environ.setdefault("DIGITS_GPUS", "none")
        bench("lenet-28x28-gray", "lenet", args.images, 28, 1, args.epochs, args.rounds, Path(tmp))
        if args.colour_images:
            bench("alexnet-64x64-colour", "alexnet", args.colour_images, 64, 3, args.epochs, args.rounds,
                  Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
