"""What a person asks for when creating an image classification dataset: the
form's fields (DIGITS' names and defaults where it had them), their checks,
and the submit that turns valid input into a Waiting job.
"""
from pathlib import Path

from . import config, credentials
from .fields import Field, FormErrors, convert
from .images import RESIZE_MODES
from .job_store import Job, JobStore
from .scheduler import Scheduler

ENCODINGS = ("png", "jpg", "none")

FOLDER_FIELDS = [
    Field("folder", "Training images folder", kind="path", required=True,
          help="A folder on the server with one sub-folder per class: folder/<class>/<images>. "
               "Sub-folders are searched recursively."),
]

S3_FIELDS = [
    Field("s3_endpoint", "Training Images URL", required=True, help="The S3 endpoint, e.g. http://s3.example.com:80"),
    Field("s3_bucket", "Bucket Name", required=True),
    Field("s3_path", "Training Images Path", required=True,
          help="The prefix that holds one folder per class, e.g. mnist/train/"),
    Field("s3_access_key", "Access Key", required=True),
    Field("s3_secret_key", "Secret Key", kind="secret", required=True,
          help="Used by the job once, never stored with it."),
    Field("s3_keep_copy", "Keep a local copy of the images", kind="bool", default=False,
          help="Also save each object read under the dataset's folder (s3_copy/)."),
]

COMMON_FIELDS = [
    Field("name", "Dataset name", required=True, help="Shown on the home page and in the model form."),
    Field("group", "Group", help="Jobs with the same group are listed together on the home page."),
    Field("val_pct", "% for validation", kind="int", default=25, minimum=0, maximum=100,
          help="Share of each class's images held out to validate while training."),
    Field("test_pct", "% for testing", kind="int", default=0, minimum=0, maximum=100,
          help="Share of each class's images kept for a final test."),
    Field("width", "Width (px)", kind="int", default=32, minimum=1, maximum=4096, advanced=True),
    Field("height", "Height (px)", kind="int", default=32, minimum=1, maximum=4096, advanced=True),
    Field("channels", "Image type", kind="choice", default=3, choices=(3, 1), advanced=True,
          choice_labels={3: "Color", 1: "Grayscale"}),
    Field("resize_mode", "Resize mode", kind="choice", default="squash", choices=RESIZE_MODES, advanced=True,
          help="squash ignores the aspect ratio; crop keeps the centre; fill pads with noise; "
               "half_crop does half of each.",
          choice_labels={"squash": "Squash", "crop": "Crop", "fill": "Fill", "half_crop": "Half crop, half fill"}),
    Field("encoding", "Image encoding", kind="choice", default="png", choices=ENCODINGS, advanced=True,
          choice_labels={"png": "PNG (lossless)", "jpg": "JPEG (lossy, 90% quality)", "none": "None (raw pixels)"}),
    Field("backend", "Database backend", kind="choice", default="lmdb", choices=("lmdb",), advanced=True,
          choice_labels={"lmdb": "LMDB"}),
    Field("min_per_class", "Minimum images per class", kind="int", default=2, minimum=1, advanced=True,
          help="Classes with fewer images are left out (and listed)."),
    Field("max_per_class", "Maximum images per class", kind="int", default=None, minimum=1, advanced=True,
          help="Blank: no limit."),
    Field("seed", "Random seed for the split", kind="int", default=None, minimum=0, advanced=True,
          help="Blank: a new split each time."),
]

SOURCE_FIELDS = {"folder": FOLDER_FIELDS, "s3": S3_FIELDS}
FIELDS = COMMON_FIELDS + FOLDER_FIELDS + S3_FIELDS
SECRETS = tuple(f.name for f in FIELDS if f.kind == "secret")
S3_LOCATION = ("s3_endpoint", "s3_bucket", "s3_path")  # not the keys: AWS_* variables may be set for other tools


def source_of(raw: dict) -> str:
    """"s3" when asked for, or when any S3 location field is filled in; else "folder"."""
    if raw.get("source") in SOURCE_FIELDS:
        return raw["source"]
    return "s3" if any(raw.get(name) for name in S3_LOCATION) else "folder"


def _check_folder(folder: str) -> str | None:
    path = Path(folder).expanduser()
    if not path.is_absolute():
        return f"Give an absolute path on the server; {folder!r} is relative."
    if not path.exists():
        return f"The folder {folder} does not exist on the server."
    if not path.is_dir():
        return f"{folder} is a file, not a folder."
    roots = config.data_roots()
    resolved = path.resolve()
    if not any(resolved == r or r in resolved.parents for r in roots):
        allowed = ", ".join(map(str, roots))
        return f"{folder} is outside the folders this server may read ({allowed}); ask the admin to add it to DIGITS_DATA_ROOTS."
    return None


def check(raw: dict) -> dict:
    """Validated, typed parameters (secrets included), or FormErrors with a message for every bad field."""
    source = source_of(raw)
    values, errors = convert(COMMON_FIELDS + SOURCE_FIELDS[source], raw)
    if values.get("folder") and (problem := _check_folder(values["folder"])):
        errors["folder"] = problem
    if values.get("s3_path") is not None and not values["s3_path"].strip("/ "):
        errors["s3_path"] = "Give the path of the class folders inside the bucket, e.g. mnist/train/."
    if "val_pct" in values and "test_pct" in values and values["val_pct"] + values["test_pct"] > 100:
        errors["test_pct"] = f"Validation {values['val_pct']}% + test {values['test_pct']}% is over 100%."
    low, high = values.get("min_per_class"), values.get("max_per_class")
    if low is not None and high is not None and high < low:
        errors["max_per_class"] = "The maximum per class must be at least the minimum."
    if errors:
        raise FormErrors(errors)
    if source == "folder":
        values["folder"] = str(Path(values["folder"]).expanduser().resolve())
    values["channels"] = int(values["channels"])
    return {"source": source, **values}


def create(raw: dict, store: JobStore | None = None) -> Job:
    """Check the input, write the job (its secrets apart, for the worker only), and hand it to the scheduler."""
    params = check(raw)
    secrets = {name: params.pop(name) for name in SECRETS if name in params}
    store = store or JobStore()
    name, group = params.pop("name"), params.pop("group") or ""
    job = store.create("dataset", name, params, group=group, task="classification")
    if secrets:
        credentials.store(job, secrets)
    return Scheduler(store).submit(job)
