"""Import a model made elsewhere as a Done model job: an archive made by
`digits export` (.zip or .tar.gz holding model.keras, labels.txt and info.json),
or a bare .keras file plus a labels file.

The job looks like a trained one to the rest of the engine: one snapshot
(snapshots/epoch_1.keras), a model.json with the labels and the image spec, no
dataset and params {"network": "imported", "epochs": 1, ...}. So it classifies,
exports, and is fine-tuned with the network "previous". A bare .keras file has
no info.json: its image size and channels are read off the model's input, the
resize mode is taken to be squash, and model.json ("imported"/"assumed") and
log.txt say so. Archives are extracted safely (archive_extract); a .keras file
is loaded in Keras' safe mode (no arbitrary code). The model and labels files
must be inside DIGITS_DATA_ROOTS, unless the import page saved them from an
upload (server_paths.staged_upload: then DIGITS_UPLOAD_MAX_MB caps their
size). Imports TensorFlow: run it
in the CLI, never in the UI process. A detection archive (info.json task
"detection") keeps its box_decoding and its resize mode (pad included); its
model detects but cannot be fine-tuned (detection trains CenterNet alone).
"""
import os
import shutil
import tempfile
from pathlib import Path

from . import config, server_paths, snapshots
from .archive_extract import extract
from .atomic_json import read_json, write_json
from .detection_decode import BOX_CHANNELS, DECODING
from .detection_resize import RESIZE_MODES as DETECTION_RESIZE_MODES
from .errors import DigitsError
from .images import RESIZE_MODES
from .job_state import JobState
from .job_store import Job, JobStore
from .uploads import over_upload_limit

ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar")
WHAT_TO_GIVE = ("Import a .zip or .tar.gz made by `digits export --format archive` (or the model page's download), "
                "or a .keras file with its labels file.")
BARE_KERAS_ASSUMPTIONS = {
    "image": "height, width and channels read off the model's input",
    "resize_mode": "squash (images are resized to the input size without keeping their aspect ratio)",
    "mean": "inside the model: it takes float32 pixels in 0..255",
}


class ImportRefused(DigitsError, ValueError):
    """The file cannot become a model job; the message says why and what to give instead."""


def import_model(path, store: JobStore, name: str | None = None, labels_file=None) -> Job:
    """A new Done model job holding the model of `path` (an export archive, or a .keras file with
    `labels_file`: one class a line, in the order of the model's outputs). `name` defaults to the
    source model's name, or the file's. Raises ImportRefused, creating no job, for a bad file."""
    path = Path(os.path.abspath(Path(path).expanduser()))
    check_source(path)
    if labels_file:
        labels_file = Path(os.path.abspath(Path(labels_file).expanduser()))
        check_source(labels_file)
    if not path.is_file():
        raise ImportRefused(f"{path} is not a file. {WHAT_TO_GIVE}")
    with tempfile.TemporaryDirectory(dir=store.root, prefix=".import-") as tmp:
        if path.name.lower().endswith(".keras"):
            model_file, info = path, None
            labels = read_labels(labels_file, "A .keras file needs its class names")
        elif path.name.lower().endswith(ARCHIVE_SUFFIXES):
            model_file, info, labels = _unpacked(path, Path(tmp) / "files", labels_file)
        else:
            raise ImportRefused(f"{path.name} is neither an archive (.zip, .tar.gz) nor a .keras file. {WHAT_TO_GIVE}")
        model = _load(model_file)
        spec = model_spec_of(model, info, labels, path.name)
        source_name = (spec.get("imported", {}).get("source_model") or {}).get("name")
        default = f"{source_name} (imported)" if source_name else path.stem
        return _make_job(store, (name or "").strip() or default, model_file, spec)


