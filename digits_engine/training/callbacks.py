"""Keras callbacks that connect a fit() to its job folder: metrics to
progress.jsonl, progress to status.json, snapshots at the snapshot interval, the learning
rate policy, and a cooperative stop when the job is aborted.
"""
import math
import os
import time
from pathlib import Path

import keras

from .. import lr_policies, progress_log, snapshots
from ..atomic_json import read_json, write_json
from ..job_store import Job
from ..stop_token import StopToken
from .epoch_plan import EpochPlan

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
    """Keras reports each training metric as its mean since the (Keras) epoch began;
    this recovers the mean over the batches since the previous take(), so that
    a chart shows where training is now rather than an average that lags.
    add() banks the batches of a Keras epoch that ends without a point, so a
    window may span sub-epochs."""

    def __init__(self):
        self.sums, self.count = {}, 0
        self.reset()

    def reset(self) -> None:
        """A new Keras epoch: its running means start again."""
        self.seen, self.means = 0, {}

    def add(self, batches_seen: int, logs: dict) -> None:
        window = batches_seen - self.seen
        if window <= 0:
            return
        for k, v in logs.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v) * batches_seen - self.means.get(k, 0.0) * self.seen
        self.count += window
        self.seen, self.means = batches_seen, {k: float(v) for k, v in logs.items()}

    def take(self, batches_seen: int, logs: dict) -> dict:
        self.add(batches_seen, logs)
        out = {k: v / self.count for k, v in self.sums.items()} if self.count else {}
        self.sums, self.count = {}, 0
        return out


class JobProgress(keras.callbacks.Callback):
    """Metrics to progress.jsonl in real epochs (a few training points an epoch, and one with the
    validation metrics wherever the plan validates), progress to status.json, snapshots at the
    plan's interval and after the last epoch, and a cooperative stop."""

    def __init__(self, job: Job, stop: StopToken, epochs: int, steps_per_epoch: int, samples: int = 0,
                 plan: EpochPlan | None = None):
        super().__init__()
        self.job, self.stop, self.epochs, self.steps = job, stop, epochs, max(steps_per_epoch, 1)
        self.plan = plan or EpochPlan(self.steps, epochs, self.steps)
        self.samples = samples
        points = min(POINTS_PER_EPOCH, self.steps)
        self.marks = {round(k * self.steps / points) for k in range(1, points + 1)}  # evenly spaced, last = steps
        self.first_step = self.batches = 0
        self.timed_from = None  # (monotonic time, step) where the current real epoch's timing began
        self.window, self.pending = WindowMeans(), False
        self.ended, self.saved = None, None  # the last finished Keras epoch, the last one snapshotted
        self.last_status = 0.0
        self.snapshots = job.dir / "snapshots"
        self.snapshots.mkdir(exist_ok=True)

    def _lr(self) -> float:
        return float(f"{float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)):.7g}")  # float32 noise

    def on_epoch_begin(self, epoch, logs=None):
        self.first_step, self.batches = self.plan.first_step(epoch), 0
        self.window.reset()
        if self.timed_from is None or self.first_step % self.steps == 0:  # a real epoch begins
            self.timed_from = (time.monotonic(), self.first_step)

    def on_train_batch_end(self, batch, logs=None):
        self.batches = batch + 1
        done = self.first_step + self.batches
        if (done % self.steps or self.steps) in self.marks:
            if self.batches < self.plan.chunk:  # a Keras epoch's last point is written at its end
                window = self.window.take(self.batches, logs or {})
                record = {"epoch": self.plan.epoch_at(done), **_clean(window, "train"), "lr": self._lr()}
                progress_log.append(self.job.progress_path, record)
            else:
                self.pending = True
        now = time.monotonic()
        if now - self.last_status > 0.5:
            self.job.update_status(progress=round(min(done / (self.plan.epochs * self.steps), 0.999), 4))
            self.last_status = now
        if self.stop.requested:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.stop.requested and self.batches < self.plan.chunk:
            self.model.stop_training = True
            return  # cut short: not a finished epoch; on_train_end keeps its weights in aborted.keras
        logs, end = logs or {}, self.plan.end_step(epoch)
        train = {k: v for k, v in logs.items() if not k.startswith("val_")}
        val = {k: v for k, v in logs.items() if k.startswith("val_")}
        if val or self.plan.ends_real_epoch(epoch) or self.pending:
            record = {"epoch": self.plan.epoch_at(end), **_clean(self.window.take(self.batches, train), "train"),
                      **_clean(val, "val"), "lr": self._lr()}
            if self.plan.ends_real_epoch(epoch):
                record.update(self._timing(end))
            progress_log.append(self.job.progress_path, record)
            self.pending = False
        else:
            self.window.add(self.batches, train)  # carried into the next point
        self.ended = epoch
        if self.plan.snapshots(epoch):
            self._snapshot(epoch)
        self.job.update_status(progress=round(min(end / (self.plan.epochs * self.steps), 0.999), 4))
        if self.stop.requested:
            self.model.stop_training = True

    def _timing(self, end: int) -> dict:
        """The real epoch's time (training and validation) and speed; a resumed run's first epoch,
        timed over the part it ran, is scaled to a whole one."""
        when, step = self.timed_from
        seconds = max(time.monotonic() - when, 1e-9)
        share = (end - step) / self.steps
        out = {"time/epoch_seconds": round(seconds / share, 3)}
        if self.samples:
            out["time/images_per_second"] = round(self.samples * share / seconds, 1)
        return out

    def _snapshot(self, epoch: int) -> None:
        save_snapshot(self.model, snapshots.path_for(self.job, self.plan.end_epoch(epoch)))
        self.saved = epoch

    def on_train_end(self, logs=None):
        if self.stop.requested:  # keep the work done in the interrupted epoch too
            save_snapshot(self.model, self.snapshots / "aborted.keras")
        elif self.ended is not None and self.saved != self.ended:  # stopped early: the final model is kept
            self._snapshot(self.ended)


class BestSnapshot(keras.callbacks.Callback):
    """Keeps snapshots/best.keras at the epoch where the watched metric was best (DIGITS had
    no such thing), with best.json saying which epoch and value."""

    def __init__(self, job: Job, metric: str, plan: EpochPlan | None = None):
        super().__init__()
        self.job, self.metric, self.key, self.plan = job, metric, keras_name(metric), plan
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
                       {"epoch": self.plan.end_epoch(epoch) if self.plan else epoch + 1, "metric": self.metric,
                        "value": value})


def keras_name(metric: str) -> str:
    """"val/accuracy" (our name) -> "val_accuracy" (Keras' log key)."""
    split, _, name = metric.partition("/")
    return name if split == "train" else f"{split}_{name}"


class LearningRatePolicy(keras.callbacks.Callback):
    """Sets the optimizer's rate before every batch from the job's policy (a variable assignment
    only when the rate changes: a step policy changes it a few times a run, not every batch)."""

    def __init__(self, params: dict, total_steps: int, start_step: int = 0):
        super().__init__()
        self.job_params, self.total, self.step = params, max(total_steps, 1), start_step
        self.rate = None

    def on_train_begin(self, logs=None):
        self.rate = None  # a resumed or reloaded optimizer holds its own value: set it at the first batch

    def on_train_batch_begin(self, batch, logs=None):
        rate = lr_policies.learning_rate(self.job_params, 100.0 * self.step / self.total)
        if rate != self.rate:
            self.model.optimizer.learning_rate = rate
            self.rate = rate
        self.step += 1
