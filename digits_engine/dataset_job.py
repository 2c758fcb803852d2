"""Builds an image classification dataset: folder -> split -> resized,
encoded records in train/ val/ test/ LMDBs, labels.txt, mean.png, stats.json,
and index/ (what each record came from: record_index).

Decoding and resizing use every core (a process pool, fed in chunks, so memory
does not grow with the dataset). A file that cannot be read is skipped and
listed in stats.json with its reason; the job fails only if nothing is left.
"""
import concurrent.futures as cf
import multiprocessing
import os
import random
import resource
import shutil
import time
from pathlib import Path

import numpy as np
from PIL import Image

from . import credentials, image_source, lmdb_store
from .atomic_json import write_json
from .bounded_map import bounded_map
from .errors import DatasetError
from .image_records import make_record
from .images import ImageError
from .job_store import Job
from .stop_token import StopToken

CHUNK = 64
IN_FLIGHT_PER_PROCESS = 2
SPLITS = ("train", "val", "test")


class _Sums:
    """Running pixel sums of the train split: the mean image and per-channel mean/std."""

    def __init__(self, height: int, width: int, channels: int):
        self.image = np.zeros((height, width, channels), np.float64)
        self.squares = np.zeros(channels, np.float64)
        self.count = 0

    def add(self, image_sum: np.ndarray, channel_squares: np.ndarray, count: int) -> None:
        self.image += image_sum
        self.squares += channel_squares
        self.count += count

    def summary(self) -> dict:
        n = max(self.count, 1)
        mean_image = self.image / n
        pixels = n * mean_image.shape[0] * mean_image.shape[1]
        channel_mean = self.image.sum(axis=(0, 1)) / pixels
        channel_var = np.maximum(self.squares / pixels - channel_mean ** 2, 0.0)
        return {"mean_image": np.around(mean_image).astype(np.uint8),
                "pixel_mean": channel_mean.tolist(), "pixel_std": np.sqrt(channel_var).tolist()}


def encode_chunk(items: list[tuple[str, int]], params: dict, seed: int, how: dict) -> dict:
    """Load, resize and encode a chunk of (path or key, label). Runs in a pool process."""
    rng = np.random.default_rng(seed)
    records, skipped = [], []
    h, w, c = params["height"], params["width"], params["channels"]
    image_sum = np.zeros((h, w, c), np.float64)
    squares = np.zeros(c, np.float64)
    for path, label in items:
        try:
            pixels, label, source = image_source.encode_item(path, label, params, how, rng)
        except (ImageError, OSError, ValueError) as exc:
            skipped.append({"path": image_source.item_name(path), "reason": str(exc)})
            continue
        info = {**source, "name": image_source.item_name(path), "label": label, "classes": _classes_in(label)}
        if isinstance(label, dict):  # detection: box counts for stats.json, the sample's warnings listed
            info.update(label=-1, objects=label["classes"].tolist(), dontcare=label["dontcare"])
            skipped += [{"path": info["name"], "reason": problem} for problem in label["problems"]]
        records.append((make_record(pixels, label, params["encoding"]), info))
        image_sum += pixels
        squares += np.einsum("hwc,hwc->c", pixels, pixels, dtype=np.uint64)  # exact, and twice as fast as floats
    return {"records": records, "skipped": skipped, "image_sum": image_sum, "squares": squares}


def _classes_in(label) -> list[int]:
    """The classes a sample counts for: its label, or every class its mask or boxes hold."""
    if isinstance(label, dict):
        return np.unique(label["classes"]).tolist()
    return np.unique(label).tolist() if isinstance(label, np.ndarray) else [label]


def _chunks(items):
    for start in range(0, len(items), CHUNK):
        yield items[start:start + CHUNK]


def _executor(total: int):
    if total < 4 * CHUNK:
        return None  # starting processes costs more than it saves
    workers = max(1, min(os.cpu_count() or 1, total // CHUNK))
    return cf.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))


def _in_flight_limit() -> int:
    """Chunks submitted to the pool and not yet written: enough to keep every process busy while the
    parent writes, few enough that the parent's memory does not depend on the dataset's size."""
    return IN_FLIGHT_PER_PROCESS * (os.cpu_count() or 1)


