"""One worker of a model trained on several machines: tf.distribute.MultiWorkerMirroredStrategy
over the cluster in TF_CONFIG (cluster_config), started on each machine by `digits model join`.

Keras 3's fit fails under this strategy (keras-team/keras#20585), so this is a custom loop:
every worker runs the same steps (`strategy.run` on each of its replicas, gradients summed
across all of them by the optimizer), on its share of every epoch's batches
(`distribute_datasets_from_function`, per-replica batch = batch size // replicas, losses
scaled by the whole batch), with the job's solver and learning-rate policy. Each worker
validates its share of the val split; the sums are added up across workers.

Worker 0, the chief, is the only one that writes the job's files (progress.jsonl, status,
model.json, snapshots, through the same callbacks fit uses); every worker writes
workers/<index>.json when it ends: its step count and a hash of its weights.
"""
import hashlib
import math
import signal

import keras
import numpy as np
import tensorflow as tf

from .. import cluster_config, lmdb_store, snapshots
from ..atomic_json import write_json
from ..device_choice import ACCUMULATION_UNSUPPORTED
from ..errors import DigitsError
from ..job_store import Job
from ..stop_token import StopToken
from .callbacks import JobProgress, LearningRatePolicy
from .epoch_plan import EpochPlan
from .model_source import new_model
from .preprocessing import with_mean_image
from .trainer import compiled, dataset_of, resumed, splits, watching, write_model_info

SUM = tf.distribute.ReduceOp.SUM


def run(job: Job, stop: StopToken) -> None:
    task = cluster_config.read(job.params["workers"])
    strategy = tf.distribute.MultiWorkerMirroredStrategy()  # first: it must exist before TensorFlow runs anything
    for signum in (signal.SIGTERM, signal.SIGINT):  # the strategy took them over: the stop handlers again
        signal.signal(signum, signal.getsignal(signum))
    print(f"devices: MultiWorkerMirroredStrategy, worker {task.index} of {len(task.workers)} "
          f"({task.workers[task.index]}{', the chief' if task.is_chief else ''}), "
          f"{strategy.num_replicas_in_sync} replicas in all", flush=True)
    Training(job, stop, task, strategy).run()


def weights_sha256(model: keras.Model) -> str:
    """A hash of every weight's bytes: equal on two workers when they hold the same model."""
    digest = hashlib.sha256()
    for weights in model.get_weights():
        digest.update(np.ascontiguousarray(weights).tobytes())
    return digest.hexdigest()


def confusion_scores(confusion: np.ndarray) -> dict:
    """Accuracy and mean IoU (over the classes seen or predicted, as keras.metrics.MeanIoU) of a confusion matrix."""
    true_positives = np.diag(confusion)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - true_positives
    seen = union > 0
    return {"accuracy": float(true_positives.sum() / max(confusion.sum(), 1)),
            "mean_iou": float(np.mean(true_positives[seen] / union[seen])) if seen.any() else 0.0}


