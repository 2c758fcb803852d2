"""Reads an inference job's results back (no TensorFlow: the UI imports it):
results.json, rows of predictions.csv (a detection job's detections.jsonl),
the image behind a row (its file, or its dataset record with its true boxes),
and a short summary for the CLI. What the files hold is described in
inference_job and detection_inference, which write them.
"""
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from . import lmdb_store
from .atomic_json import read_json
from .errors import DigitsError, JobNotFound
from .image_records import read_record
from .images import load_image, to_array
from .job_store import Job, JobStore

CHUNK_ROWS = 100_000  # predictions.csv is read in chunks when only some rows are wanted
HEADER = ("row", "image", "record", "label", "predicted", "confidence", "correct", "top5_labels",
          "top5_probabilities")  # inference_job writes them
TEXT_COLUMNS = ("image", "label", "predicted", "top5_labels", "top5_probabilities")


def load(job: Job) -> dict | None:
    """results.json, or None while the job has not finished."""
    return read_json(job.dir / "results.json")


class _WholeLines:
    """predictions.csv up to its last newline: a reader never sees the row the job is writing."""

    def __init__(self, path: Path):
        self.file = open(path, "rb")
        size = self.file.seek(0, 2)
        self.file.seek(max(size - 65536, 0))
        tail = self.file.read()
        self.left = size - len(tail) + tail.rfind(b"\n") + 1
        self.file.seek(0)

    def read(self, size: int = -1) -> bytes:
        data = self.file.read(self.left if size is None or size < 0 else min(size, self.left))
        self.left -= len(data)
        return data

    def __iter__(self):
        return iter(self.read().splitlines(keepends=True))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()


def _read(source, **kwargs):
    # class names such as "NA" or "null" stay text; only the number columns may be blank
    return pd.read_csv(source, dtype={c: str for c in TEXT_COLUMNS}, keep_default_na=False,
                       na_values={"record": [""], "correct": [""]}, encoding="utf-8", **kwargs)


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype({"record": "Int64", "correct": "Int64"})


def predictions(job: Job, rows=None) -> pd.DataFrame:
    """predictions.csv as a DataFrame indexed by row (whole rows only, while the job writes); with
    `rows`, only those rows, in that order (read in chunks: the file may hold millions)."""
    path = job.dir / "predictions.csv"
    if not path.exists():
        raise DigitsError(f"Inference job {job.name!r} has no predictions yet.")
    with _WholeLines(path) as source:
        if source.left <= 0:  # the job has not written its header yet
            return _typed(pd.DataFrame(columns=HEADER)).set_index("row", drop=False)
        if rows is None:
            return _typed(_read(source)).set_index("row", drop=False)
        keep = {int(r) for r in rows}
        found = [chunk[chunk["row"].isin(keep)] for chunk in _read(source, chunksize=CHUNK_ROWS)]
    frame = _typed(pd.concat(found)).set_index("row", drop=False)
    return frame.loc[[int(r) for r in rows if int(r) in frame.index]]


def cell(job: Job, true: str, predicted: str, limit: int) -> tuple[int, pd.DataFrame]:
    """A confusion matrix cell: how many rows have this label and prediction, and the `limit` most
    confident of them (read in chunks, keeping only those)."""
    path = job.dir / "predictions.csv"
    count, best = 0, pd.DataFrame(columns=HEADER)
    with _WholeLines(path) as source:
        for chunk in _read(source, chunksize=CHUNK_ROWS) if source.left > 0 else ():
            found = chunk[(chunk["label"] == true) & (chunk["predicted"] == predicted)]
            count += len(found)
            best = pd.concat([best, found]) if len(best) else found
            best = best.nlargest(limit, "confidence")
    return count, _typed(best).set_index("row", drop=False)


def _missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)) or value == ""


def detections(job: Job, rows=None, limit: int | None = None) -> list[dict]:
    """detections.jsonl's whole lines, each with its "row" (line index) added: all, the first `limit`,
    or only `rows` in that order (the file is streamed: it may hold millions)."""
    path = job.dir / "detections.jsonl"
    if not path.exists():
        raise DigitsError(f"Inference job {job.name!r} has no detections yet.")
    wanted = None if rows is None else [int(r) for r in rows]
    keep, found = set(wanted or ()), {}
    with _WholeLines(path) as source:
        for row, line in enumerate(source):
            if wanted is None or row in keep:
                found[row] = {**json.loads(line), "row": row}
            if (limit is not None and len(found) >= limit) or (wanted is not None and len(found) == len(keep)):
                break
    return list(found.values()) if wanted is None else [found[r] for r in wanted if r in found]


