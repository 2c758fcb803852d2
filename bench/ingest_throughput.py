"""Dataset ingest throughput: a real dataset job (worker process, process pool)
against a plain single-process loop doing the same work (load, resize, encode,
write LMDB), on the same generated folder, in the same run.

    python bench/ingest_throughput.py [--images 3000] [--size 256]

Prints `ratio ingest_job_vs_single_process: X` (above 1: the job is faster).
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from digits_engine import dataset_spec, job_actions, lmdb_store
from digits_engine.folder_parse import parse_folder
from digits_engine.image_records import make_record
from digits_engine.images import load_image, resize_image
from digits_engine.job_store import JobStore

CLASSES = ("a", "b", "c")


def make_folder(root: Path, n: int, size: int) -> None:
    rng = np.random.default_rng(0)
    for i in range(n):
        folder = root / CLASSES[i % 3]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(folder / f"{i}.jpg", quality=90)


def single_process(folder: Path, out: Path) -> float:
    start = time.perf_counter()
    split = parse_folder(folder, val_pct=25, seed=0)
    for name in ("train", "val"):
        writer = lmdb_store.Writer(out / name)
        for path, label in getattr(split, name):
            pixels = resize_image(load_image(path), 32, 32, channels=3, resize_mode="squash")
            writer.append(make_record(pixels, label, "png"))
        writer.close()
    return time.perf_counter() - start


def dataset_job(folder: Path, jobs: Path) -> float:
    os.environ["DIGITS_JOBS_DIR"] = str(jobs)
    start = time.perf_counter()
    job = dataset_spec.create({"name": "bench", "folder": str(folder), "seed": 0}, JobStore(jobs))
    state = job_actions.wait(job, timeout=600)
    if state.value != "Done":
        sys.exit(f"the dataset job ended {state}: {job.log_tail()}")
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=3000)
    ap.add_argument("--size", type=int, default=256)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_folder(tmp / "images", args.images, args.size)
        plain = single_process(tmp / "images", tmp / "plain")
        ours = dataset_job(tmp / "images", tmp / "jobs")
    print(f"images/s single process: {args.images / plain:.0f}")
    print(f"images/s dataset job:    {args.images / ours:.0f}  ({os.cpu_count()} cores)")
    print(f"ratio ingest_job_vs_single_process: {plain / ours:.3f}")


if __name__ == "__main__":
    main()