class Training:
    """The loop on one worker; the attributes every worker computes alike."""

    def __init__(self, job: Job, stop: StopToken, task: cluster_config.ClusterTask, strategy):
        self.job, self.stop, self.task, self.strategy = job, stop, task, strategy
        self.params = params = job.params
        self.dataset, stats = dataset_of(job)
        self.stats = with_mean_image(params, stats, self.dataset.dir)
        self.kind = self.stats.get("task", "classification")
        self.n_classes = len(self.stats["labels"])
        if (params.get("batch_accumulation") or 1) > 1:
            raise DigitsError(ACCUMULATION_UNSUPPORTED)
        self.batch, replicas = params["batch_size"], strategy.num_replicas_in_sync
        if self.batch < replicas:
            raise DigitsError(f"The batch size ({self.batch}) is smaller than the {replicas} replicas (GPUs or CPUs "
                              f"of all workers) it is split across; clone the job with a batch size of at least "
                              f"{replicas}.")
        self.per_replica = self.batch // replicas
        if self.per_replica * replicas != self.batch:
            print(f"the batch of {self.batch} does not split evenly across {replicas} replicas: each takes "
                  f"{self.per_replica}, a batch of {self.per_replica * replicas} in all", flush=True)
            self.batch = self.per_replica * replicas
        self.samples = lmdb_store.count(self.dataset.dir / "train")
        self.plan = EpochPlan.for_job(params, math.ceil(self.samples / self.batch))
        self.start = job.status().get("resume_epoch") or 0
        # Every worker shuffles and augments alike, so that their shares of each epoch's batches do not overlap.
        self.seed = params["seed"] if params.get("seed") is not None else int(job.id.encode().hex()[-8:], 16)

    def splits(self, batch_size: int):
        """(the network's input shape, train batches, val batches or None), as a one-machine job has them."""
        return splits(self.dataset, self.stats, {**self.params, "batch_size": batch_size, "seed": self.seed})

    def run(self) -> None:
        if self.task.is_chief:
            write_model_info(self.job, self.dataset, self.stats)
        keras.utils.set_random_seed(self.seed)
        with self.strategy.scope():
            model = self._model()
            model.optimizer.build(model.trainable_variables)
        self.evaluate = self._evaluate_batch(model)  # one tf.function for every validation: no retracing
        if self.task.is_chief:
            model.summary(print_fn=lambda line, **_: print(line, flush=True))
        done = self._fit(model)
        write_json(self._record_path(), {"index": self.task.index, "steps": done,
                                         "weights_sha256": weights_sha256(model)})

    def _model(self) -> keras.Model:
        if not self.start:
            return compiled(new_model(self.job, self.splits(self.batch)[0], self.stats), self.params, self.stats)
        if self.task.is_chief:
            return resumed(self.job, self.start)  # also drops the metrics and snapshots of later epochs
        return keras.models.load_model(snapshots.for_epoch(self.job, self.start))

    def _record_path(self):
        folder = self.job.dir / "workers"
        folder.mkdir(exist_ok=True)
        return folder / f"{self.task.index}.json"

    # ---------------------------------------------------------------- the loop

    def _fit(self, model: keras.Model) -> int:
        """What fit() does for a one-machine job, epoch plan and callbacks included: train to the job's
        epochs, or until a worker is stopped or early stopping ends it. Returns the steps done."""
        plan = self.plan
        first = plan.keras_epoch_of(self.start)
        schedule = LearningRatePolicy(self.params, plan.steps * plan.epochs, start_step=plan.first_step(first))
        schedule.set_model(model)
        callbacks = keras.callbacks.CallbackList(self._chief_callbacks(), model=model)
        batches = iter(self.strategy.distribute_datasets_from_function(self._train_input))
        train_step = self._train_step(model)
        callbacks.on_train_begin()
        step = plan.first_step(first)
        for epoch in range(first, plan.keras_epochs):
            callbacks.on_epoch_begin(epoch)
            sums = np.zeros(3)  # loss, correct, count
            for batch in range(plan.chunk):
                schedule.on_train_batch_begin(batch)
                totals = train_step(batches, tf.constant(float(self.stop.requested))).numpy()
                step += 1
                sums += totals[:3]
                callbacks.on_train_batch_end(batch, self._train_logs(sums, batch + 1))
                if totals[3] > 0:  # some worker was asked to stop: all stop after the same step
                    self.stop.request()
                    callbacks.on_train_end()
                    return step
            logs = {**self._train_logs(sums, plan.chunk), **(self._validation() if plan.validates(epoch) else {})}
            callbacks.on_epoch_end(epoch, logs)
            asked, early = self._sum_over_workers(np.array([float(self.stop.requested), float(model.stop_training)]))
            if asked:
                self.stop.request()
            if asked or early:
                break
        callbacks.on_train_end()
        return step

    def _chief_callbacks(self) -> list:
        if not self.task.is_chief:
            return []
        has_val = (self.dataset.dir / "val").exists()
        return [JobProgress(self.job, self.stop, self.params["epochs"], self.plan.steps, self.samples, plan=self.plan),
                *watching(self.job, self.params, has_val or None, self.plan)]

    def _train_logs(self, sums: np.ndarray, batches: int) -> dict:
        """What fit would log: the means since the (Keras) epoch began."""
        name = "pixel_accuracy" if self.kind == "segmentation" else "accuracy"
        return {"loss": sums[0] / batches, name: sums[1] / max(sums[2], 1.0)}

    def _train_input(self, context: tf.distribute.InputContext) -> tf.data.Dataset:
        """This worker's share of the train batches, endlessly: every worker takes the same number of steps."""
        batches = self.splits(self.per_replica)[1]
        return batches.shard(context.num_input_pipelines, context.input_pipeline_id).repeat()

    def _train_step(self, model: keras.Model):
        loss_of = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)

        def replica_step(images, labels, stop_flag):
            with tf.GradientTape() as tape:
                logits = model(images, training=True)
                per_sample = loss_of(labels, logits)
                if len(per_sample.shape) > 1:  # segmentation: the mean over each image's pixels
                    per_sample = tf.reduce_mean(tf.reshape(per_sample, [tf.shape(per_sample)[0], -1]), axis=1)
                loss = tf.nn.compute_average_loss(per_sample, global_batch_size=self.batch)
                if model.losses:
                    loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
            gradients = tape.gradient(loss, model.trainable_variables)
            model.optimizer.apply_gradients(zip(gradients, model.trainable_variables))
            predicted = tf.argmax(logits, axis=-1, output_type=tf.int32)
            truth = tf.reshape(tf.cast(labels, tf.int32), tf.shape(predicted))
            correct = tf.reduce_sum(tf.cast(tf.equal(predicted, truth), tf.float32))
            count = tf.cast(tf.size(predicted), tf.float32)
            return tf.stack([loss, correct, count, stop_flag])

        @tf.function
        def train_step(iterator, stop_flag):
            images, labels = next(iterator)
            return self.strategy.reduce(SUM, self.strategy.run(replica_step, args=(images, labels, stop_flag)),
                                        axis=None)
        return train_step

    # ---------------------------------------------------------------- validation

    def _validation(self) -> dict:
        """val_loss and val_accuracy (val_pixel_accuracy, val_mean_iou for segmentation) over the whole val split."""
        if not (self.dataset.dir / "val").exists():
            return {}
        mine = self.splits(self.batch)[2].shard(len(self.task.workers), self.task.index)
        sums = np.zeros(1 + self.n_classes ** 2)  # loss, then the confusion matrix
        for images, labels in mine:
            sums += self.evaluate(images, labels).numpy()
        sums = self._sum_over_workers(sums)
        confusion = sums[1:].reshape(self.n_classes, self.n_classes)
        scores = confusion_scores(confusion)
        logs = {"val_loss": sums[0] / max(confusion.sum(), 1.0)}
        if self.kind == "segmentation":
            return {**logs, "val_pixel_accuracy": scores["accuracy"], "val_mean_iou": scores["mean_iou"]}
        return {**logs, "val_accuracy": scores["accuracy"]}

    def _evaluate_batch(self, model: keras.Model):
        n_classes = self.n_classes

        @tf.function
        def evaluate(images, labels):
            logits = tf.reshape(model(images, training=False), [-1, n_classes])
            labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
            losses = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
            predicted = tf.argmax(logits, axis=-1, output_type=tf.int32)
            confusion = tf.math.confusion_matrix(labels, predicted, num_classes=n_classes, dtype=tf.float64)
            return tf.concat([[tf.reduce_sum(tf.cast(losses, tf.float64))], tf.reshape(confusion, [-1])], axis=0)
        return evaluate

    def _sum_over_workers(self, values: np.ndarray) -> np.ndarray:
        """Each worker's `values` added up across the cluster (one all-reduce; every worker must call it)."""
        local = len(self.strategy.extended.worker_devices)
        zeros = np.zeros_like(values)
        shares = self.strategy.experimental_distribute_values_from_function(
            lambda context: tf.constant(values if context.replica_id_in_sync_group % local == 0 else zeros))
        return self.strategy.reduce(SUM, shares, axis=None).numpy()
