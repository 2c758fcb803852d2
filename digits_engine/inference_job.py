"""Runs an inference job (the worker's runner for kind "inference"): a model's
snapshot classifies a stream of images in batches, and the job folder gets

    predictions.csv  one row per image, written as the job goes
    results.json     metrics (classification_metrics), unreadable images, throughput
    confusion.csv    the confusion matrix, when the images have labels

Images come from a dataset split's LMDB through the training input pipeline
(decoded in parallel, in the graph), or from files prepared by a small thread
pool while the previous batch is predicted. Neither the images nor the
probabilities are ever all in memory. What the job asks for is checked by
inference_spec; the files are read back by inference_results. A detection
model's job is detection_inference's (detections.jsonl, mAP), with these
sources.
"""
import csv
import itertools
import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np
import pyarrow.parquet as pq
import tensorflow as tf

from . import inference, inference_spec, lmdb_store, record_index, snapshots
from .atomic_json import read_json, write_json
from .classification_metrics import MetricsAccumulator
from .errors import DigitsError, JobNotFound
from .images import ImageError
from .inference_results import HEADER
from .job_store import Job, JobStore
from .stop_token import StopToken
from .training.input_pipeline import make_dataset

MAX_ERRORS = 1000  # unreadable images listed in results.json and the log (all are counted)
PROGRESS_EVERY_S = 0.5
LOOKAHEAD = 2  # file batches being prepared while one is predicted


class Batch(NamedTuple):
    pixels: object  # B x H x W x C float32: a numpy array or a tensor
    images: list  # file paths, or a dataset record's source name
    records: list | None  # LMDB indices (a dataset source)
    labels: np.ndarray  # class indices, -1 where unknown
    truths: list | None = None  # a detection dataset's {"boxes", "classes"} per image
    places: list | None = None  # per file, how it was resized: (placement, height, width) for detection


class Skipped:
    """Unreadable images (and bad list lines): all counted; the first MAX_ERRORS kept and logged."""

    def __init__(self):
        self.listed, self.count = [], 0

    def add(self, image, error: str) -> None:
        self.count += 1
        if len(self.listed) < MAX_ERRORS:
            self.listed.append({"image": str(image), "error": error})
            print(f"skipped {image}: {error}", flush=True)


class Source(NamedTuple):
    total: int  # images to classify (unreadable ones included)
    labels: list  # the model's classes, then classes only the true labels name
    batches: object  # an iterator of Batch
    skipped: Skipped  # filled as unreadable images are met


# ------------------------------------------------------------------ dataset split

def record_names(dataset: Job, split: str):
    """Each record's source file name, in LMDB order (record_index), streamed."""
    path = record_index.table_path(dataset.dir, split)
    if not path.exists():  # a dataset built before names were kept
        yield from (f"{split} record {i}" for i in itertools.count())
        return
    for chunk in pq.ParquetFile(path).iter_batches(batch_size=1024, columns=["name"]):
        yield from chunk.column(0).to_pylist()


def check_dataset_size(dataset: Job, info: dict) -> tuple[dict, tuple]:
    """(stats.json, its image shape H, W, C), or DigitsError when the model takes another size."""
    stats = read_json(dataset.dir / "stats.json") or {}
    image, want = stats.get("image", {}), info["image"]
    shape = (image.get("height"), image.get("width"), image.get("channels"))
    if shape != (want["height"], want["width"], want["channels"]):
        raise DigitsError(f"Dataset {dataset.name!r} holds {shape[1]}x{shape[0]} images with {shape[2]} channel(s); "
                          f"the model takes {want['width']}x{want['height']}x{want['channels']}. Classify a dataset "
                          "built at the model's size, or list its image files.")
    return stats, shape


