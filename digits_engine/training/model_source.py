"""Where a new model job's network comes from: a standard network built for the dataset."""
import keras

from ..job_store import Job
from . import networks
from .preprocessing import preprocessor


def new_model(job: Job, shape, stats: dict) -> keras.Model:
    """The uncompiled network for `job` on images of `shape` (H, W, C), outputting logits."""
    params = job.params
    return networks.build(params["network"], shape, len(stats["labels"]), preprocessor(params, stats))
