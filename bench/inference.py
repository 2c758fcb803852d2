"""Inference job ("classify many") throughput against `model.predict`, and its
peak memory against the number of images.

A dataset job builds generated images into LMDB and a model trains on them
for one epoch (both real jobs). Then, in the same run:

- the inference job classifies the dataset's split in a real worker; its rate
  is the one it records itself (results.json images_per_second): its
  prediction loop from the first batch read to the last row written (LMDB
  reads, decoding, prediction, the CSV rows and the metrics), excluding the
  worker's start-up, the TensorFlow import, loading the snapshot and tracing;
- `model.predict` on the same records, decoded beforehand into one float32
  array in memory, with the same snapshot and batch size, in this process
  (timed after a first warm-up call).

Both run on the CPU: inference jobs take dataset slots, which get no GPU.
Memory: the job runs on the first 1,000 and on all the images (two datasets)
while this process samples its worker's peak resident memory (VmHWM), and its
anonymous memory (RssAnon, every 20 ms: resident memory less the LMDB pages
the worker maps, which are the page cache's, not the worker's heap).

    python bench/inference.py [--images 5000] [--small 1000] [--size 32] [--rounds 3]

Prints `ratio inference job vs model.predict: X` (target: at least 0.8),
`ratio peak memory 5000/1000: X` and `ratio peak anonymous memory 5000/1000: X`
(target: about 1, independent of the count).
"""
import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["CUDA_VISIBLE_DEVICES"] = ""  # as the inference job's worker: the comparison is CPU against CPU
import keras  # noqa: E402
import numpy as np  # noqa: E402

from digits_engine import dataset_spec, inference_spec, job_actions, lmdb_store, model_spec, snapshots  # noqa: E402
from digits_engine.atomic_json import read_json  # noqa: E402
from digits_engine.image_records import read_record  # noqa: E402
from digits_engine.job_state import JobState  # noqa: E402
from digits_engine.job_store import JobStore  # noqa: E402
from train_throughput import CLASSES, write_images  # noqa: E402

BATCH = 64


def done(job, what: str):
    if job_actions.wait(job, timeout=3600) is not JobState.DONE:
        sys.exit(f"the {what} job ended {job.state}: see {job.log_path}")
    return job


def make_dataset_job(store: JobStore, folder: Path, size: int):
    """All the images in the train split (no validation split): the split the inference job reads."""
    return done(dataset_spec.create({"folder": str(folder), "name": f"bench {folder.name}", "val_pct": 0,
                                     "width": size, "height": size, "channels": 3, "seed": 0}, store), "dataset")


class WorkerMemory:
    """Samples the worker's /proc status until stopped: its peak resident memory (VmHWM), and the peak of
    its anonymous memory (RssAnon: the heap, leaving out the LMDB pages it maps, which the kernel can drop)."""

    def __init__(self, job):
        self.job, self.peaks, self.done = job, {"VmHWM": 0, "RssAnon": 0}, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def stop(self) -> dict:
        self.done.set()
        self.thread.join()
        return {k: v / 1024 for k, v in self.peaks.items()}  # KiB -> MiB

    def _run(self) -> None:
        while not self.done.wait(0.02):
            pid = self.job.status().get("pid")
            try:
                lines = Path(f"/proc/{pid}/status").read_text().splitlines() if pid else []
            except OSError:
                continue
            for line in lines:
                key = line.split(":")[0]
                if key in self.peaks:
                    self.peaks[key] = max(self.peaks[key], int(line.split()[1]))


def job_rate(store: JobStore, model, dataset, memory: bool = False) -> tuple[float, dict | None, int]:
    """(images/s the job recorded, peak MiB of its worker or None, images classified)."""
    job = inference_spec.create({"model": model.id, "dataset": dataset.id, "split": "train",
                                 "batch_size": BATCH}, store)
    sampler = WorkerMemory(job) if memory else None
    done(job, "inference")
    peak = sampler.stop() if sampler else None
    results = read_json(job.dir / "results.json")
    return results["images_per_second"], peak, results["count"]


