"""Learning-rate policies as DIGITS defined them: parameters are in percent of
the whole training, so a schedule does not change meaning with the epoch count.

    p = progress in percent, 0..100 (clamped)
    fixed:     lr
    step:      lr * gamma ^ floor(p / step)
    multistep: lr * gamma ^ k          k = how many step values are <= p
    exp:       lr * gamma ^ p
    inv:       lr * (1 + gamma * p) ^ (-power)
    poly:      lr * (1 - p / 100) ^ power
    sigmoid:   lr / (1 + exp(gamma * (p - step)))

A parameter left out (None) takes DIGITS' default for that policy (`DEFAULTS`).
Job params use the names `lr_policy`, `lr`, `lr_step_pct` (step and sigmoid),
`lr_gamma`, `lr_power` (inv and poly) and `lr_multistep_values` (text such as
"50,85", or a list of numbers). Pure Python: the form and the worker both use it.
"""
import math

# DIGITS' defaults per policy (digits/model/forms.py): step size 33, gamma 0.1; multistep
# "50,85", gamma 0.5; exp gamma 0.95; inv gamma 0.1, power 0.5; poly power 3; sigmoid step 50, gamma 0.1.
DEFAULTS = {
    "fixed": {},
    "step": {"step_pct": 33.0, "gamma": 0.1},
    "multistep": {"values": (50.0, 85.0), "gamma": 0.5},
    "exp": {"gamma": 0.95},
    "inv": {"gamma": 0.1, "power": 0.5},
    "poly": {"power": 3.0},
    "sigmoid": {"step_pct": 50.0, "gamma": 0.1},
}

LABELS = {
    "fixed": "Fixed",
    "step": "Step down (every step % by gamma)",
    "multistep": "Step down at given % (multistep)",
    "exp": "Exponential decay (gamma ^ %)",
    "inv": "Inverse decay (1 + gamma·%) ^ -power",
    "poly": "Polynomial decay to 0 (power)",
    "sigmoid": "Sigmoid decay (midpoint at step %)",
}

# job-param name -> the form's label, for messages that name the field
FIELD_LABELS = {
    "lr_step_pct": "Step size (% of training)",
    "lr_gamma": "Gamma",
    "lr_power": "Power",
    "lr_multistep_values": "Multistep values (% of training)",
}


def _pct(progress_pct: float) -> float:
    return min(max(float(progress_pct), 0.0), 100.0)


def _or(value, policy: str, key: str):
    return DEFAULTS[policy][key] if value is None else value


def fixed(base_lr: float, progress_pct: float, **_) -> float:
    return base_lr


def step(base_lr: float, progress_pct: float, step_pct: float | None = None, gamma: float | None = None,
         **_) -> float:
    step_pct, gamma = _or(step_pct, "step", "step_pct"), _or(gamma, "step", "gamma")
    if step_pct <= 0:
        raise ValueError(f"{FIELD_LABELS['lr_step_pct']} must be more than 0 for the step policy, got {step_pct:g}.")
    return base_lr * gamma ** math.floor(_pct(progress_pct) / step_pct)


def multistep(base_lr: float, progress_pct: float, values=None, gamma: float | None = None, **_) -> float:
    steps = _or(None if values is None else parse_multistep(values), "multistep", "values")
    p = _pct(progress_pct)
    k = sum(1 for v in steps if p >= v)  # the counter advances once p reaches a step value
    return base_lr * _or(gamma, "multistep", "gamma") ** k


def exp(base_lr: float, progress_pct: float, gamma: float | None = None, **_) -> float:
    return base_lr * _or(gamma, "exp", "gamma") ** _pct(progress_pct)


def inv(base_lr: float, progress_pct: float, gamma: float | None = None, power: float | None = None, **_) -> float:
    gamma, power = _or(gamma, "inv", "gamma"), _or(power, "inv", "power")
    return base_lr * (1.0 + gamma * _pct(progress_pct)) ** (-power)


def poly(base_lr: float, progress_pct: float, power: float | None = None, **_) -> float:
    return base_lr * (1.0 - _pct(progress_pct) / 100.0) ** _or(power, "poly", "power")


def sigmoid(base_lr: float, progress_pct: float, step_pct: float | None = None, gamma: float | None = None,
            **_) -> float:
    z = _or(gamma, "sigmoid", "gamma") * (_pct(progress_pct) - _or(step_pct, "sigmoid", "step_pct"))
    if z > 0:  # the same value written so that exp() cannot overflow
        e = math.exp(-z)
        return base_lr * e / (1.0 + e)
    return base_lr / (1.0 + math.exp(z))


POLICIES = {"fixed": fixed, "step": step, "multistep": multistep, "exp": exp, "inv": inv, "poly": poly,
            "sigmoid": sigmoid}


