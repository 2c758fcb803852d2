"""Dataset ingest: speed against a plain loop, and peak memory against the dataset's size.

Speed: a real dataset job (detached worker, process pool, LMDB) builds 64x64
colour PNG records from generated 256x256 JPEG files; a straightforward loop in
this process does the same work on the same files (PIL open, resize, encode
PNG, LMDB put). Both are timed in this run, from start to a finished database.

Memory: the job runs again on two dataset sizes while this process samples
VmHWM (peak resident memory) of the worker and of every process it starts;
the job's peak is their sum. It must not grow with the dataset.

    python bench/ingest.py [--images 20000] [--memory-images 10000 40000] [--size 256] [--target 64]

Prints `ratio ingest job vs single loop: X`, `cores: N`, `ratio per core: X/N`
(target: at least 0.85) and `ratio peak memory 40k/10k: X` (target: under 1.2).
"""
import argparse
import io
import json
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

from digits_engine import dataset_spec, job_actions, lmdb_store
from digits_engine.job_store import JobStore

CLASSES = ("red", "green", "blue", "grey")
TINTS = {"red": (200, 60, 50), "green": (60, 190, 70), "blue": (50, 80, 210), "grey": (128, 128, 128)}


# ------------------------------------------------------------------ source images

def _write_images(args) -> None:
    root, start, stop, size = args
    rng = np.random.default_rng(start)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    for i in range(start, stop):
        name = CLASSES[i % len(CLASSES)]
        phase = rng.uniform(0, 6.28, 3)
        waves = np.stack([np.sin(6 * x + phase[0]), np.sin(5 * y + phase[1]), np.sin(4 * (x + y) + phase[2])], -1)
        pixels = np.asarray(TINTS[name], np.float32) + 50 * waves + rng.normal(0, 8, (size, size, 3))
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(root / name / f"{i:06d}.jpg", quality=90)


def make_images(root: Path, count: int, size: int) -> None:
    """root/<class>/<n>.jpg: photo-like gradients with noise, written by every core."""
    for name in CLASSES:
        (root / name).mkdir(parents=True, exist_ok=True)
    step = 500
    jobs = [(root, start, min(start + step, count), size) for start in range(0, count, step)]
    with multiprocessing.get_context("spawn").Pool() as pool:
        pool.map(_write_images, jobs)


def first_images(source: Path, target: Path, count: int) -> Path:
    """A folder of the first `count` images of `source`, as hard links (no copying)."""
    for name in CLASSES:
        (target / name).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        name = CLASSES[i % len(CLASSES)]
        os.link(source / name / f"{i:06d}.jpg", target / name / f"{i:06d}.jpg")
    return target


# ------------------------------------------------------------------ the two ways

def single_loop(folder: Path, out: Path, target: int) -> tuple[float, int]:
    """(seconds, images): open, resize, encode PNG, put in LMDB, one image after the other."""
    start = time.perf_counter()
    paths = sorted(p for name in CLASSES for p in (folder / name).iterdir())
    writer = lmdb_store.Writer(out)
    for path in paths:
        with Image.open(path) as image:
            small = image.convert("RGB").resize((target, target), Image.Resampling.BILINEAR)
        buffer = io.BytesIO()
        small.save(buffer, format="PNG", compress_level=1)  # what our records use
        writer.append(buffer.getvalue())
    writer.close()
    lmdb_store.close_env(out)
    return time.perf_counter() - start, len(paths)


def dataset_job(folder: Path, jobs: Path, target: int, memory: bool = False) -> tuple[float, float | None, dict]:
    """(seconds from submit to Done, peak MiB of the job's processes or None, stats.json)."""
    os.environ["DIGITS_JOBS_DIR"] = str(jobs)
    start = time.perf_counter()
    job = dataset_spec.create({"name": "bench", "folder": str(folder), "width": target, "height": target,
                               "channels": 3, "encoding": "png", "seed": 0}, JobStore(jobs))
    sampler = PeakMemory(job) if memory else None
    state = job_actions.wait(job, timeout=3600, poll=0.02)
    seconds = time.perf_counter() - start
    peak = sampler.stop() if sampler else None
    if state.value != "Done":
        sys.exit(f"the dataset job ended {state.value}: {job.log_tail()}")
    return seconds, peak, json.loads((job.dir / "stats.json").read_text())


class PeakMemory:
    """Samples VmHWM of the job's worker and of every process under it until stopped."""

    def __init__(self, job):
        self.job, self.peaks, self.done = job, {}, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def stop(self) -> float:
        self.done.set()
        self.thread.join()
        return sum(self.peaks.values()) / 1024  # KiB -> MiB

    def _run(self) -> None:
        while not self.done.wait(0.05):
            pid = self.job.status().get("pid")
            if pid:
                for p in _process_tree(pid):
                    hwm = _vm_hwm_kib(p)
                    if hwm:
                        self.peaks[p] = max(self.peaks.get(p, 0), hwm)


def _process_tree(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                todo += [int(c) for c in Path(f"/proc/{p}/task/{task}/children").read_text().split()]
        except OSError:
            continue
    return found


def _vm_hwm_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


# ------------------------------------------------------------------ main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=20000, help="images for the speed comparison (default 20000)")
    ap.add_argument("--memory-images", type=int, nargs=2, default=(10000, 40000), metavar=("SMALL", "LARGE"),
                    help="the two dataset sizes whose peak memory is compared (default 10000 40000)")
    ap.add_argument("--size", type=int, default=256, help="side of the source JPEGs (default 256)")
    ap.add_argument("--target", type=int, default=64, help="side of the records (default 64)")
    args = ap.parse_args()
    small, large = sorted(args.memory_images)
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="digits-ingest-bench-") as tmp:
        tmp = Path(tmp)
        print(f"writing {max(args.images, large)} {args.size}x{args.size} JPEG files...", flush=True)
        make_images(tmp / "all", max(args.images, large), args.size)
        speed = first_images(tmp / "all", tmp / "speed", args.images)
        plain, count = single_loop(speed, tmp / "plain", args.target)
        ours, _, stats = dataset_job(speed, tmp / "jobs-speed", args.target)
        assert sum(stats["totals"].values()) == count, stats["totals"]
        ratio = plain / ours
        print(f"images: {count} {args.size}x{args.size} JPEG -> {args.target}x{args.target} PNG records")
        print(f"images/s single loop: {count / plain:.0f}")
        print(f"images/s dataset job: {count / ours:.0f} (worker start, listing, pool and mean included)")
        print(f"ratio ingest job vs single loop: {ratio:.3f}")
        print(f"cores: {cores}")
        print(f"ratio per core: {ratio / cores:.3f}", flush=True)
        peaks = {}
        for n in (small, large):
            folder = first_images(tmp / "all", tmp / f"memory-{n}", n)
            _, peaks[n], _ = dataset_job(folder, tmp / f"jobs-memory-{n}", args.target, memory=True)
            print(f"peak RSS dataset job, {n} images: {peaks[n]:.0f} MiB (worker and its processes)", flush=True)
        print(f"ratio peak memory {_k(large)}/{_k(small)}: {peaks[large] / peaks[small]:.3f}")


def _k(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


if __name__ == "__main__":
    main()