def records_in_memory(dataset) -> np.ndarray:
    """The split's records decoded into one float32 N x H x W x C array (what model.predict is given)."""
    db = dataset.dir / "train"
    records = lmdb_store.read_range(db, 0, lmdb_store.count(db))
    return np.stack([read_record(r)[0] for r in records]).astype(np.float32)


def predict_rate(model_path: Path, pixels: np.ndarray) -> float:
    model = keras.models.load_model(model_path, compile=False)
    model.predict(pixels[:BATCH], batch_size=BATCH, verbose=0)  # tracing, not timed
    start = time.perf_counter()
    model.predict(pixels, batch_size=BATCH, verbose=0)
    return len(pixels) / (time.perf_counter() - start)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=5000, help="generated images (default 5000)")
    ap.add_argument("--small", type=int, default=1000, help="images of the smaller memory run (default 1000)")
    ap.add_argument("--size", type=int, default=32, help="side of the colour images (default 32)")
    ap.add_argument("--network", default="lenet", help="the model's network (default lenet)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved repeats; the best rate of each is reported")
    args = ap.parse_args()
    print(f"cores: {os.cpu_count()}")
    with tempfile.TemporaryDirectory(prefix="digits-inference-bench-") as tmp:
        tmp = Path(tmp)
        os.environ["DIGITS_JOBS_DIR"] = str(tmp / "jobs")
        os.environ.setdefault("DIGITS_GPUS", "none")
        store = JobStore(tmp / "jobs")
        print(f"writing {args.images} {args.size}x{args.size} PNG files...", flush=True)
        write_images(tmp / "all", args.images, args.size, 3, np.random.default_rng(0))
        dataset = make_dataset_job(store, tmp / "all", args.size)
        model = done(model_spec.create({"dataset": dataset.id, "name": "bench", "network": args.network,
                                        "epochs": 1, "batch_size": BATCH, "seed": 0}, store), "model")
        pixels = records_in_memory(dataset)
        best = {"job": 0.0, "predict": 0.0}
        for _ in range(args.rounds):
            rate, _, count = job_rate(store, model, dataset)
            assert count == len(pixels), (count, len(pixels))
            best["job"] = max(best["job"], rate)
            best["predict"] = max(best["predict"], predict_rate(snapshots.latest(model), pixels))
        print(f"images: {len(pixels)} {args.size}x{args.size} colour PNG records, {args.network}, batch {BATCH}, "
              f"{CLASSES} classes, best of {args.rounds} rounds")
        print(f"images/s inference job: {best['job']:.0f} (its own prediction loop: LMDB, decode, predict, CSV, "
              "metrics; worker start-up, TF import and model loading excluded)")
        print(f"images/s model.predict on the arrays in memory: {best['predict']:.0f}")
        print(f"ratio inference job vs model.predict: {best['job'] / best['predict']:.3f}", flush=True)
        small = make_dataset_job(store, _first(tmp, args.small), args.size)
        peaks = {}
        for what, data in ((args.small, small), (args.images, dataset)):
            _, peaks[what], _ = job_rate(store, model, data, memory=True)
            print(f"peak memory inference job worker, {what} images: {peaks[what]['VmHWM']:.0f} MiB resident, "
                  f"{peaks[what]['RssAnon']:.0f} MiB anonymous", flush=True)
        large, low = peaks[args.images], peaks[args.small]
        print(f"ratio peak memory {args.images}/{args.small}: {large['VmHWM'] / low['VmHWM']:.3f}")
        print(f"ratio peak anonymous memory {args.images}/{args.small}: {large['RssAnon'] / low['RssAnon']:.3f}")


def _first(tmp: Path, count: int) -> Path:
    """A folder of the first `count` generated images (hard links), class folders as in the full one."""
    target = tmp / f"first-{count}"
    files = sorted((tmp / "all").glob("*/*.png"), key=lambda p: p.name)[:count]
    for path in files:
        (target / path.parent.name).mkdir(parents=True, exist_ok=True)
        os.link(path, target / path.parent.name / path.name)
    return target


if __name__ == "__main__":
    sys.exit(main())