def _record(job: Job, index: int) -> tuple[np.ndarray, object, Job]:
    """read_record of the job's dataset record `index`, and the dataset."""
    store = JobStore(job.dir.parent)
    try:
        dataset = store.get(job.params["dataset"])
    except JobNotFound:
        raise DigitsError(f"The dataset {job.params['dataset']} of this inference was deleted; "
                          "its images cannot be shown.") from None
    record = lmdb_store.read_indices(dataset.artifact(job.params["split"]), [int(index)])[0]
    if record is None:
        raise DigitsError(f"Dataset {dataset.name!r} has no record {index}.")
    return (*read_record(record), dataset)


def image_of(job: Job, row: dict) -> np.ndarray:
    """The image of a predictions row as uint8 H x W x C: its dataset record (as the model saw it before
    any crop), or its file (an upload's path is relative to the job folder)."""
    if not _missing(row.get("record")):
        return _record(job, int(row["record"]))[0]
    path = Path(str(row["image"]))
    return to_array(load_image(path if path.is_absolute() else job.dir / path))


def truth_of(job: Job, record: int) -> tuple[np.ndarray, dict]:
    """A detection dataset record's pixels and its true boxes: {"boxes": N x 4, "classes": N class names}."""
    pixels, truth, dataset = _record(job, record)
    names = (read_json(dataset.dir / "stats.json") or {}).get("labels", [])
    return pixels, {"boxes": truth["boxes"], "classes": [names[int(c)] for c in truth["classes"]]}


def is_detection(job: Job) -> bool:
    """Whether the job runs a detection model (its results are detections.jsonl)."""
    if (job.dir / "detections.jsonl").exists():
        return True
    model = job.dir.parent / job.params["model"] / "job.json"
    return (read_json(model) or {}).get("task") == "detection"


def summary(job: Job) -> dict:
    """What `digits infer --json` prints: id, name, state, count, labelled, top1, top5 (None without
    labels), unreadable, images_per_second, the results and predictions paths, and the error if any.
    A detection job has task "detection", mAP and AP ({class: AP}; None and {} without ground truth)
    and the detections path instead of top1, top5 and predictions."""
    status, results = job.status(), load(job) or {}
    out = {
        "id": job.id, "name": job.name, "model": job.params["model"], "state": status["state"],
        "progress": status.get("progress", 0.0), "count": results.get("count"),
        "labelled": results.get("labelled"), "top1": results.get("top1"), "top5": results.get("top5"),
        "unreadable": results.get("error_count"), "images_per_second": results.get("images_per_second"),
        "results": str(job.dir / "results.json"), "predictions": str(job.dir / "predictions.csv"),
        "error": status.get("error"),
    }
    if is_detection(job):
        for key in ("top1", "top5", "predictions"):
            del out[key]
        out.update(task="detection", mAP=results.get("mAP"), AP=results.get("AP") or {},
                   detections=str(job.dir / "detections.jsonl"))
    return out


def as_text(info: dict) -> str:
    """A summary() for a person, a few lines."""
    lines = [f"{info['id']}  inference  {info['state']}  {info['name']}"]
    if info.get("error"):
        lines.append(f"  error: {info['error']}")
    if info.get("count") is not None:
        done = "run through the model" if info.get("task") == "detection" else "classified"
        lines.append(f"  images: {info['count']} {done}, {info['unreadable']} unreadable, "
                     f"{info['images_per_second']:.0f} images/s")
        if info.get("mAP") is not None:
            aps = ", ".join(f"{name} {'-' if ap is None else f'{ap:.3f}'}" for name, ap in info["AP"].items())
            lines.append(f"  mAP@0.5: {info['mAP']:.4f}  AP: {aps}  ({info['labelled']} with ground truth)")
        if info.get("top1") is not None:
            lines.append(f"  top-1 accuracy: {info['top1']:.2%}  top-5: {info['top5']:.2%}  "
                         f"({info['labelled']} labelled)")
        lines.append(f"  results: {info['results']}")
        lines.append(f"  detections: {info['detections']}" if "detections" in info
                     else f"  predictions: {info['predictions']}")
    return "\n".join(lines)