def check_source(path: Path) -> None:
    """ImportRefused when `path` is outside the data roots, or is an upload over the upload limit."""
    if not server_paths.staged_upload(path):
        if problem := server_paths.outside_roots(path, str(path)):
            raise ImportRefused(problem)
        return
    if path.is_file() and (problem := over_upload_limit(path.stat().st_size, path.name)):
        raise ImportRefused(problem)


def read_labels(labels_file, why: str) -> list[str]:
    """The class names of a labels file, one a line (blank lines skipped)."""
    if not labels_file:
        raise ImportRefused(f"{why}: give a labels file (--labels FILE), one class a line in the order of the "
                            "model's outputs.")
    try:
        text = Path(labels_file).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportRefused(f"The labels file {labels_file} cannot be read: {exc}. Give a text file with one class "
                            "a line.") from None
    labels = [line.strip() for line in text.splitlines() if line.strip()]
    if not labels:
        raise ImportRefused(f"The labels file {Path(labels_file).name} names no class; write one class a line.")
    return labels


def _unpacked(archive: Path, dest: Path, labels_file) -> tuple[Path, dict | None, list[str]]:
    """(model.keras, info.json or None, the labels) of an extracted export archive."""
    extract(archive, dest, config.extract_max_mb() * 2 ** 20, config.extract_max_files())
    tops = [p for p in dest.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX"]
    root = tops[0] if len(tops) == 1 and tops[0].is_dir() else dest  # the files, or one folder holding them
    if not (root / "model.keras").is_file():
        if (root / "saved_model.pb").exists() or (root / "saved_model" / "saved_model.pb").exists():
            raise ImportRefused(f"{archive.name} holds a TensorFlow SavedModel but no model.keras, which is needed to "
                                f"classify and fine-tune here. {WHAT_TO_GIVE}")
        found = ", ".join(sorted(p.name for p in root.iterdir())[:8]) or "nothing"
        raise ImportRefused(f"{archive.name} holds no model.keras (it holds: {found}), so it was not made by "
                            f"`digits export`. {WHAT_TO_GIVE}")
    try:
        info = read_json(root / "info.json")
    except ValueError:
        info = []
    if not isinstance(info, (dict, type(None))):
        raise ImportRefused(f"The info.json in {archive.name} is not a JSON object; export the model again.")
    if labels_file is None and not (root / "labels.txt").is_file():
        raise ImportRefused(f"{archive.name} has no labels.txt; give the class names with a labels file (--labels).")
    return root / "model.keras", info, read_labels(labels_file or root / "labels.txt", "The archive needs labels")


def _load(model_file: Path):
    import keras
    try:
        return keras.models.load_model(model_file, compile=False, safe_mode=True)
    except Exception as exc:  # noqa: BLE001 - any reason the file is not a loadable model, in its words
        raise ImportRefused(f"{model_file.name} could not be loaded as a Keras 3 model: {exc}") from None


def model_spec_of(model, info: dict | None, labels: list[str], source: str) -> dict:
    """model.json for the imported model: labels, image spec, crop, task, what was assumed."""
    shape = model.input_shape
    if not isinstance(shape, tuple) or len(shape) != 4 or None in shape[1:] or shape[3] not in (1, 3):
        raise ImportRefused(f"The model takes inputs of shape {shape}; an image model here takes one input of "
                            "(batch, height, width, 1 or 3 channels) with a fixed height and width.")
    outputs = model.output_shape
    detection = bool(info) and info.get("task") == "detection"
    extra = BOX_CHANNELS if detection else 0  # a detection map: K heatmaps, then the box channels
    if not isinstance(outputs, tuple) or outputs[-1] != len(labels) + extra:
        raise ImportRefused(f"The model has {outputs[-1] if isinstance(outputs, tuple) else 'several'} outputs "
                            f"{'per cell ' if detection else ''}but the labels name {len(labels)} classes"
                            f"{f' (+ {extra} box channels)' if detection else ''}; give the labels file that goes "
                            "with it (one class a line, in the order of the model's outputs).")
    height, width, channels = shape[1:]
    task = "segmentation" if len(outputs) == 4 else "classification"
    spec = {"labels": labels, "dataset": None, "task": task, "source": {"source": "imported", "file": source},
            "image": {"height": height, "width": width, "channels": channels, "resize_mode": "squash"}, "crop": None,
            "network": "imported", "mean": {"subtraction": "unknown", "built_into_model": True, "assumed": True},
            "imported": {"from": source, "assumed": BARE_KERAS_ASSUMPTIONS}}
    if info:
        spec.update(_from_info(info, (height, width, channels), source))
    if detection:
        spec["box_decoding"] = _box_decoding(info.get("box_decoding"), source)
    return spec


def _box_decoding(decoding, source: str) -> dict:
    """info.json's box_decoding, checked: the decoding detection_decode does, with a whole stride and count."""
    try:
        if decoding["type"] != DECODING["type"] or int(decoding["stride"]) < 1 or int(decoding["max_detections"]) < 1:
            raise ValueError(decoding)
        return {"type": decoding["type"], "stride": int(decoding["stride"]),
                "max_detections": int(decoding["max_detections"])}
    except (KeyError, TypeError, ValueError):
        raise ImportRefused(f"The info.json in {source} has no usable box_decoding (expected like {DECODING}); "
                            "export the model again.") from None


def _from_info(info: dict, input_shape: tuple, source: str) -> dict:
    """The parts of model.json an export's info.json gives, checked against the model's input."""
    pre = info.get("preprocessing") or {}
    modes = DETECTION_RESIZE_MODES if info.get("task") == "detection" else RESIZE_MODES  # pad is detection's
    try:
        image = {k: int(pre[k]) for k in ("height", "width", "channels")} | {"resize_mode": pre["resize_mode"]}
        crop = int(pre["crop"]) if pre.get("crop") else None
        if image["resize_mode"] not in modes:
            raise ValueError(image["resize_mode"])
    except (KeyError, TypeError, ValueError):
        raise ImportRefused(f"The info.json in {source} has no complete preprocessing (height, width, channels, "
                            f"resize_mode: one of {', '.join(modes)}); export the model again.") from None
    fed = (crop, crop, image["channels"]) if crop else (image["height"], image["width"], image["channels"])
    if fed != tuple(input_shape):
        raise ImportRefused(f"The info.json in {source} says the model takes {'x'.join(map(str, fed))} inputs but "
                            f"model.keras takes {'x'.join(map(str, input_shape))}; export the model again.")
    return {"image": image, "crop": crop, "task": info.get("task") or "classification",
            "network": info.get("network") or "imported", "mean": pre.get("mean"),
            "imported": {"from": source, "source_model": _dict(info.get("source_model")), "epoch": info.get("epoch"),
                         "digits_version": info.get("digits_version"), "assumed": {}}}


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _make_job(store: JobStore, name: str, model_file: Path, spec: dict) -> Job:
    imported = spec["imported"]
    params = {"network": "imported", "epochs": 1, "imported_from": imported["from"], "crop_size": spec["crop"],
              "source_network": spec["network"], "source_model": (imported.get("source_model") or {}).get("id")}
    job = store.create("model", name, params, task=spec["task"])
    try:
        snapshots.path_for(job, 1).parent.mkdir()
        shutil.copyfile(model_file, snapshots.path_for(job, 1))
        write_json(job.dir / "model.json", spec)
        lines = [f"imported {imported['from']} as epoch 1: {len(spec['labels'])} classes, "
                 f"input {spec['image']['height']}x{spec['image']['width']}x{spec['image']['channels']}"]
        lines += [f"assumed {key}: {value}" for key, value in imported["assumed"].items()]
        job.log_path.write_text("".join(line + "\n" for line in lines))
        job.set_state(JobState.DONE, note="; ".join(lines[1:]) or None)
    except BaseException:
        store.remove(job)
        raise
    return job
