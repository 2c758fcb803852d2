"""Ship a model: one of a model job's snapshots as an archive (.zip or .tar.gz
holding model.keras, a TensorFlow SavedModel, labels.txt, info.json and a
README with a stand-alone example), as a SavedModel alone (a folder, or packed),
or as a TFLite file. Imports TensorFlow: run it in the CLI, never in the UI.
A detection model (a CenterNet, whose class is DIGITS') is saved as a plain
Keras model of the same layers, so that it loads without DIGITS; its archive
adds decode.py to read boxes out of its raw output (export_readme).

Every export is checked as it is made (export_check): the written model is
loaded again (Keras, the SavedModel's serving signature, the TFLite interpreter)
and must predict like the source, or the export fails with the numbers. Files
are made in a hidden sibling of the destination and renamed into place at the
end: a failed export leaves nothing. Reading an archive back as a job is
model_import's.
"""
import os
import shutil
import tarfile
import uuid
import zipfile
from importlib import metadata
from pathlib import Path

from . import export_check, snapshots
from .atomic_json import read_json, write_json
from .detection_decode import DECODING
from .export_readme import readme, readme_code, write_decoder  # noqa: F401 - readme_code: the README's example
from .errors import DigitsError
from .export_check import Checker
from .inference import detection_resize_mode
from .job_store import Job, now_iso

FORMATS = ("archive", "savedmodel", "tflite")
PACKINGS = {".zip": "zip", ".tar.gz": "tar.gz", ".tgz": "tar.gz"}
INFO_VERSION = 1


def export(job: Job, fmt: str, out_path, epoch=None) -> Path:
    """Export the snapshot of `epoch` (None: the latest) of model `job` in format `fmt` ("archive",
    "savedmodel" or "tflite") to `out_path`, checked; return the path written (".zip" added to an
    archive's path without a suffix)."""
    return Path(export_report(job, fmt, out_path, epoch)["path"])


