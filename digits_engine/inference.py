"""Classify images with a trained model, or find objects with a detection
model (imports TensorFlow: run it in a worker or the CLI, never in the UI process).

Images are prepared exactly as the dataset prepared its training images
(size, channels, resize mode), from model.json, then centre-cropped when the
network was trained on crops (model.json "crop"), as its validation was. A
detection model's boxes are decoded (detection_decode) and taken back to the
pixels of the image given (detection_resize.unmap_boxes).
"""
import os

import numpy as np

from .atomic_json import read_json
from .errors import DigitsError
from .fields import validate
from .augmentation import centre_crop_box
from .detection_decode import DECODING, decode
from . import detection_resize
from .image_source import item_name
from .plugins import registry
from .images import ImageError, load_image, resize_image
from .job_store import Job
from . import snapshots

MIN_SCORE = 0.05  # a detection scoring less is not reported


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def load_model(job: Job, epoch: int | None = None):
    import keras
    from .training import centernet  # noqa: F401 - registers the CenterNet class that detection snapshots name
    path = snapshots.for_epoch(job, epoch)
    if job.kind != "model":
        raise DigitsError(f"{job.id} is a dataset; classify needs a model id.")
    if path is None:
        raise DigitsError(f"Model {job.name!r} has no snapshot{'' if epoch is None else f' for epoch {epoch}'} yet: "
                          "it saves one at the end of each epoch.")
    return keras.models.load_model(path, compile=False)


def prepare(path, image_spec: dict, crop: int | None = None) -> np.ndarray:
    """The image as the network saw its training data: HxWxC float32 (crop x crop x C for a cropping model)."""
    pixels = resize_image(load_image(path), image_spec["height"], image_spec["width"],
                          channels=image_spec["channels"], resize_mode=image_spec["resize_mode"],
                          rng=np.random.default_rng(0))
    return centre_crop(pixels, crop).astype(np.float32)


def centre_crop(pixels: np.ndarray, crop: int | None) -> np.ndarray:
    """The crop x crop centre of an HxWxC image (unchanged without a crop)."""
    if not crop:
        return pixels
    top, left = centre_crop_box(pixels.shape[0], pixels.shape[1], crop)
    return pixels[top:top + crop, left:left + crop]


def classify(job: Job, paths: list, top: int = 5, epoch: int | None = None) -> list[dict]:
    """Per image: {"image": path, "predictions": [{"label", "probability"}, ...] best first},
    or {"image": path, "error": why} for a file that cannot be read."""
    info = model_info(job)
    if info.get("task") == "detection":
        raise DigitsError(f"Model {job.name!r} is a detection model: it finds boxes (inference.detect), it does "
                          "not classify whole images.")
    model = load_model(job, epoch)
    results, batch, batch_paths = [], [], []
    for path in paths:
        try:
            batch.append(prepare(path, info["image"], info.get("crop")))
            batch_paths.append(str(path))
        except (ImageError, OSError) as exc:
            results.append({"image": str(path), "error": str(exc)})
    if batch:
        probs = _softmax(np.asarray(model.predict(np.stack(batch), verbose=0), np.float64))
        for path, row in zip(batch_paths, probs):
            order = np.argsort(-row)[:top]
            results.append({"image": path, "predictions": [
                {"label": info["labels"][i], "probability": round(float(row[i]), 6)} for i in order]})
    return in_order(results, paths)


def model_info(job: Job) -> dict:
    """model.json of a model job that has started training (a clear DigitsError otherwise)."""
    if job.kind != "model":
        raise DigitsError(f"{job.id} is a dataset; classify needs a model id.")
    info = read_json(job.dir / "model.json")
    if info is None:
        raise DigitsError(f"Model {job.name!r} has not started training yet; classify it once it has a snapshot.")
    return info


def in_order(results: list[dict], paths: list) -> list[dict]:
    order = {str(p): i for i, p in enumerate(paths)}
    return sorted(results, key=lambda r: order[r["image"]])


def detection_resize_mode(info: dict) -> str:
    """How a detection model's dataset resized its images. The data plugin's own option comes first: plugin
    datasets made before their image spec recorded it (image_source.plugin_image_spec) say "squash"."""
    source = info.get("source") or {}
    options = source.get("options") if source.get("source") == "plugin" else None
    return (options or {}).get("resize_mode") or info["image"]["resize_mode"]


