"""What a person asks for when creating an image classification dataset: the
form's fields (DIGITS' names and defaults where it had them), their checks,
and the submit that turns valid input into a Waiting job.

Sources: a server folder (with optional separate validation and test
folders), text-file lists, an uploaded archive of class folders, or S3.
"""
from pathlib import Path

from . import config, credentials, server_paths, textfile_parse, uploads
from .archive_extract import ArchiveError
from .fields import Field, FormErrors, convert
from .images import RESIZE_MODES
from .job_store import Job, JobStore
from .scheduler import Scheduler

ENCODINGS = ("png", "jpg", "none")


def _stage_folder_fields(stage: str, title: str) -> list[Field]:
    """DIGITS' separate validation (test) folder, with its own minimum and maximum per class."""
    return [
        Field(f"{stage}_folder", f"Separate {title} images folder", kind="path", advanced=True,
              help=f"Optional: a folder with the same class sub-folders, all of it used for {title} (the % for "
                   f"{title} of the training folder is then 0). Classes the training folder lacks are skipped."),
        Field(f"{stage}_min_per_class", f"Minimum images per class ({title} folder)", kind="int", default=2,
              minimum=1, advanced=True, help="Classes with fewer images in that folder are left out (and listed)."),
        Field(f"{stage}_max_per_class", f"Maximum images per class ({title} folder)", kind="int", minimum=1,
              advanced=True, help="Blank: no limit."),
    ]


FOLDER_FIELDS = [
    Field("folder", "Training images folder", kind="path", required=True,
          help="A folder on the server with one sub-folder per class: folder/<class>/<images>. "
               "Sub-folders are searched recursively."),
    *_stage_folder_fields("val", "validation"),
    *_stage_folder_fields("test", "test"),
]

TEXTFILE_FIELDS = [
    Field("train_list", "Training images list", kind="path", required=True,
          help="A text file on the server, one `path label` line per image, e.g. `cats/kitty 01.jpg 0` "
               "(spaces in paths are fine; blank lines and # comments are ignored)."),
    Field("labels_file", "Labels file", kind="path", required=True,
          help="A text file with one class name a line: line 1 names label 0, line 2 label 1, and so on."),
    Field("val_list", "Validation images list", kind="path", help="Optional, in the same format."),
    Field("test_list", "Test images list", kind="path", help="Optional, in the same format."),
    Field("train_folder_prefix", "Training images folder prefix", kind="path", advanced=True,
          help="Relative paths in the training list start here. Blank: the list file's own folder."),
    Field("val_folder_prefix", "Validation images folder prefix", kind="path", advanced=True,
          help="Relative paths in the validation list start here. Blank: the list file's own folder."),
    Field("test_folder_prefix", "Test images folder prefix", kind="path", advanced=True,
          help="Relative paths in the test list start here. Blank: the list file's own folder."),
    Field("textfile_shuffle", "Shuffle the lines", kind="bool", default=True, advanced=True,
          help="Store the images in random order, as DIGITS did; off keeps the order of each list."),
]
TEXTFILE_LISTS = {"train": "train_list", "val": "val_list", "test": "test_list"}
PREFIXES = tuple(f"{stage}_folder_prefix" for stage in TEXTFILE_LISTS)

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

SOURCE_FIELDS = {"folder": FOLDER_FIELDS, "textfile": TEXTFILE_FIELDS, "upload": [], "s3": S3_FIELDS}
FIELDS = COMMON_FIELDS + FOLDER_FIELDS + TEXTFILE_FIELDS + S3_FIELDS
SPLIT_FIELDS = ("val_pct", "test_pct", "min_per_class", "max_per_class")  # text-file lists set their own splits
ARCHIVE = "archive"  # an upload's input (a path or a file object) and, once extracted, its original name
SECRETS = tuple(f.name for f in FIELDS if f.kind == "secret")
S3_LOCATION = ("s3_endpoint", "s3_bucket", "s3_path")  # not the keys: AWS_* variables may be set for other tools


def source_of(raw: dict) -> str:
    """The source asked for; else the one whose fields are filled in: "upload" for an archive, "textfile" for a
    training list, "s3" for any S3 location field; else "folder"."""
    if raw.get("source") in SOURCE_FIELDS:
        return raw["source"]
    if raw.get(ARCHIVE):
        return "upload"
    if raw.get("train_list"):
        return "textfile"
    return "s3" if any(raw.get(name) for name in S3_LOCATION) else "folder"


def form_fields(source: str) -> list[Field]:
    """The fields a dataset from `source` takes."""
    common = [f for f in COMMON_FIELDS if source != "textfile" or f.name not in SPLIT_FIELDS]
    return common + SOURCE_FIELDS[source]


def _folder_problems(values: dict) -> dict:
    """{field: message} for the folders of a folder dataset and the limits of its separate folders."""
    errors = {}
    for name in ("folder", "val_folder", "test_folder"):
        if values.get(name) and (problem := server_paths.problem(values[name])):
            errors[name] = problem
    for stage in ("val", "test"):
        low, high = values.get(f"{stage}_min_per_class"), values.get(f"{stage}_max_per_class")
        if low is not None and high is not None and high < low:
            errors[f"{stage}_max_per_class"] = "The maximum per class must be at least the minimum."
    return errors


