"""The model form's checks on where the network comes from: a standard network
(pretrained or not), a previous model to fine-tune, or custom code. No
TensorFlow here: the form runs these.
"""
from . import config, pretrained_weights, snapshots
from .atomic_json import read_json
from .errors import JobNotFound
from .job_store import Job, JobStore

SOURCES = ("previous", "custom")  # network choices that are not a standard network
SOURCE_LABELS = {"previous": "Previous network (fine-tune a model)", "custom": "Custom network (Python code)"}

CUSTOM_NETWORK_EXAMPLE = '''\
import keras
from keras import layers


def build_model(input_shape, num_classes):
    # input_shape: (height, width, channels) of normalised pixels.
    # Return a keras.Model with one logit per class (no softmax); for segmentation,
    # (height, width, num_classes) logits per pixel.
    inputs = keras.Input(shape=input_shape)
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(inputs)
    x = layers.MaxPooling2D(2, padding="same")(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs)
'''


def custom_refused() -> str | None:
    if config.allow_custom_code():
        return None
    return ("Custom network code is switched off on this server (DIGITS_ALLOW_CUSTOM_CODE=0); pick a standard "
            "network, or ask the admin to allow custom code.")


def check(values: dict, store: JobStore) -> dict[str, str]:
    """{field: message} for the network's source. Also settles `values`: a blank previous epoch
    becomes the previous model's last one, and custom code is dropped unless the network is custom
    (the form always holds the pre-filled example)."""
    network = values.get("network")
    dataset = _dataset(values.get("dataset"), store)
    image = dataset_image(dataset) if dataset else None
    errors = {}
    if network != "custom":
        values["custom_code"] = None
    elif problem := custom_refused():
        errors["network"] = problem
    elif not (values.get("custom_code") or "").strip():
        errors["custom_code"] = ("Write the network's code: a function build_model(input_shape, num_classes) "
                                 "that returns a keras.Model (the form's example is one).")
    if network == "previous":
        errors.update(_previous(values, store, dataset, image))
    elif values.get("previous_model") or values.get("previous_epoch") is not None:
        errors["previous_model"] = "A previous model is used only with the network \"previous\": pick it, or clear this."
    errors.update(pretrained_weights.check(network, values.get("pretrained"), values.get("weights_file"), image))
    return errors


def _dataset(dataset_id, store: JobStore) -> Job | None:
    try:
        job = store.get(dataset_id) if dataset_id else None
    except JobNotFound:
        return None  # check() reports it
    return job if job and job.kind == "dataset" else None


def dataset_image(dataset: Job) -> dict | None:
    """{height, width, channels} of the dataset's images: from stats.json once built, else as asked."""
    stats = read_json(dataset.dir / "stats.json")
    if stats and stats.get("image"):
        return stats["image"]
    params = dataset.params
    if all(params.get(k) for k in ("height", "width", "channels")):
        return {k: int(params[k]) for k in ("height", "width", "channels")}
    return None  # a plugin dataset still building: the worker checks


def _epochs_text(epochs: list[int]) -> str:
    return ", ".join(map(str, epochs)) if len(epochs) <= 6 else f"{epochs[0]} to {epochs[-1]}"


def _input_size(image: dict | None, crop: int | None) -> tuple | None:
    """(width, height, channels) the network takes: the images', or the crop's."""
    if not image:
        return None
    return (crop, crop, int(image["channels"])) if crop else tuple(int(image[k]) for k in ("width", "height", "channels"))


def _size(size: tuple) -> str:
    return "x".join(map(str, size))


def _previous(values: dict, store: JobStore, dataset: Job | None, image: dict | None) -> dict[str, str]:
    model_id = (values.get("previous_model") or "").strip()
    if not model_id:
        return {"previous_model": "Give the id of the model to fine-tune (shown on its page and in `digits jobs list`)."}
    try:
        previous = store.get(model_id)
    except JobNotFound:
        return {"previous_model": f"No model with id {model_id!r}; `digits jobs list` shows the jobs that exist."}
    if previous.kind != "model":
        return {"previous_model": f"{model_id} is a dataset, not a model."}
    epochs = [epoch for epoch, _ in snapshots.list_snapshots(previous)]
    if not epochs:
        return {"previous_model": f"Model {previous.name!r} has no epoch snapshot yet; it saves one at the end of "
                                  "each epoch."}
    if values.get("previous_epoch") is None:
        values["previous_epoch"] = epochs[-1]
    elif values["previous_epoch"] not in epochs:
        return {"previous_epoch": f"Model {previous.name!r} has no snapshot of epoch {values['previous_epoch']}; "
                                  f"it has epochs {_epochs_text(epochs)}."}
    info = read_json(previous.dir / "model.json") or {}
    trained = _input_size(info.get("image"), info.get("crop"))
    wanted = _input_size(image, values.get("crop_size"))
    if trained and wanted and trained != wanted:
        return {"previous_model": f"Model {previous.name!r} takes {_size(trained)} inputs and this one would take "
                                  f"{_size(wanted)} (width x height x channels, after any crop); pick a model "
                                  "trained on images of this size, or a dataset built at its size."}
    task = dataset.spec.get("task", "classification") if dataset else None
    if task and info.get("task") and info["task"] != task:
        return {"previous_model": f"Model {previous.name!r} is a {info['task']} model; this is a {task} dataset."}
    return {}