def dataset_source(job: Job, store: JobStore, info: dict) -> Source:
    try:
        dataset, split = store.get(job.params["dataset"]), job.params["split"]
    except JobNotFound:
        raise DigitsError(f"The dataset {job.params['dataset']} to classify was deleted.") from None
    stats, shape = check_dataset_size(dataset, info)
    image = stats["image"]
    labels = list(info["labels"])
    labels += [name for name in stats["labels"] if name not in labels]  # true classes the model cannot predict
    to_model = np.array([labels.index(name) for name in stats["labels"]], np.int64)
    db = dataset.dir / split
    data = make_dataset(db, shape, image["encoding"], job.params["batch_size"], shuffle=False,
                        task="classification", crop=info.get("crop"), cache=False)

    def batches():
        names, start = record_names(dataset, split), 0
        for pixels, y in data:
            n = int(pixels.shape[0])
            named = list(itertools.islice(names, n))
            named += [f"{split} record {i}" for i in range(start + len(named), start + n)]  # an index cut short
            yield Batch(pixels, named, list(range(start, start + n)), to_model[y.numpy()])
            start += n
    return Source(lmdb_store.count(db), labels, batches(), Skipped())


# ------------------------------------------------------------------ files

def _items(job: Job, labels: list[str], skipped: Skipped, boxes: bool):
    """(path to read, name in the CSV, class index or -1) per image; bad list lines go to `skipped`."""
    params = job.params
    if params["source"] == "list":
        for number, image, label, bad in inference_spec.iter_list(params["list_file"], labels, boxes):
            if bad is None:
                yield image, image, -1 if label is None else label
            else:
                skipped.add(f"{params['list_file']}, line {number}", str(bad))
        return
    yield from ((image, image, -1) for image in params["images"])
    yield from ((job.dir / inference_spec.UPLOADS / name, f"{inference_spec.UPLOADS}/{name}", -1)
                for name in params.get("uploads", []))


def _count_items(job: Job) -> int:
    if job.params["source"] == "list":
        return sum(1 for _ in inference_spec.iter_list(job.params["list_file"], None))
    return len(job.params["images"]) + len(job.params.get("uploads", []))


def file_source(job: Job, info: dict, pool: ThreadPoolExecutor, prepare=None, boxes: bool = False) -> Source:
    """Files in batches. prepare(path) -> (pixels, place): by default inference.prepare's pixels (no place);
    `boxes`: a detection model's list (lines without labels)."""
    labels, skipped = list(info["labels"]), Skipped()
    spec, crop, size = info["image"], info.get("crop"), job.params["batch_size"]
    prepare = prepare or (lambda path: (inference.prepare(path, spec, crop), None))

    def prepare_chunk(chunk):
        return [(item, pool.submit(prepare, item[0])) for item in chunk]

    def collect(prepared) -> Batch | None:
        kept, pixels, places = [], [], []
        for (path, name, label), future in prepared:
            try:
                image, place = future.result()
                pixels.append(image)
                places.append(place)
                kept.append((name, label))
            except (ImageError, OSError, ValueError) as exc:
                skipped.add(name, str(exc))
        if not kept:
            return None
        return Batch(np.stack(pixels), [str(n) for n, _ in kept], None, np.array([l for _, l in kept], np.int64),
                     places=places)

    def batches():
        items, pending = _items(job, labels, skipped, boxes), deque()
        while chunk := list(itertools.islice(items, size)):
            pending.append(prepare_chunk(chunk))
            if len(pending) > LOOKAHEAD and (batch := collect(pending.popleft())) is not None:
                yield batch
        while pending:
            if (batch := collect(pending.popleft())) is not None:
                yield batch
    return Source(_count_items(job), labels, batches(), skipped)


# ------------------------------------------------------------------ the loop

def _predictor(model, shape, softmax: bool = True):
    """probabilities (or raw outputs) = predict(B x H x W x C float32): one graph for every batch size,
    traced here."""
    @tf.function(input_signature=[tf.TensorSpec([None, *shape], tf.float32)])
    def predict(pixels):
        outputs = tf.cast(model(pixels, training=False), tf.float32)
        return tf.nn.softmax(outputs, axis=-1) if softmax else outputs
    predict(tf.zeros([1, *shape]))
    return predict