def prepare_detection(path, image_spec: dict, resize_mode: str):
    """(the image as the dataset stored it, HxWxC float32; its detection_resize.Placement; the source's (h, w))."""
    image = load_image(path)
    pixels, where = detection_resize.resize_image(image, image_spec["height"], image_spec["width"],
                                                  image_spec["channels"], resize_mode, np.random.default_rng(0))
    return pixels.astype(np.float32), where, (image.height, image.width)


def detect(job: Job, paths: list, epoch: int | None = None) -> list[dict]:
    """Per image: {"image": path, "detections": [{"label", "score", "box": [left, top, right, bottom]}, ...]}
    best first, boxes in the pixels of the image given, scores >= MIN_SCORE; or {"image", "error"}."""
    info = model_info(job)
    if info.get("task") != "detection":
        raise DigitsError(f"Model {job.name!r} is a {info.get('task', 'classification')} model; only a detection "
                          "model finds boxes.")
    model = load_model(job, epoch)
    decoding, mode = info.get("box_decoding") or DECODING, detection_resize_mode(info)
    results, batch, placed = [], [], []
    for path in paths:
        try:
            pixels, where, size = prepare_detection(path, info["image"], mode)
        except (ImageError, OSError) as exc:
            results.append({"image": str(path), "error": str(exc)})
            continue
        batch.append(pixels)
        placed.append((str(path), where, size))
    if batch:
        outputs = np.asarray(model.predict(np.stack(batch), verbose=0))
        found = decode(outputs, decoding["stride"], decoding["max_detections"], MIN_SCORE)
        for (path, where, size), image_found in zip(placed, found):
            results.append({"image": path, "detections": detection_listing(image_found, where, size, info["labels"])})
    return in_order(results, paths)


def detection_listing(found: dict, where, source_size, labels: list[str]) -> list[dict]:
    """One image's decoded detections as [{"label", "score", "box"}], boxes back in the source's pixels."""
    boxes = detection_resize.unmap_boxes(found["boxes"], where, *source_size)
    return [{"label": labels[int(k)], "score": round(float(score), 6), "box": [round(float(v), 2) for v in box]}
            for box, score, k in zip(boxes, found["scores"], found["classes"])]


def infer_with_plugin(job: Job, options: dict, epoch: int | None = None) -> dict:
    """Run a model on the samples its dataset's data plugin makes from an inference form.

    Returns {"ids": [...], "inputs": N x H x W x C uint8, "outputs": probabilities (N x K for a
    classifier, N x H x W x K for segmentation), "labels": class names, "task": ...}."""
    from .image_source import checked_sample, data_plugin
    info = read_json(job.dir / "model.json") or {}
    source = info.get("source", {})
    if source.get("source") != "plugin":
        raise DigitsError(f"Model {job.name!r} was not trained on a plugin dataset; use classify for images.")
    plugin_class = registry.get("data", source["plugin"])
    if plugin_class.inference_fields() is None:
        raise DigitsError(f"The {plugin_class.get_title()} plugin has no inference form.")
    typed = validate(plugin_class.inference_fields(), options)  # FormErrors names each bad field
    plugin = data_plugin(source["plugin"], {**source.get("options", {}), **typed}, is_inference_db=True)
    try:
        entries = plugin.itemize_entries("test")
        samples = [checked_sample(*plugin.encode_entry(entry))[0] for entry in entries]
    except ValueError as exc:
        raise DigitsError(str(exc)) from None
    if not samples:
        raise DigitsError("The plugin made no sample from this input.")
    samples = [centre_crop(sample, info.get("crop")) for sample in samples]  # what the network was trained on
    logits = np.asarray(load_model(job, epoch).predict(np.stack(samples).astype(np.float32), verbose=0), np.float64)
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return {"ids": [_entry_name(e) for e in entries], "inputs": np.stack(samples), "outputs": shifted / shifted.sum(-1, keepdims=True),
            "labels": info["labels"], "task": info.get("task", "classification")}


def _entry_name(entry) -> str:
    """How an inference sample is named on the page: its file name, for the usual (path, ...) entries."""
    return os.path.basename(item_name(entry))
