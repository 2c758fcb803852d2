"""Keras callbacks that connect a fit() to its job folder: metrics to
progress.jsonl, progress to status.json, a snapshot every epoch, the learning
rate policy, and a cooperative stop when the job is aborted.
"""
import math
import os
import time
from pathlib import Path

import keras

from .. import lr_policies, progress_log
from ..atomic_json import read_json, write_json
from ..job_store import Job
from ..stop_token import StopToken

POINTS_PER_EPOCH = 8  # train-loss points charted within an epoch


def _clean(logs: dict, prefix: str) -> dict:
    out = {}
    for key, value in (logs or {}).items():
        if key == "learning_rate":
            continue
        value = float(value)
        if math.isnan(value) or math.isinf(value):
            raise FloatingPointError(f"{key} became {value}: training diverged. Try a lower learning rate.")
        name = key[4:] if key.startswith("val_") else key
        out[f"{'val' if key.startswith('val_') else prefix}/{name}"] = value
    return out


def save_snapshot(model: keras.Model, path: Path) -> None:
    """Write the whole model (weights and optimizer state), atomically: a worker killed while
    saving leaves the previous snapshots intact, never a torn one that a resume would load."""
    partial = path.with_name(f".{path.stem}.partial.keras")
    model.save(partial)
    os.replace(partial, path)


class WindowMeans:
    """Keras reports each training metric as its mean since the epoch began;
    this recovers the mean over the batches since the previous call, so that
    a chart shows where training is now rather than an average that lags."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.seen, self.means = 0, {}

    def take(self, batches_seen: int, logs: dict) -> dict:
        window = batches_seen - self.seen
        out = {k: (float(v) * batches_seen - self.means.get(k, 0.0) * self.seen) / window for k, v in logs.items()}
        self.seen, self.means = batches_seen, {k: float(v) for k, v in logs.items()}
        return out


class JobProgress(keras.callbacks.Callback):
    def __init__(self, job: Job, stop: StopToken, epochs: int, steps_per_epoch: int, samples: int = 0):
        super().__init__()
        self.job, self.stop, self.epochs, self.steps = job, stop, epochs, max(steps_per_epoch, 1)
        self.samples, self.epoch_start = samples, time.monotonic()
        points = min(POINTS_PER_EPOCH, self.steps)
        self.marks = {round(k * self.steps / points) for k in range(1, points + 1)}  # evenly spaced, last = steps
        self.epoch = 0
        self.window, self.last_window = WindowMeans(), {}
        self.last_status = 0.0
        self.snapshots = job.dir / "snapshots"
        self.snapshots.mkdir(exist_ok=True)

    def _lr(self) -> float:
        return float(f"{float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)):.7g}")  # float32 noise

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self.window.reset()
        self.epoch_start = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        done = self.epoch * self.steps + batch + 1
        if batch + 1 in self.marks:
            self.last_window = self.window.take(batch + 1, logs or {})
            if batch + 1 < self.steps:  # the epoch's last point is written with its validation
                record = {"epoch": round(done / self.steps, 4), **_clean(self.last_window, "train"), "lr": self._lr()}
                progress_log.append(self.job.progress_path, record)
        now = time.monotonic()
        if now - self.last_status > 0.5:
            self.job.update_status(progress=round(min(done / (self.epochs * self.steps), 0.999), 4))
            self.last_status = now
        if self.stop.requested:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        train = self.last_window or {k: v for k, v in logs.items() if not k.startswith("val_")}
        val = {k: v for k, v in logs.items() if k.startswith("val_")}
        seconds = time.monotonic() - self.epoch_start  # training and validation
        record = {"epoch": epoch + 1, **_clean(train, "train"), **_clean(val, "val"), "lr": self._lr(),
                  "time/epoch_seconds": round(seconds, 3)}
        if self.samples:
            record["time/images_per_second"] = round(self.samples / seconds, 1)
        self.last_window = {}
        progress_log.append(self.job.progress_path, record)
        save_snapshot(self.model, self.snapshots / f"epoch_{epoch + 1}.keras")
        self.job.update_status(progress=round(min((epoch + 1) / self.epochs, 0.999), 4))
        if self.stop.requested:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stop.requested:  # keep the work done in the interrupted epoch too
            save_snapshot(self.model, self.snapshots / "aborted.keras")


class BestSnapshot(keras.callbacks.Callback):
    """Keeps snapshots/best.keras at the epoch where the watched metric was best (DIGITS had
    no such thing), with best.json saying which epoch and value."""

    def __init__(self, job: Job, metric: str):
        super().__init__()
        self.job, self.metric, self.key = job, metric, keras_name(metric)
        self.minimize = metric.endswith("loss")
        earlier = read_json(job.dir / "snapshots" / "best.json") or {}  # a resumed job keeps its best so far
        self.best = earlier.get("value") if earlier.get("metric") == metric else None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.key)
        if value is None:
            return
        value = float(value)
        if self.best is None or (value < self.best if self.minimize else value > self.best):
            self.best = value
            save_snapshot(self.model, self.job.dir / "snapshots" / "best.keras")
            write_json(self.job.dir / "snapshots" / "best.json",
                       {"epoch": epoch + 1, "metric": self.metric, "value": value})


def keras_name(metric: str) -> str:
    """"val/accuracy" (our name) -> "val_accuracy" (Keras' log key)."""
    split, _, name = metric.partition("/")
    return name if split == "train" else f"{split}_{name}"


class LearningRatePolicy(keras.callbacks.Callback):
    """Sets the optimizer's rate before every batch from the job's policy."""

    def __init__(self, params: dict, total_steps: int, start_step: int = 0):
        super().__init__()
        self.job_params, self.total, self.step = params, max(total_steps, 1), start_step

    def on_train_batch_begin(self, batch, logs=None):
        rate = lr_policies.learning_rate(self.job_params, 100.0 * self.step / self.total)
        self.model.optimizer.learning_rate = rate
        self.step += 1