def csv_rows(first_row: int, batch: Batch, probabilities: np.ndarray, labels: list[str], top: int):
    """The predictions.csv rows of one batch."""
    k = min(top, probabilities.shape[1])
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    best = np.take_along_axis(probabilities, order, 1).tolist()  # Python floats format faster than numpy's
    records = batch.records or [""] * len(batch.images)
    for i, (image, label, record, classes) in enumerate(zip(batch.images, batch.labels.tolist(), records,
                                                            order.tolist())):
        texts = [f"{p:.6f}" for p in best[i]]
        yield (first_row + i, image, record, labels[label] if label >= 0 else "", labels[classes[0]], texts[0],
               "" if label < 0 else int(label == classes[0]), ";".join([labels[j] for j in classes]),
               ";".join(texts))


class Progress:
    """status.json's progress, at most every PROGRESS_EVERY_S."""

    def __init__(self, job: Job, total: int, out):
        self.job, self.total, self.out, self.last = job, max(total, 1), out, 0.0

    def show(self, done: int) -> None:
        if time.monotonic() - self.last >= PROGRESS_EVERY_S:
            self.out.flush()  # a reader of predictions.csv sees whole rows up to here
            self.job.update_status(progress=round(min(done / self.total, 1.0) * 0.99, 4))
            self.last = time.monotonic()


def classify_all(job: Job, source: Source, predict, stop: StopToken) -> tuple[MetricsAccumulator, float]:
    """Write predictions.csv from the source's batches; (the metrics, the loop's seconds)."""
    metrics, top = MetricsAccumulator(source.labels), job.params.get("top") or 5
    start = time.perf_counter()
    with open(job.dir / "predictions.csv", "w", newline="", encoding="utf-8") as out:
        writer, progress = csv.writer(out), Progress(job, source.total, out)
        writer.writerow(HEADER)
        for batch in source.batches:
            probabilities = predict(batch.pixels).numpy()
            rows = np.arange(metrics.count, metrics.count + len(probabilities))
            writer.writerows(csv_rows(metrics.count, batch, probabilities, source.labels, top))
            metrics.add(rows, batch.labels, probabilities)
            progress.show(metrics.count + source.skipped.count)
            if stop.requested:
                break
    return metrics, time.perf_counter() - start


def write_results(job: Job, metrics: MetricsAccumulator, seconds: float, source: Source, extra: dict) -> dict:
    results = {**metrics.result(), "errors": source.skipped.listed, "error_count": source.skipped.count,
               "images_per_second": metrics.count / seconds if seconds > 0 else 0.0, "seconds": seconds, **extra}
    if results["confusion"]:
        with open(job.dir / "confusion.csv", "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(["true \\ predicted", *source.labels])
            writer.writerows([label, *row] for label, row in zip(source.labels, results["confusion"]))
    write_json(job.dir / "results.json", results)
    return results


def run(job: Job, stop: StopToken) -> None:
    store = JobStore(job.dir.parent)
    model_job = store.get(job.params["model"])
    info = read_json(model_job.dir / "model.json")
    snapshot = snapshots.for_epoch(model_job, job.params.get("epoch"))
    if info is None or snapshot is None:
        raise DigitsError(f"Model {model_job.name!r} has no snapshot to classify with; clone this job once it has.")
    print(f"loading {model_job.name!r} ({model_job.id}) snapshot {snapshot.name}", flush=True)
    model = inference.load_model(model_job, job.params.get("epoch"))
    crop, image = info.get("crop"), info["image"]
    detection = info.get("task") == "detection"
    predict = _predictor(model, (crop or image["height"], crop or image["width"], image["channels"]), not detection)
    done = {"model": model_job.id, "snapshot": snapshot.name}
    if detection:
        from . import detection_inference  # it builds on this module's sources
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            results = detection_inference.run(job, store, info, predict, pool, stop)
        write_json(job.dir / "results.json", {**results, **done, "complete": not stop.requested})
        return
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        source = (dataset_source(job, store, info) if job.params["source"] == "dataset"
                  else file_source(job, info, pool))
        metrics, seconds = classify_all(job, source, predict, stop)
    results = write_results(job, metrics, seconds, source, {**done, "complete": not stop.requested})
    accuracy = "" if results["top1"] is None else f", top-1 {results['top1']:.2%}, top-5 {results['top5']:.2%}"
    print(f"classified {results['count']} image(s) at {results['images_per_second']:.0f} images/s{accuracy}; "
          f"{results['error_count']} unreadable", flush=True)
