"""Trains a model job: builds the network for its dataset, fits it with the
job's solver and schedule, and leaves snapshots, metrics and model.json
(what inference needs: labels and the input spec) in the job folder.
"""
import importlib.util
import math

import keras

from .. import lmdb_store, progress_log, snapshots
from ..atomic_json import read_json, write_json
from ..errors import DigitsError
from ..job_store import Job, JobStore
from ..stop_token import StopToken
from . import solvers
from .callbacks import BestSnapshot, JobProgress, LearningRatePolicy, keras_name
from .input_pipeline import make_dataset
from .model_source import new_model


def metrics(task: str, n_classes: int) -> list:
    """Classification: accuracy. Segmentation: pixel accuracy and mean IoU over the classes."""
    if task == "segmentation":
        return [keras.metrics.SparseCategoricalAccuracy(name="pixel_accuracy"),
                keras.metrics.MeanIoU(num_classes=n_classes, sparse_y_true=True, sparse_y_pred=False, name="mean_iou")]
    return ["accuracy"]


def _dataset_of(job: Job) -> tuple[Job, dict]:
    dataset = JobStore(job.dir.parent).get(job.parents[0])
    stats = read_json(dataset.dir / "stats.json")
    if stats is None:
        raise DigitsError(f"Dataset {dataset.id} has no stats.json: it did not finish building.")
    return dataset, stats


def _write_model_info(job: Job, dataset: Job, stats: dict) -> None:
    source = {k: v for k, v in dataset.params.items() if k in ("source", "plugin", "options")}
    if (dataset.dir / "plugin.json").exists():  # the plugin's own state, as the dataset was encoded with it
        source["options"] = read_json(dataset.dir / "plugin.json")
    write_json(job.dir / "model.json", {
        "labels": stats["labels"], "image": stats["image"], "dataset": dataset.id, "network": job.params["network"],
        "task": stats.get("task", "classification"), "source": source,
    })


def _splits(dataset: Job, stats: dict, params: dict):
    """tf.data pipelines for the train split and, when there is one, the val split."""
    image = stats["image"]
    shape = (image["height"], image["width"], image["channels"])

    def pipeline(split: str, shuffle: bool):
        return make_dataset(dataset.dir / split, shape, image["encoding"], params["batch_size"], shuffle=shuffle,
                            seed=params.get("seed"), task=stats.get("task", "classification"))
    return shape, pipeline("train", True), pipeline("val", False) if (dataset.dir / "val").exists() else None


def run(job: Job, stop: StopToken) -> None:
    params = job.params
    dataset, stats = _dataset_of(job)
    _write_model_info(job, dataset, stats)
    if params.get("seed") is not None:
        keras.utils.set_random_seed(params["seed"])
    shape, train_ds, val_ds = _splits(dataset, stats, params)
    start = job.status().get("resume_epoch") or 0
    model = _resumed(job, start) if start else _compiled(new_model(job, shape, stats), params, stats)
    model.summary(print_fn=lambda line, **_: print(line, flush=True))
    samples = lmdb_store.count(dataset.dir / "train")
    steps = math.ceil(samples / params["batch_size"])
    model.fit(train_ds, epochs=params["epochs"], initial_epoch=start, validation_data=val_ds, verbose=2,
              callbacks=[LearningRatePolicy(params, steps * params["epochs"], start_step=start * steps),
                         JobProgress(job, stop, params["epochs"], steps, samples), *_watching(job, params, val_ds),
                         *_tensorboard(job)])


def _watching(job: Job, params: dict, val_ds) -> list:
    """The best snapshot, and early stopping when asked for, on the watched validation metric."""
    metric = params.get("watch_metric") or "val/loss"
    if val_ds is None:
        return []  # no validation split: nothing to watch
    callbacks = [BestSnapshot(job, metric)]
    if params.get("early_stop_patience"):
        callbacks.append(keras.callbacks.EarlyStopping(monitor=keras_name(metric), patience=params["early_stop_patience"],
                                                       mode="min" if metric.endswith("loss") else "max", verbose=1))
    return callbacks


def _tensorboard(job: Job) -> list:
    """TensorBoard logs in the job folder, when tensorboard is installed (it is in requirements.txt)."""
    if importlib.util.find_spec("tensorboard") is None:
        print("tensorboard is not installed: no TensorBoard logs", flush=True)
        return []
    return [keras.callbacks.TensorBoard(log_dir=str(job.dir / "tensorboard"))]


def _compiled(model: keras.Model, params: dict, stats: dict) -> keras.Model:
    model.compile(optimizer=solvers.get(params["solver"], params["lr"], weight_decay=params.get("weight_decay"),
                                        accumulation=params.get("batch_accumulation")),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=metrics(stats.get("task", "classification"), len(stats["labels"])))
    return model


def _resumed(job: Job, epoch: int) -> keras.Model:
    """The model as it was after `epoch`: weights and optimizer state from its snapshot. Metrics and
    snapshots from after that epoch are dropped, so the curves continue without gap or repeat."""
    print(f"resuming from the snapshot of epoch {epoch}", flush=True)
    progress_log.keep_until(job.progress_path, epoch)
    for later, path in snapshots.list_snapshots(job):
        if later > epoch:
            path.unlink()
    (job.dir / "snapshots" / "aborted.keras").unlink(missing_ok=True)
    best = read_json(job.dir / "snapshots" / "best.json") or {}
    if best.get("epoch", 0) > epoch:  # found by the epochs that are redone
        for name in ("best.keras", "best.json"):
            (job.dir / "snapshots" / name).unlink(missing_ok=True)
    return keras.models.load_model(snapshots.for_epoch(job, epoch))
