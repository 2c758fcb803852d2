"""What a person asks of a "classify many" inference job (a classifier's or a
detection model's), checked, and the job made from it: a model (and perhaps
one of its snapshots) run on server files, uploads, a text list of
`path [label]` lines, or one split of a dataset of the model's task.

A list line is an image path, then optionally its label: a class name of the
model or a class index (DIGITS' `path label` format); a detection model's list
names images only. A relative path is relative to the list's own folder; blank
lines and `#` comments are skipped. Running the job is inference_job's; this
module imports no TensorFlow.
"""
import functools
import os
import re
from pathlib import Path

from . import config, server_paths, snapshots
from .atomic_json import read_json
from .errors import JobNotFound
from .fields import Field, FormErrors, convert
from .job_state import JobState
from .job_store import Job, JobStore
from .scheduler import Scheduler
from .uploads import over_upload_limit

SOURCES = ("images", "list", "dataset")
TASKS = ("classification", "detection")  # the models an inference job runs
SPLITS = ("train", "val", "test")
UPLOADS = "uploads"  # the job's folder of uploaded images
MAX_LISTED = 10  # bad list lines spelled out in one message; the rest are counted
FIELDS = [
    Field("model", "Model", required=True, help="the id of the model that classifies"),
    Field("epoch", "Snapshot epoch", kind="float", default=None, minimum=0,
          help="the snapshot to use (2, or 2.5 with a fractional snapshot interval); blank: the latest"),
    Field("source", "Images from", kind="choice", choices=SOURCES,
          help="image files or uploads, a text list of `path [label]` lines, or a dataset split"),
    Field("list_file", "List file", kind="path", help="a text file of `path [label]` lines on the server"),
    Field("dataset", "Dataset", help="the id of a dataset"),
    Field("split", "Split", kind="choice", default="val", choices=SPLITS),
    Field("batch_size", "Batch size", kind="int", default=64, minimum=1, maximum=4096, advanced=True),
    Field("top", "Top classes kept per image", kind="int", default=5, minimum=1, maximum=100, advanced=True),
    Field("name", "Name"),
]


class BadLine(ValueError):
    """One list line that cannot be used; the message says why."""


# ------------------------------------------------------------------ list files

def _label_index(text: str, classes: dict[str, int]) -> int | None:
    """The class index that `text` names (a class name, or an index of the model), or None."""
    if text in classes:
        return classes[text]
    if text.isdigit() and int(text) < len(classes):
        return int(text)
    return None


def parse_line(line: str, base: str, classes: dict[str, int] | None, boxes: bool = False) -> tuple[str, int | None]:
    """(absolute image path, class index or None) from one `path [label]` line; BadLine says what is wrong.

    The last word is a label unless a file has the whole line's name (spaces in file names are fine).
    Without the model's labels (not known yet), any last word is taken as a label, checked when the job runs.
    `boxes` (a detection model): the line is a path; a label after an existing file is refused."""
    text = line.strip()
    whole = os.path.normpath(os.path.join(base, os.path.expanduser(text)))
    match = re.match(r"(.*\S)\s+(\S+)$", text)
    if not match or os.path.exists(whole):
        return whole, None
    image = os.path.normpath(os.path.join(base, os.path.expanduser(match.group(1))))
    if boxes:
        if os.path.exists(image):
            raise BadLine(f"{match.group(2)!r} is a label, and a detection model's list names images only (one path "
                          "a line): a label cannot say where the objects are. Remove it, or use a detection dataset")
        return whole, None
    if classes is None:
        return image, None
    last = match.group(2)
    index = _label_index(last, classes)
    if index is None:
        names = list(classes)
        known = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
        raise BadLine(f"{last!r} is neither a class of the model ({known}) nor a class index 0 to "
                      f"{len(names) - 1}, and no file is named {text!r}")
    return image, index


def outside_roots(image: str, roots: list[str], real_folder=os.path.realpath) -> str | None:
    """server_paths.outside_roots for the many files of a list: `real_folder` (os.path.realpath, cached by
    the caller) resolves each folder once; the file itself only when it is a link."""
    folder, name = os.path.split(image)
    real = os.path.realpath(image) if os.path.islink(image) else os.path.join(real_folder(folder), name)
    if any(real == root or real.startswith(root.rstrip(os.sep) + os.sep) for root in roots):
        return None
    return (f"{image} is outside the folders this server may read ({', '.join(roots)}); ask the admin to add "
            "it to DIGITS_DATA_ROOTS")


