"""An inference job on a detection model (inference_job's runner hands it
over): the snapshot finds boxes in a stream of images, and the job folder gets

    detections.jsonl  per image, as the job goes: {"image", "record" (the LMDB index, or null),
                      "boxes" (l, t, r, b), "scores", "classes" (names)} for scores >= WRITTEN_SCORE
    results.json      {"task": "detection", "mAP", "AP": {class: AP or null}, "objects": {class: n},
                      "worst_misses", ...} with ground truth; unreadable images and speed always

Boxes are in the pixels of a dataset record (the stored image) for a dataset
split, and of the ORIGINAL file for files (detection_resize takes them back).
mAP and AP are measured as training's val/mAP is (centernet.evaluate_model:
the decoder's own score floor, VOC matching at IoU 0.5). The worst misses are
the images with the most ground-truth boxes that no detection scoring at least
MISS_SCORE found at IoU 0.5, then the lowest recall.
"""
import json
import time

import numpy as np

from . import inference, lmdb_store
from .detection_decode import DECODING, decode
from .detection_metrics import DetectionAccumulator, match_image
from .detection_resize import unmap_boxes
from .errors import DigitsError, JobNotFound
from .inference_job import Batch, Skipped, Source, Progress, record_names, check_dataset_size, file_source
from .job_store import Job, JobStore
from .training.input_pipeline import make_dataset

WRITTEN_SCORE = inference.MIN_SCORE  # detections.jsonl keeps what `digits classify` would report
MISS_SCORE = 0.3  # a ground-truth box counts as found by a detection scoring at least this (the view's default)
WORST = 20  # images kept in worst_misses


def file_preparer(info: dict):
    """prepare(path) -> (float32 H x W x C pixels as the dataset stores images, (placement, source h, source w))."""
    mode = inference.detection_resize_mode(info)

    def prepare(path):
        pixels, where, size = inference.prepare_detection(path, info["image"], mode)
        return pixels, (where, *size)
    return prepare


def dataset_source(job: Job, store: JobStore, info: dict) -> Source:
    """A detection dataset split with its boxes (mapped to the model's classes; the dataset's other classes
    follow the model's, so their boxes count as missed)."""
    try:
        dataset, split = store.get(job.params["dataset"]), job.params["split"]
    except JobNotFound:
        raise DigitsError(f"The dataset {job.params['dataset']} to run the model on was deleted.") from None
    stats, shape = check_dataset_size(dataset, info)
    labels = list(info["labels"])
    labels += [name for name in stats["labels"] if name not in labels]
    to_model = np.array([labels.index(name) for name in stats["labels"]], np.int64)
    db = dataset.dir / split
    data = make_dataset(db, shape, stats["image"]["encoding"], job.params["batch_size"], shuffle=False,
                        task="detection", cache=False, n_classes=len(stats["labels"]))

    def batches():
        names, start = record_names(dataset, split), 0
        for pixels, truth in data:
            boxes, classes = truth["boxes"].numpy(), truth["classes"].numpy()
            n = len(boxes)
            named = [next(names, f"{split} record {i}") for i in range(start, start + n)]
            truths = [{"boxes": b[c >= 0], "classes": to_model[c[c >= 0]]} for b, c in zip(boxes, classes)]
            yield Batch(pixels, named, list(range(start, start + n)), np.full(n, -1), truths=truths)
            start += n
    return Source(lmdb_store.count(db), labels, batches(), Skipped())


class WorstMisses:
    """The WORST images with the most missed ground-truth boxes, then the lowest recall."""

    def __init__(self, n_classes: int):
        self.n_classes, self.kept = n_classes, []

    def add(self, row: int, image: str, record, found: dict, truth: dict) -> None:
        confident = found["scores"] >= MISS_SCORE
        shown = {key: value[confident] for key, value in found.items()}
        _, _, hits, _ = match_image(shown, truth, self.n_classes)
        objects, matched = len(truth["classes"]), int(hits.sum())
        if objects == matched:
            return
        self.kept.append({"row": row, "record": record, "image": image, "missed": objects - matched,
                          "objects": objects, "recall": matched / objects, "false_positives": len(hits) - matched})
        if len(self.kept) > 4 * WORST:
            self.kept = self.sorted()

    def sorted(self) -> list[dict]:
        return sorted(self.kept, key=lambda m: (-m["missed"], m["recall"], m["row"]))[:WORST]


