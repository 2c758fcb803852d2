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
from . import devices, solvers
from ..detection_decode import DECODING
from .callbacks import BestSnapshot, JobProgress, LearningRatePolicy, keras_name
from .centernet import ValidationMAP
from .epoch_plan import EpochPlan
from .input_pipeline import make_dataset
from .model_source import new_model
from .preprocessing import with_mean_image


def metrics(task: str, n_classes: int) -> list:
    """Classification: accuracy. Segmentation: pixel accuracy and mean IoU over the classes.
    Detection: none in Keras (its loss parts are the model's own; mAP comes from ValidationMAP)."""
    if task == "detection":
        return []
    if task == "segmentation":
        return [keras.metrics.SparseCategoricalAccuracy(name="pixel_accuracy"),
                keras.metrics.MeanIoU(num_classes=n_classes, sparse_y_true=True, sparse_y_pred=False, name="mean_iou")]
    return ["accuracy"]


def dataset_of(job: Job) -> tuple[Job, dict]:
    dataset = JobStore(job.dir.parent).get(job.parents[0])
    stats = read_json(dataset.dir / "stats.json")
    if stats is None:
        raise DigitsError(f"Dataset {dataset.id} has no stats.json: it did not finish building.")
    return dataset, stats


def write_model_info(job: Job, dataset: Job, stats: dict) -> None:
    source = {k: v for k, v in dataset.params.items() if k in ("source", "plugin", "options")}
    if (dataset.dir / "plugin.json").exists():  # the plugin's own state, as the dataset was encoded with it
        source["options"] = read_json(dataset.dir / "plugin.json")
    earlier = read_json(job.dir / "model.json") or {}  # a resume keeps what model_source recorded at the start
    task = stats.get("task", "classification")
    write_json(job.dir / "model.json", {
        "labels": stats["labels"], "image": stats["image"], "dataset": dataset.id, "network": job.params["network"],
        "task": task, "source": source, "crop": job.params.get("crop_size"),
        **({"box_decoding": DECODING} if task == "detection" else {}),
        **{k: earlier[k] for k in ("started_from",) if k in earlier},
    })


def splits(dataset: Job, stats: dict, params: dict):
    """(the network's input shape, the train split's tf.data pipeline, the val split's or None).
    Training batches are shuffled unless asked not to, cropped at random and augmented as asked."""
    image = stats["image"]
    shape = (image["height"], image["width"], image["channels"])
    crop = params.get("crop_size")
    if crop and crop > min(shape[:2]):
        raise DigitsError(f"Crop size {crop} is larger than the dataset's {shape[1]}x{shape[0]} images; "
                          f"choose at most {min(shape[:2])}.")

    def pipeline(split: str, train: bool):
        return make_dataset(dataset.dir / split, shape, image["encoding"], params["batch_size"],
                            shuffle=train and params.get("shuffle", True) is not False, seed=params.get("seed"),
                            task=stats.get("task", "classification"), crop=crop,
                            train_changes=params if train else None, n_classes=len(stats["labels"]))
    val = pipeline("val", False) if (dataset.dir / "val").exists() else None
    return ((crop, crop, shape[2]) if crop else shape), pipeline("train", True), val


def _fit_data(train_ds, plan: EpochPlan, start_step: int):
    """fit()'s training data and steps_per_epoch: the split repeated, started where a resumed run left
    its epoch. With steps_per_epoch, Keras reads every epoch (or sub-epoch) from one iterator; given the
    split as it is, it makes a new iterator each epoch while the last one's threads still run, and on
    2 cores half the epochs took twice as long (docs/performance.md)."""
    return train_ds.repeat().skip(start_step % plan.steps), plan.chunk


def run(job: Job, stop: StopToken) -> None:
    if (job.params.get("workers") or 1) > 1:  # one of several machines, started by `digits model join`
        from .multi_worker import run as run_one_of_several_workers
        return run_one_of_several_workers(job, stop)
    strategy = devices.strategy()  # first: splitting the CPU must happen before TensorFlow runs anything
    params = job.params
    dataset, stats = dataset_of(job)
    stats = with_mean_image(params, stats, dataset.dir)
    write_model_info(job, dataset, stats)
    if params.get("seed") is not None:
        keras.utils.set_random_seed(params["seed"])
    shape, train_ds, val_ds = splits(dataset, stats, params)
    start = job.status().get("resume_epoch") or 0
    with strategy.scope():  # several GPUs: variables mirrored on each, the batch split across them
        model = resumed(job, start) if start else compiled(new_model(job, shape, stats), params, stats)
    model.summary(print_fn=lambda line, **_: print(line, flush=True))
    samples = lmdb_store.count(dataset.dir / "train")
    plan = EpochPlan.for_job(params, math.ceil(samples / params["batch_size"]))
    first = plan.keras_epoch_of(start)
    data, steps_per_epoch = _fit_data(train_ds, plan, plan.first_step(first))
    model.fit(data, epochs=plan.keras_epochs, initial_epoch=first, steps_per_epoch=steps_per_epoch,
              validation_data=val_ds, validation_freq=plan.validation_freq(), verbose=2,
              callbacks=[LearningRatePolicy(params, plan.steps * plan.epochs, start_step=plan.first_step(first)),
                         *_detection_map(stats, val_ds),  # before JobProgress: it records these logs
                         JobProgress(job, stop, params["epochs"], plan.steps, samples, plan=plan),
                         *watching(job, params, val_ds, plan), *_tensorboard(job)])


def _detection_map(stats: dict, val_ds) -> list:
    """Detection with a validation split: val mAP and per-class AP after each validation."""
    if stats.get("task") != "detection" or val_ds is None:
        return []
    return [ValidationMAP(val_ds, stats["labels"])]


def watching(job: Job, params: dict, val_ds, plan: EpochPlan) -> list:
    """The best snapshot, and early stopping when asked for, on the watched validation metric."""
    metric = params.get("watch_metric") or "val/loss"
    if val_ds is None:
        return []  # no validation split: nothing to watch
    callbacks = [BestSnapshot(job, metric, plan)]
    if params.get("early_stop_patience"):  # patience is in epochs; Keras counts validations
        patience = plan.validations_in(params["early_stop_patience"])
        callbacks.append(keras.callbacks.EarlyStopping(monitor=keras_name(metric), patience=patience,
                                                       mode="min" if metric.endswith("loss") else "max", verbose=1))
    return callbacks


def _tensorboard(job: Job) -> list:
    """TensorBoard logs in the job folder, when tensorboard is installed (it is in requirements.txt)."""
    if importlib.util.find_spec("tensorboard") is None:
        print("tensorboard is not installed: no TensorBoard logs", flush=True)
        return []
    return [keras.callbacks.TensorBoard(log_dir=str(job.dir / "tensorboard"))]


def compiled(model: keras.Model, params: dict, stats: dict) -> keras.Model:
    detection = stats.get("task") == "detection"  # CenterNet computes its own loss from the packed targets
    model.compile(optimizer=solvers.get(params["solver"], params["lr"], weight_decay=params.get("weight_decay"),
                                        accumulation=params.get("batch_accumulation")),
                  loss=None if detection else keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=metrics(stats.get("task", "classification"), len(stats["labels"])))
    return model


def resumed(job: Job, epoch: int | float) -> keras.Model:
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
