"""The Keras optimizer for a model job's solver (DIGITS' solver_type).

    sgd, momentum  SGD with momentum 0.9 (Caffe's SGD in DIGITS: momentum 0.9)
    nesterov       SGD with Nesterov momentum 0.9
    adagrad        AdaGrad (no momentum, as in Caffe)
    rmsprop        RMSProp with rho 0.99 (DIGITS' rms_decay), no momentum
    adadelta       AdaDelta, rho 0.95
    adam, adamw    Adam; AdamW

`weight_decay` is Keras' decoupled decay (each step w -= lr * decay * w), AdamW's
own decay for adamw; `accumulation` > 1 adds up the gradients of that many
batches before each update (Keras' gradient_accumulation_steps). The learning
rate given is the start value: training.callbacks.LearningRatePolicy sets it
before every batch from the job's policy.
"""
import math

import keras

from ..model_spec import SOLVERS

NAMES = SOLVERS

MOMENTUM = 0.9
RMS_DECAY = 0.99
ADADELTA_RHO = 0.95


def get(name: str, lr: float, weight_decay: float | None = 0.0, accumulation: int | None = 1
        ) -> keras.optimizers.Optimizer:
    """A new optimizer for solver `name`. None for `weight_decay` or `accumulation` (a job
    written before those fields existed) means none: 0 and 1."""
    key = str(name).strip().lower()
    if key not in NAMES:
        raise ValueError(f"Unknown solver {name!r}; expected one of: {', '.join(NAMES)}.")
    lr = float(lr)
    if not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"The learning rate must be a number more than 0, got {lr!r}.")
    weight_decay = 0.0 if weight_decay is None else float(weight_decay)
    if not math.isfinite(weight_decay) or weight_decay < 0:
        raise ValueError(f"Weight decay must be a number of at least 0, got {weight_decay!r}.")
    accumulation = 1 if accumulation is None else accumulation
    if int(accumulation) != accumulation or accumulation < 1:
        raise ValueError(f"Batch accumulation must be a whole number of at least 1, got {accumulation!r}.")
    common = {"learning_rate": lr,
              "weight_decay": weight_decay or None,  # None: Keras skips the decay step entirely
              "gradient_accumulation_steps": int(accumulation) if accumulation > 1 else None}  # Keras wants >= 2
    if key in ("sgd", "momentum"):
        return keras.optimizers.SGD(momentum=MOMENTUM, **common)
    if key == "nesterov":
        return keras.optimizers.SGD(momentum=MOMENTUM, nesterov=True, **common)
    if key == "adagrad":
        return keras.optimizers.Adagrad(**common)
    if key == "rmsprop":
        return keras.optimizers.RMSprop(rho=RMS_DECAY, **common)
    if key == "adadelta":
        return keras.optimizers.Adadelta(rho=ADADELTA_RHO, **common)
    if key == "adam":
        return keras.optimizers.Adam(**common)
    return keras.optimizers.AdamW(**{**common, "weight_decay": weight_decay})  # AdamW needs a number, 0 included