def json_line(image: str, record, found: dict, labels: list[str], size: tuple, place=None) -> str:
    """One detections.jsonl line: the boxes scoring >= WRITTEN_SCORE, clipped to the `size` (H, W) input, or in
    the source file's pixels when `place` (placement, height, width) says how the file was resized."""
    keep = found["scores"] >= WRITTEN_SCORE
    boxes = found["boxes"][keep]
    if place is not None:
        boxes = unmap_boxes(boxes, *place)
    else:
        boxes = np.clip(boxes, 0, [size[1], size[0]] * 2)
    return json.dumps({"image": image, "record": record, "boxes": np.round(boxes, 2).tolist(),
                       "scores": np.round(found["scores"][keep], 5).tolist(),
                       "classes": [labels[c] for c in found["classes"][keep]]}) + "\n"


def detect_all(job: Job, source: Source, predict, stop, decoding: dict):
    """Write detections.jsonl; (images done, the accumulator or None without ground truth, worst misses,
    seconds)."""
    n_classes, count = len(source.labels), 0
    accumulator, misses = None, WorstMisses(n_classes)
    start = time.perf_counter()
    with open(job.dir / "detections.jsonl", "w", encoding="utf-8") as out:
        progress = Progress(job, source.total, out)
        for batch in source.batches:
            found = decode(predict(batch.pixels).numpy(), decoding["stride"], decoding["max_detections"])
            records = batch.records or [None] * len(found)
            places = batch.places or [None] * len(found)
            size = tuple(batch.pixels.shape[1:3])
            out.writelines(json_line(image, record, f, source.labels, size, place)
                           for image, record, f, place in zip(batch.images, records, found, places))
            if batch.truths is not None:
                accumulator = accumulator or DetectionAccumulator(n_classes)
                accumulator.add(found, batch.truths)
                for i, (f, truth) in enumerate(zip(found, batch.truths)):
                    misses.add(count + i, batch.images[i], records[i], f, truth)
            count += len(found)
            progress.show(count + source.skipped.count)
            if stop.requested:
                break
    return count, accumulator, misses, time.perf_counter() - start


def results(count: int, accumulator, misses: WorstMisses, labels: list[str]) -> dict:
    """results.json's measures: mAP, AP and object counts per class, worst misses (None and empty without
    ground truth)."""
    measured = accumulator.result() if accumulator is not None else None
    per_class = measured["classes"] if measured else []
    return {"task": "detection", "labels": labels, "count": count, "images": count,
            "labelled": count if measured else 0, "mAP": measured["mAP"] if measured else None,
            "AP": {label: c["AP"] for label, c in zip(labels, per_class)},
            "objects": {label: c["ground_truth"] for label, c in zip(labels, per_class)},
            "per_class": [{"class": label, **{k: c[k] for k in ("AP", "precision", "recall", "detections")}}
                          for label, c in zip(labels, per_class)],
            "worst_misses": misses.sorted(), "iou": 0.5, "miss_score": MISS_SCORE, "written_score": WRITTEN_SCORE}


def run(job: Job, store: JobStore, info: dict, predict, pool, stop) -> dict:
    """Run the job's source through `predict` (raw network outputs); results.json's content."""
    if job.params["source"] == "dataset":
        source = dataset_source(job, store, info)
    else:
        source = file_source(job, info, pool, file_preparer(info), boxes=True)
    count, accumulator, misses, seconds = detect_all(job, source, predict, stop, info.get("box_decoding") or DECODING)
    out = {**results(count, accumulator, misses, source.labels), "errors": source.skipped.listed,
           "error_count": source.skipped.count, "images_per_second": count / seconds if seconds > 0 else 0.0,
           "seconds": seconds}
    mean = "" if out["mAP"] is None else f", mAP@0.5 {out['mAP']:.4f}"
    print(f"detected objects in {count} image(s) at {out['images_per_second']:.0f} images/s{mean}; "
          f"{out['error_count']} unreadable", flush=True)
    return out