def get(name: str):
    """The policy function called `name`; the error lists the valid names."""
    try:
        return POLICIES[name]
    except KeyError:
        raise ValueError(f"Unknown learning rate policy {name!r}; expected one of {', '.join(POLICIES)}.") from None


def parse_multistep(values) -> tuple[float, ...]:
    """Step values in percent from text ("50,85") or a list of numbers: each 0..100, increasing.
    Raises ValueError with a message for people."""
    label = FIELD_LABELS["lr_multistep_values"]
    expected = "percents from 0 to 100 in increasing order, separated by commas, like 50,85"
    if isinstance(values, str):
        parts = [part for part in values.replace(";", ",").replace(" ", ",").split(",") if part]
    elif isinstance(values, (list, tuple)):
        parts = list(values)
    else:
        raise ValueError(f"{label}: expected {expected}; got {values!r}.")
    numbers = []
    for part in parts:
        try:
            number = float(str(part).strip().rstrip("%"))
        except ValueError:
            raise ValueError(f"{label}: {str(part).strip()!r} is not a number; expected {expected}.") from None
        if not math.isfinite(number) or not 0 <= number <= 100:
            raise ValueError(f"{label}: {str(part).strip()} is not between 0 and 100; expected {expected}.")
        numbers.append(number)
    if not numbers:
        raise ValueError(f"{label}: expected {expected}; got nothing.")
    for before, after in zip(numbers, numbers[1:]):
        if after <= before:
            raise ValueError(f"{label}: {after:g} comes after {before:g}; expected {expected}.")
    return tuple(numbers)


def format_multistep(values) -> str:
    """The canonical text of step values: "50,85"."""
    return ",".join(f"{v:g}" for v in parse_multistep(values))


def settings(params: dict) -> dict:
    """The policy's parameters for job `params`, each blank one replaced by the policy's default:
    e.g. {"gamma": 0.95} for exp. Only the parameters that the policy uses."""
    name = params.get("lr_policy") or "fixed"
    get(name)
    given = {"step_pct": params.get("lr_step_pct"), "gamma": params.get("lr_gamma"), "power": params.get("lr_power"),
             "values": params.get("lr_multistep_values")}
    if isinstance(given["values"], str) and not given["values"].strip():
        given["values"] = None
    out = {}
    for key, default in DEFAULTS[name].items():
        value = given[key]
        out[key] = default if value is None else (parse_multistep(value) if key == "values" else value)
    return out


def check(params: dict) -> dict[str, str]:
    """{job-param name: message} for the policy parameters that do not fit the chosen policy."""
    errors = {}
    raw_values = params.get("lr_multistep_values")
    if raw_values is not None and not (isinstance(raw_values, str) and not raw_values.strip()):
        try:
            parse_multistep(raw_values)
        except ValueError as exc:
            errors["lr_multistep_values"] = str(exc)
    name = params.get("lr_policy") or "fixed"
    if name not in POLICIES:
        return errors
    gamma, power, step_pct = params.get("lr_gamma"), params.get("lr_power"), params.get("lr_step_pct")
    if gamma is not None:
        if name in ("step", "multistep", "exp") and not 0 <= gamma <= 1:
            errors["lr_gamma"] = (f"Gamma must be between 0 and 1 for the {name} policy (the rate is multiplied "
                                  f"by it), got {gamma:g}.")
        elif name == "inv" and gamma < 0:
            errors["lr_gamma"] = f"Gamma must be at least 0 for the inv policy, got {gamma:g}."
    if power is not None and name in ("inv", "poly") and power < 0:
        errors["lr_power"] = f"Power must be at least 0 for the {name} policy, got {power:g}."
    if step_pct is not None and name == "step" and step_pct <= 0:
        errors["lr_step_pct"] = f"Step size must be more than 0 for the step policy, got {step_pct:g}."
    return errors


def learning_rate(params: dict, progress_pct: float) -> float:
    """The rate for a model job's params at `progress_pct` of its training."""
    name = params.get("lr_policy") or "fixed"
    return get(name)(params["lr"], progress_pct, **settings(params))


def curve(params: dict, points: int = 101) -> list[tuple[float, float]]:
    """(percent, rate) at `points` evenly spaced percents from 0 to 100, for the form's preview chart
    (DIGITS drew 101 points)."""
    if int(points) != points or points < 2:
        raise ValueError(f"A learning rate curve needs at least 2 points, got {points!r}.")
    points = int(points)
    name = params.get("lr_policy") or "fixed"
    policy, kwargs = get(name), settings(params)
    return [(pct, policy(params["lr"], pct, **kwargs)) for pct in (100.0 * i / (points - 1) for i in range(points))]
