"""Learning-rate policies as DIGITS defined them: parameters are in percent of
the whole training, so a schedule does not change meaning with the epoch count.

    fixed: lr
    step:  lr * gamma ^ floor(p / step_pct)        p = progress in percent, 0..100
"""
import math


def fixed(base_lr: float, progress_pct: float, **_) -> float:
    return base_lr


def step(base_lr: float, progress_pct: float, step_pct: float = 33.0, gamma: float = 0.1, **_) -> float:
    return base_lr * gamma ** math.floor(progress_pct / step_pct)


POLICIES = {"fixed": fixed, "step": step}


def get(name: str):
    """The policy function called `name`; the error lists the valid names."""
    try:
        return POLICIES[name]
    except KeyError:
        raise ValueError(f"Unknown learning rate policy {name!r}; expected one of {', '.join(POLICIES)}.") from None


def learning_rate(params: dict, progress_pct: float) -> float:
    """The rate for a model job's params at `progress_pct` of its training."""
    return get(params.get("lr_policy", "fixed"))(
        params["lr"], progress_pct, step_pct=params.get("lr_step_pct", 33.0), gamma=params.get("lr_gamma", 0.1))