class _Progress:
    """Writes progress to status.json at most twice a second."""

    def __init__(self, job: Job, total: int):
        self.job, self.total, self.done, self.last = job, max(total, 1), 0, 0.0

    def advance(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last > 0.5 or self.done >= self.total:
            self.job.update_status(progress=round(self.done / self.total * 0.99, 4))
            self.last = now


def _write_split(job: Job, name: str, items, params, how, executor, progress, sums, stop) -> dict:
    from . import record_index  # here, not at the top: spawned pool processes import this module, need no pyarrow
    writer = lmdb_store.Writer(job.dir / name)
    index = record_index.Writer(job.dir, name)  # row i describes LMDB record i
    counts: dict[int, int] = {}  # images per class (for masks: images holding the class)
    skipped: list[dict] = []
    objects: dict[int, int] = {}  # detection: boxes per class
    dontcare = 0
    base = (params.get("seed") or 0) * 1_000_003 + SPLITS.index(name) * 100_003
    # chunk i gets seed base + i: noise padding reproducible for a given seed
    calls = ((chunk, params, base + i, how) for i, chunk in enumerate(_chunks(items)))
    results = bounded_map(executor, encode_chunk, calls, _in_flight_limit()) if executor \
        else (encode_chunk(*call) for call in calls)
    try:
        for result in results:
            for record, info in result["records"]:
                writer.append(record)
                index.add(info)
                for label in info["classes"]:
                    counts[label] = counts.get(label, 0) + 1
                for label in info.get("objects", ()):
                    objects[label] = objects.get(label, 0) + 1
                dontcare += info.get("dontcare", 0)
            skipped += result["skipped"]
            if name == "train":
                sums.add(result["image_sum"], result["squares"], len(result["records"]))
            progress.advance(len(result["records"]) + len(result["skipped"]))
            if stop.requested:
                break
    finally:
        results.close()  # cancels the chunks not started (after a stop)
        writer.close()
        index.close()
    return {"counts": counts, "skipped": skipped, "written": writer.count, "objects": objects, "dontcare": dontcare}


PLUGIN_STATE = "plugin.json"  # a data plugin's userdata after itemize_entries
OUTPUTS = (*SPLITS, "labels.txt", "mean.png", "mean.npy", "stats.json", "s3_copy", PLUGIN_STATE,
           "index")  # record_index.FOLDER


def run(job: Job, stop: StopToken) -> None:
    """Build the dataset; on failure or abort remove what was half-written, so that nothing unusable remains."""
    secrets = credentials.take(job)
    try:
        _build(job, secrets, stop)
    except BaseException as exc:
        _remove_outputs(job)
        if (full := lmdb_store.space_full(exc, f"the dataset in {job.dir}")) not in (None, exc):
            raise full from exc
        raise
    if stop.requested:
        _remove_outputs(job)


def _build(job: Job, secrets: dict, stop: StopToken) -> None:
    params = job.params
    split = image_source.list_and_split(params, secrets)
    if params.get("source") == "plugin":
        # what the plugin settled while listing (a generated seed, a reference size) is what encodes;
        # its secret fields stay in memory, handed to the encoding processes, never written
        userdata = image_source.data_plugin(params["plugin"], {**params["options"], **secrets}).get_user_data()
        write_json(job.dir / PLUGIN_STATE, {k: v for k, v in userdata.items() if k not in secrets})
        params = image_source.plugin_image_spec({**params, "options": {**userdata, **secrets}}, split)
    print(f"found {len(split.labels)} classes: {', '.join(split.labels)}", flush=True)
    for message in split.warnings:
        print("warning:", message, flush=True)
    (job.dir / "labels.txt").write_text("".join(f"{label}\n" for label in split.labels))
    shuffle = random.Random(params.get("seed"))  # records in mixed class order, for sequential readers
    keep_order = params.get("textfile_shuffle") is False  # text-file lists with shuffle off: the lists' order
    splits = {name: list(items) if keep_order else shuffle.sample(items, len(items))
              for name in SPLITS if (items := getattr(split, name))}
    how = image_source.reader(params, secrets, job.dir / "s3_copy" if params.get("s3_keep_copy") else None)
    progress = _Progress(job, sum(len(v) for v in splits.values()))
    sums = _Sums(params["height"], params["width"], params["channels"])
    executor = _executor(progress.total)
    results = {}
    try:
        for name, items in splits.items():
            print(f"writing {len(items)} {name} images", flush=True)
            results[name] = _write_split(job, name, items, params, how, executor, progress, sums, stop)
            if stop.requested:
                return
    finally:
        if executor:
            executor.shutdown(cancel_futures=True)
        print(_peak_memory(), flush=True)
    _finish(job, params, split, results, sums)


def _peak_memory() -> str:
    """The log line of the most memory the worker and (once shut down) any of its pool processes held."""
    worker = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    pool = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return f"peak memory: worker {worker:.0f} MiB" + (f", pool processes up to {pool:.0f} MiB each" if pool else "")


def _remove_outputs(job: Job) -> None:
    for name in OUTPUTS:
        path = job.dir / name
        if path.is_dir():
            lmdb_store.close_env(path)
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _finish(job: Job, params: dict, split, results: dict, sums: _Sums) -> None:
    written = {name: r["written"] for name, r in results.items()}
    skipped = [s for r in results.values() for s in r["skipped"]]
    skipped += [{"path": path, "reason": reason} for path, reason in split.ignored_files]
    for s in skipped:
        print(f"skipped {s['path']}: {s['reason']}", flush=True)
    if not written.get("train"):
        examples = "; ".join(f"{Path(s['path']).name}: {s['reason']}" for s in skipped[:3])
        raise DatasetError(f"No training image could be read from {image_source.describe(job.params)}: "
                           f"{len(skipped)} file(s) skipped, e.g. {examples}. The log lists them all.")
    summary = sums.summary()
    mean = summary.pop("mean_image")
    Image.fromarray(mean[:, :, 0] if mean.shape[2] == 1 else mean).save(job.dir / "mean.png")
    np.save(job.dir / "mean.npy", mean)
    labels = _label_names(split.labels, results)
    stats = {
        "task": job.spec.get("task", "classification"),
        "labels": labels,
        "counts": {name: {labels[i]: n for i, n in sorted(r["counts"].items())} for name, r in results.items()},
        "totals": written,
        "total": sum(written.values()),
        "image": {k: params[k] for k in ("width", "height", "channels", "resize_mode", "encoding")},
        "skipped_files": skipped,
        "skipped_classes": [{"class": c, "reason": r} for c, r in split.skipped_classes],
        "warnings": split.warnings,
        "db_bytes": {name: _folder_bytes(job.dir / name) for name in results},
        **summary,
    }
    if stats["task"] == "detection":
        stats["objects"] = {name: {labels[i]: n for i, n in sorted(r["objects"].items())}
                            for name, r in results.items()}
        stats["dontcare"] = {name: r["dontcare"] for name, r in results.items()}
    from . import dataset_health  # here, not at the top: pool processes import this module, need no pandas
    stats["health"] = dataset_health.summary(job.dir, stats)
    _log_health(stats["health"])
    write_json(job.dir / "stats.json", stats)


def _log_health(health: dict) -> None:
    found = {"duplicate image(s) within a split": health["duplicates"],
             "val/test image(s) identical to an image of an earlier split": health["cross_split_duplicates"],
             f"class(es) with fewer than {health['threshold']} training images": len(health["classes_below_threshold"]),
             "EXIF-rotated photo(s), turned upright": health["exif_rotated"]}
    for what, n in found.items():
        if n:
            print(f"health: {n} {what}", flush=True)
    if health["mixed_modes"]:
        print("health: grayscale and colour sources are mixed: "
              + ", ".join(f"{n} {mode}" for mode, n in health["modes"].items()), flush=True)


def _label_names(labels: list[str], results: dict) -> list[str]:
    """The class names, extended with numbers for class ids that a plugin did not name."""
    top = max((i for r in results.values() for i in r["counts"]), default=-1)
    return list(labels) + [str(i) for i in range(len(labels), top + 1)]


def _folder_bytes(path: Path) -> int:
    # st_blocks, not st_size: the LMDB data file is sparse and its size is the whole map
    return sum(f.stat().st_blocks * 512 for f in Path(path).glob("*") if f.is_file())
