"""Where a new model job's network comes from: a standard network built for the
dataset (from scratch or from pretrained ImageNet weights), a previous model's
snapshot to fine-tune, or the person's custom network code. What it started
from is recorded in model.json as "started_from".
"""
import keras

from .. import config, pretrained_weights
from ..atomic_json import read_json, write_json
from ..errors import DigitsError
from ..job_store import Job, JobStore
from . import custom_network, fine_tune, networks
from .keras_applications import imagenet_preprocessor
from .preprocessing import preprocessor


def new_model(job: Job, shape, stats: dict) -> keras.Model:
    """The uncompiled network for `job` on images of `shape` (H, W, C), outputting logits."""
    params = job.params
    network, n_classes = params["network"], len(stats["labels"])
    if network == "previous":
        model, started = fine_tune.load_previous(JobStore(job.dir.parent), params["previous_model"],
                                                 params.get("previous_epoch"), shape, n_classes)
        _record(job, {"kind": "previous", **started})
        return model
    if network == "custom":
        return custom_network.build(params.get("custom_code") or "", shape, n_classes, preprocessor(params, stats),
                                    task=stats.get("task", "classification"))
    if not params.get("pretrained"):
        return networks.build(network, shape, n_classes, preprocessor(params, stats))
    weights = pretrained_source(network, params.get("weights_file"), shape)
    model = networks.build(network, shape, n_classes, imagenet_preprocessor(network, shape[2]), weights=weights)
    _record(job, {"kind": "pretrained", "weights": weights})
    return model


def pretrained_source(network: str, weights_file: str | None, shape) -> str:
    """What keras.applications is given as `weights`: the job's weights file, or "imagenet" (Keras'
    cache, or a download unless DIGITS_OFFLINE=1)."""
    if network not in pretrained_weights.PRETRAINABLE:
        raise DigitsError(f"Pretrained weights exist only for {', '.join(pretrained_weights.PRETRAINABLE)}, "
                          f"not {network}.")
    if weights_file:
        if problem := pretrained_weights.file_problem(weights_file):
            raise DigitsError(f"Weights file: {problem}")
        return weights_file
    if config.offline() and (problem := pretrained_weights.unavailable(network, *shape[:2])):
        raise DigitsError(problem)
    return "imagenet"


def _record(job: Job, started_from: dict) -> None:
    info = read_json(job.dir / "model.json") or {}
    write_json(job.dir / "model.json", {**info, "started_from": started_from})