def iter_list(list_file: str, labels: list[str] | None, boxes: bool = False):
    """(line number, absolute image path, class index or None, or a BadLine) per image line of a list file:
    a bad line (an unknown label, an image outside DIGITS_DATA_ROOTS) comes as BadLine naming its line.
    `boxes`: a detection model's list (see parse_line)."""
    base = os.path.dirname(os.path.abspath(list_file))
    roots = [str(root) for root in config.data_roots()]
    classes = None if labels is None else {name: i for i, name in enumerate(labels)}
    real_folder = functools.lru_cache(maxsize=4096)(os.path.realpath)  # a list names many files in few folders
    with open(list_file, encoding="utf-8") as stream:
        for number, line in enumerate(stream, start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                image, label = parse_line(line, base, classes, boxes)
                if problem := outside_roots(image, roots, real_folder):
                    raise BadLine(problem)
            except BadLine as exc:
                yield number, None, None, BadLine(f"line {number}: {exc}")
                continue
            yield number, image, label, None


def list_problem(list_file: str, labels: list[str] | None, boxes: bool = False) -> str | None:
    """Every bad line of a list file (the first MAX_LISTED spelled out), or None when it can be used."""
    problems, bad_lines, count = [], 0, 0
    line = "image path" if boxes else "`path [label]` line"
    try:
        for _, _, _, bad in iter_list(list_file, labels, boxes):
            count += bad is None
            bad_lines += bad is not None
            if bad is not None and len(problems) < MAX_LISTED:
                problems.append(str(bad))
    except UnicodeDecodeError as exc:
        return f"{list_file} is not a UTF-8 text file (byte {exc.start}); save it as UTF-8 text."
    if problems:
        more = f"; and {bad_lines - MAX_LISTED} more bad line(s)" if bad_lines > MAX_LISTED else ""
        return f"{list_file}: {'; '.join(problems)}{more}. Write one {line} per image."
    if not count:
        return f"{list_file} lists no images; write one {line} per image."
    return None


# ------------------------------------------------------------------ checks

def model_labels(model: Job) -> list[str] | None:
    """The model's class names: from model.json, else from its dataset (a model that has not started)."""
    info = read_json(model.dir / "model.json")
    if info:
        return info["labels"]
    dataset = model.parents[0] if model.parents else None
    stats = read_json(model.dir.parent / dataset / "stats.json") if dataset else None
    return stats["labels"] if stats else None


def model_task(model: Job) -> str:
    """The model's task ("classification", "detection", ...), from its job."""
    return model.spec.get("task") or "classification"


def _model_problem(model_id: str, epoch, store: JobStore) -> str | None:
    try:
        model = store.get(model_id)
    except JobNotFound:
        return f"No model with id {model_id!r}; `digits jobs list` shows the models."
    if model.kind != "model":
        return f"{model_id} is a {model.kind}, not a model."
    if model_task(model) not in TASKS:
        return f"Model {model.name!r} is a {model_task(model)} model; inference jobs run {' and '.join(TASKS)} models."
    if not model.state.is_active and snapshots.for_epoch(model, epoch) is None:
        found = ", ".join(str(e) for e, _ in snapshots.list_snapshots(model)) or "none"
        which = "any snapshot" if epoch is None else f"a snapshot of epoch {epoch}"
        return f"Model {model.name!r} ended {model.state} without {which} (its epochs: {found})."
    return None


def _dataset_problem(values: dict, store: JobStore, task: str) -> tuple[str, str] | None:
    """(field, message) when the dataset or its split cannot be run through a `task` model."""
    try:
        dataset = store.get(values["dataset"])
    except JobNotFound:
        return "dataset", f"No dataset with id {values['dataset']!r}; `digits jobs list` shows the datasets."
    if dataset.kind != "dataset":
        return "dataset", f"{dataset.id} is a {dataset.kind}, not a dataset."
    stats = read_json(dataset.dir / "stats.json")
    if dataset.state is not JobState.DONE or stats is None:
        return "dataset", f"Dataset {dataset.name!r} is {dataset.state}; classify a dataset that is Done."
    if stats.get("task", "classification") != task:
        return "dataset", (f"Dataset {dataset.name!r} is a {stats.get('task', 'classification')} dataset and the "
                           f"model a {task} model; choose a {task} dataset.")
    if not stats["totals"].get(values["split"]):
        have = ", ".join(f"{s} ({n})" for s, n in stats["totals"].items() if n) or "none"
        return "split", f"Dataset {dataset.name!r} has no {values['split']} images; its splits: {have}."
    return None


def _source(raw: dict) -> str | None:
    if raw.get("source"):
        return raw["source"]
    for source, key in (("list", "list_file"), ("dataset", "dataset"), ("images", "images")):
        if raw.get(key):
            return source
    return None


def _images_problems(values: dict, uploads: int) -> dict:
    found = [p for p in (server_paths.problem(image, "file") for image in values["images"]) if p]
    if found:
        more = f" And {len(found) - MAX_LISTED} more." if len(found) > MAX_LISTED else ""
        return {"images": " ".join(found[:MAX_LISTED]) + more}
    if not values["images"] and not uploads:
        return {"images": "Give at least one image file (or upload one)."}
    return {}


def _list_problems(values: dict, labels: list[str] | None, boxes: bool) -> dict:
    if not values.get("list_file"):
        return {"list_file": f"Give the list file: one {'image path' if boxes else '`path [label]` line'} per image."}
    problem = server_paths.problem(values["list_file"], "file") or list_problem(values["list_file"], labels, boxes)
    return {"list_file": problem} if problem else {}


def _split_problems(values: dict, store: JobStore, task: str) -> dict:
    if not values.get("dataset"):
        return {"dataset": "Give the id of the dataset whose split to classify."}
    found = _dataset_problem(values, store, task)
    return {found[0]: found[1]} if found else {}


def check(raw: dict, store: JobStore, uploads: int = 0) -> dict:
    """Typed params from raw input (`uploads`: how many uploaded images come with it), or FormErrors."""
    values, errors = convert(FIELDS, {**raw, "source": _source(raw) or ("images" if uploads else None)})
    values["images"] = [str(p).strip() for p in raw.get("images") or [] if str(p).strip()]
    if values.get("model") and (problem := _model_problem(values["model"], values["epoch"], store)):
        errors["model"] = problem
    model_ok = values.get("model") and "model" not in errors
    task = model_task(store.get(values["model"])) if model_ok else "classification"
    source = values.get("source")
    if source is None and "source" not in errors:
        errors["source"] = "Give images (or uploads), a list file or a dataset to classify."
    elif source == "images":
        errors.update(_images_problems(values, uploads))
    elif source == "list":
        errors.update(_list_problems(values, model_labels(store.get(values["model"])) if model_ok else None,
                                     task == "detection"))
    elif source == "dataset" and "split" not in errors:
        errors.update(_split_problems(values, store, task))
    if errors:
        raise FormErrors(errors)
    if values["epoch"] is not None and float(values["epoch"]).is_integer():
        values["epoch"] = int(values["epoch"])  # 2, as snapshots name it: epoch_2.keras
    return values


# ------------------------------------------------------------------ the job

def upload_names(names) -> list[str]:
    """File names to save uploads under: the original base names, de-duplicated (a.png, a_2.png, ...)."""
    taken, out = set(), []
    for raw in names:
        name = Path(str(raw).replace("\\", "/")).name.strip().strip(".") or "upload"  # never "." or ".."
        stem, suffix, n = Path(name).stem, Path(name).suffix, 1
        while name.lower() in taken:
            n += 1
            name = f"{stem}_{n}{suffix}"
        taken.add(name.lower())
        out.append(name)
    return out


def _default_name(params: dict, model: Job, store: JobStore) -> str:
    if params["source"] == "dataset":
        return f"{model.name} on {store.get(params['dataset']).name} ({params['split']})"
    if params["source"] == "list":
        return f"{model.name} on {Path(params['list_file']).name}"
    count = len(params["images"]) + len(params["uploads"])
    return f"{model.name} on {count} image{'s' if count != 1 else ''}"


def create(raw: dict, store: JobStore | None = None, uploads=None) -> Job:
    """Check the input, write the job (a child of its model) and hand it to the scheduler.

    Args:
        raw: model, epoch, source ("images" | "list" | "dataset"; found from the other keys when blank),
            images (absolute server paths), list_file, dataset, split, batch_size, top, name.
        store: the jobs directory. Defaults to DIGITS_JOBS_DIR's.
        uploads: (file name, bytes) pairs of uploaded images, saved under the job's uploads/ folder
            (original names, de-duplicated). Defaults to none.

    Example:
        create({"model": model_id, "dataset": dataset_id, "split": "val"})
    """
    store = store or JobStore()
    uploads = list(uploads or ())
    if problem := over_upload_limit(sum(len(data) for _, data in uploads), f"This batch of {len(uploads)} images"):
        raise FormErrors({UPLOADS: problem})
    params = check(raw, store, uploads=len(uploads))
    model = store.get(params.pop("model"))
    name = params.pop("name") or ""
    params = {"model": model.id, **params, "uploads": upload_names(n for n, _ in uploads)}
    job = store.create("inference", name or _default_name(params, model, store), params, parents=[model.id])
    if uploads:
        (job.dir / UPLOADS).mkdir()
        for file_name, (_, data) in zip(params["uploads"], uploads):
            (job.dir / UPLOADS / file_name).write_bytes(data)
    return Scheduler(store).submit(job)