def _textfile_problems(values: dict) -> dict:
    """{field: message} for the files of a text-file dataset; each list whose file and prefix are fine is read
    (every bad line reported with its number) when the labels file is fine too."""
    files = ["labels_file", *TEXTFILE_LISTS.values()]
    errors = {name: problem for name in files if values.get(name) and (problem := server_paths.problem(values[name], "file"))}
    errors.update({name: problem for name in PREFIXES if values.get(name) and (problem := server_paths.problem(values[name]))})
    if not values.get("labels_file") or "labels_file" in errors:
        return errors
    try:
        labels = textfile_parse.read_labels(values["labels_file"])
    except textfile_parse.ListError as exc:
        return {**errors, "labels_file": str(exc)}
    for stage, name in TEXTFILE_LISTS.items():
        prefix = f"{stage}_folder_prefix"
        if values.get(name) and name not in errors and prefix not in errors:
            try:
                textfile_parse.read_list(values[name], len(labels), values.get(prefix), config.data_roots())
            except textfile_parse.ListError as exc:
                errors[name] = str(exc)
    return errors


def _reuses_upload(raw: dict) -> bool:
    """A clone of an upload dataset: it reads the folder that the first upload extracted."""
    return (raw.get("source") == "upload" and not hasattr(raw.get(ARCHIVE), "read")
            and bool(raw.get("folder")) and uploads.is_upload_folder(raw["folder"]))


def _archive_name(archive) -> str:
    return Path(archive).name if isinstance(archive, (str, Path)) else Path(getattr(archive, "name", "upload")).name


def _upload_problems(raw: dict) -> dict:
    archive = raw.get(ARCHIVE)
    if _reuses_upload(raw):
        return {}
    if archive is None or (isinstance(archive, str) and not archive.strip()):
        return {ARCHIVE: "Choose a .zip, .tar or .tar.gz archive of class folders to upload."}
    if problem := uploads.check_name(_archive_name(archive)):
        return {ARCHIVE: problem}
    if isinstance(archive, (str, Path)):  # an archive on the server (the CLI's --archive)
        if problem := server_paths.outside_roots(Path(archive).expanduser(), str(archive)):
            return {ARCHIVE: problem}
        if not Path(archive).expanduser().is_file():
            return {ARCHIVE: f"There is no archive file {archive}."}
    if problem := uploads.over_upload_limit(getattr(archive, "size", None) or 0, _archive_name(archive)):
        return {ARCHIVE: problem}
    return {}


def _unpacked(raw: dict) -> dict:
    """The params of an upload: its original name and the folder it was extracted to."""
    archive = raw.get(ARCHIVE)
    if _reuses_upload(raw):
        return {ARCHIVE: str(archive or ""), "folder": str(Path(raw["folder"]).resolve())}
    name = _archive_name(archive)
    source = Path(archive).expanduser() if isinstance(archive, (str, Path)) else archive
    try:
        root = uploads.unpack(source, name, config.upload_max_mb() * 2 ** 20)
    except ArchiveError as exc:
        raise FormErrors({ARCHIVE: str(exc)}) from None
    return {ARCHIVE: name, "folder": str(root)}


def check(raw: dict) -> dict:
    """Validated, typed parameters (secrets included), or FormErrors with a message for every bad field.

    An uploaded archive (`archive`: a path, or a file object with a name) is extracted once every other field
    is fine, so that a refused archive is reported like any bad field; its params then hold its name and the
    extracted folder."""
    source = source_of(raw)
    values, errors = convert(form_fields(source), raw)
    if source == "folder":
        errors.update(_folder_problems(values))
    elif source == "textfile":
        errors.update(_textfile_problems(values))
    elif source == "upload":
        errors.update(_upload_problems(raw))
    for stage in ("val", "test"):
        if values.get(f"{stage}_folder"):
            values[f"{stage}_pct"] = 0  # as DIGITS: the separate folder replaces the share of the training folder
    if values.get("s3_path") is not None and not values["s3_path"].strip("/ "):
        errors["s3_path"] = "Give the path of the class folders inside the bucket, e.g. mnist/train/."
    if "val_pct" in values and "test_pct" in values and values["val_pct"] + values["test_pct"] > 100:
        errors["test_pct"] = f"Validation {values['val_pct']}% + test {values['test_pct']}% is over 100%."
    low, high = values.get("min_per_class"), values.get("max_per_class")
    if low is not None and high is not None and high < low:
        errors["max_per_class"] = "The maximum per class must be at least the minimum."
    if errors:
        raise FormErrors(errors)
    for name in ("folder", "val_folder", "test_folder", "labels_file", *TEXTFILE_LISTS.values(), *PREFIXES):
        if values.get(name):
            values[name] = str(Path(values[name]).expanduser().resolve())
    if source == "upload":
        values.update(_unpacked(raw))
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