def export_report(job: Job, fmt: str, out_path, epoch=None) -> dict:
    """export(), returning {"model", "format", "path", "epoch", "bytes", "checked": {file: max abs diff},
    "samples"}."""
    target, packing = destination(fmt, out_path)
    info, path, epoch = _source(job, epoch)
    export_check.full_precision()
    model = plain_model(_load(path, job))
    samples, sources = export_check.sample_inputs(job, info, tuple(model.input_shape[1:]))
    raw = info.get("task") == "detection"  # box maps: compared as they are, a softmax would mean nothing
    expected = export_check.comparable(export_check.outputs(model, samples), raw)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.partial-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        made, checked = _built(fmt, model, staging, Checker(expected, samples, sources, raw),
                               lambda: describe(job, info, epoch, model))
        if packing:
            made = pack(made, staging / f"packed.{packing}", packing)
        _move(made, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {"model": job.id, "format": fmt, "path": str(target), "epoch": epoch, "bytes": _size(target),
            "checked": checked, "samples": len(samples)}


def destination(fmt: str, out_path) -> tuple[Path, str | None]:
    """(the path to write, "zip" / "tar.gz" / None for a plain file or folder), with the path's suffix checked."""
    if fmt not in FORMATS:
        raise DigitsError(f"Unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}.")
    path = Path(out_path).expanduser().absolute()
    packing = next((kind for suffix, kind in PACKINGS.items() if path.name.lower().endswith(suffix)), None)
    wanted = {"archive": "An archive export is a .zip or .tar.gz file; name it like model.zip",
              "tflite": "A TFLite export is a .tflite file; name it like model.tflite"}.get(fmt)
    if fmt == "archive" and not packing and not path.suffix:
        path, packing = path.with_name(path.name + ".zip"), "zip"
    if fmt == "tflite" and not path.suffix:
        path = path.with_name(path.name + ".tflite")
    if (fmt == "archive" and not packing) or (fmt == "tflite" and path.suffix.lower() != ".tflite"):
        raise DigitsError(f"{wanted}, not {path.name!r}.")
    if path.is_dir() and (packing or fmt == "tflite" or any(path.iterdir())):
        raise DigitsError(f"{path} is a folder that already exists; give a new path for the export.")
    return path, packing


def _source(job: Job, epoch) -> tuple[dict, Path, int | float | None]:
    """(model.json, the snapshot's path, its epoch: None for an aborted run's snapshot)."""
    if job.kind != "model":
        raise DigitsError(f"{job.id} is a {job.kind}; export needs a model id.")
    info = read_json(job.dir / "model.json")
    if info is None:
        raise DigitsError(f"Model {job.name!r} has no model.json (its labels and image size): it never started "
                          "training, or its folder is damaged. Export a model that has trained.")
    path = snapshots.for_epoch(job, epoch)
    if path is None:
        have = ", ".join(str(e) for e, _ in snapshots.list_snapshots(job)) or "none yet"
        raise DigitsError(f"Model {job.name!r} has no snapshot{'' if epoch is None else f' of epoch {epoch}'} to "
                          f"export (epochs with one: {have}); it saves one at the end of each epoch.")
    return info, path, next((e for e, p in snapshots.list_snapshots(job) if p == path), None)


def _load(path: Path, job: Job):
    import keras
    from .training import centernet  # noqa: F401 - registers the CenterNet class that detection snapshots name
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:  # noqa: BLE001 - a damaged snapshot: say which and why
        raise DigitsError(f"The snapshot {path.name} of model {job.name!r} could not be loaded: {exc}") from None


def plain_model(model):
    """`model`, a CenterNet (DIGITS' class: its loss reads DIGITS' packed targets) re-wrapped as Keras' own
    functional Model around the same layers, weights shared, so the files made load without DIGITS."""
    import keras
    from .training.centernet import CenterNet
    if not isinstance(model, CenterNet):
        return model
    return keras.Model(model.input, model.output, name=model.name)


def _archive(model, staging: Path, checker: Checker, info) -> tuple[Path, dict]:
    bundle = staging / "bundle"
    bundle.mkdir()
    model.save(bundle / "model.keras")
    model.export(str(bundle / "saved_model"), format="tf_saved_model", verbose=False)
    checker.check("model.keras", export_check.predict_keras, bundle / "model.keras")
    checker.check("saved_model", export_check.predict_savedmodel, bundle / "saved_model")
    _write_metadata(bundle, info(), checker)
    described = read_json(bundle / "info.json")
    if described["task"] == "detection":
        write_decoder(bundle)
    (bundle / "README.md").write_text(readme(described))
    return bundle, checker.checked


def _savedmodel(model, staging: Path, checker: Checker, info) -> tuple[Path, dict]:
    folder = staging / "saved_model"
    model.export(str(folder), format="tf_saved_model", verbose=False)
    checker.check("saved_model", export_check.predict_savedmodel, folder)
    _write_metadata(folder, info(), checker)  # beside saved_model.pb: TensorFlow ignores them
    return folder, checker.checked


def _tflite(model, staging: Path, checker: Checker, info) -> tuple[Path, dict]:
    import tensorflow as tf
    model.export(str(staging / "saved_model"), format="tf_saved_model", verbose=False)
    path = staging / "model.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_saved_model(str(staging / "saved_model")).convert())
    checker.check("tflite", export_check.predict_tflite, path)
    return path, checker.checked


_BUILDERS = {"archive": _archive, "savedmodel": _savedmodel, "tflite": _tflite}


def _built(fmt: str, *args) -> tuple[Path, dict]:
    try:
        return _BUILDERS[fmt](*args)
    except DigitsError:
        raise
    except Exception as exc:  # noqa: BLE001 - Keras' or the converter's refusal, in its words, not a traceback
        raise DigitsError(f"The {fmt} export could not be made: {type(exc).__name__}: {exc}") from exc


def _write_metadata(folder: Path, info: dict, checker: Checker) -> None:
    (folder / "labels.txt").write_text("".join(f"{label}\n" for label in info.pop("labels")))
    info["checked"] = {"samples": len(checker.samples), "max_abs_diff": checker.checked,
                       "tolerance": {k: export_check.TOLERANCE[k] for k in checker.checked}}
    write_json(folder / "info.json", info)


def describe(job: Job, info: dict, epoch, model) -> dict:
    """info.json: how to prepare an image for the model and read its output, and where it came from
    ("labels" is taken out into labels.txt)."""
    image, task = info["image"], info.get("task", "classification")
    return {
        "digits_export": INFO_VERSION, "task": task,
        "network": info.get("network") or job.params.get("network"), "epoch": epoch,
        "source_model": {"id": job.id, "name": job.name}, "digits_version": _version(), "exported": now_iso(),
        "preprocessing": {
            **{k: image[k] for k in ("height", "width", "channels")}, "resize_mode": _resize_mode(info),
            "crop": info.get("crop"), "color": "RGB" if image["channels"] == 3 else "grayscale",
            "mean": mean_handling(job, info), "steps": STEPS[task == "detection"]},
        "input": {"shape": list(model.input_shape[1:]), "dtype": "float32", "range": [0, 255], "layout": "NHWC"},
        "output": {"shape": list(model.output_shape[1:]), **OUTPUTS.get(task, OUTPUTS["classification"])},
        "labels": list(info["labels"]),
        "box_decoding": (info.get("box_decoding") or DECODING) if task == "detection" else None,
    }


STEPS = ("resize to width x height by resize_mode, convert to the channels, centre-crop to crop x crop when crop is "
         "set, then feed float32 pixels in 0..255",
         "resize to width x height by resize_mode (pad: shrink to fit only if larger, keeping the aspect ratio, and "
         "pad with black on the right and bottom), convert to the channels, then feed float32 pixels in 0..255")
OUTPUTS = {
    "classification": {"kind": "logits", "probabilities": "softmax over the last axis"},
    "segmentation": {"kind": "logits", "probabilities": "softmax over the last axis"},
    "detection": {"kind": "raw CenterNet maps",
                  "layout": "B x H/4 x W/4 x (K + 4): K class-heatmap logits (sigmoid: scores), then the box width "
                            "and height in output cells (w, h), then the centre's offset in its cell (dx, dy)",
                  "decoding": "decode.py (box_decoding): the heatmap peaks become boxes in input pixels"},
}


def _resize_mode(info: dict) -> str:
    return detection_resize_mode(info) if info.get("task") == "detection" else info["image"]["resize_mode"]


def mean_handling(job: Job, info: dict) -> dict:
    """What the model does with the mean: always inside it, as its first layers."""
    if info.get("mean"):  # an imported model: as its archive said
        return info["mean"]
    params = job.params
    how = ("imagenet" if params.get("pretrained") else f"as model {params.get('previous_model')}"
           if params.get("network") == "previous" else params.get("mean_subtraction") or "pixel")
    return {"subtraction": how, "built_into_model": True,
            "note": "The model's first layers subtract the training mean and scale the pixels; do not do it again."}


def pack(folder: Path, target: Path, packing: str) -> Path:
    """`folder`'s contents (not the folder itself) as a .zip or .tar.gz at `target`."""
    files = sorted(folder.rglob("*"))
    if packing == "zip":
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in files:
                archive.write(path, path.relative_to(folder).as_posix())
        return target
    with tarfile.open(target, "w:gz") as archive:
        for path in files:
            archive.add(path, path.relative_to(folder).as_posix(), recursive=False, filter=_plain)
    return target


def _plain(member: tarfile.TarInfo) -> tarfile.TarInfo:
    member.uid = member.gid = 0
    member.uname = member.gname = ""
    return member


def _move(made: Path, target: Path) -> None:
    if target.is_dir():  # an empty folder (destination() refused any other)
        target.rmdir()
    os.replace(made, target)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _version() -> str:
    try:
        return metadata.version("digits")
    except metadata.PackageNotFoundError:
        return "unknown"
