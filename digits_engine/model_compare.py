"""Comparing models: each model's metrics reduced to their best value, the
epoch where the best came and their last value; the hyperparameters that
differ between the models; the axes of a parallel-coordinates plot of those
hyperparameters against one metric; and the sweep groups a person picks
models by. It reads job.json and progress.jsonl only (no TensorFlow); the
Compare page draws what this computes.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

import pandas as pd

from .job_state import JobState
from .job_store import Job, JobStore
from .model_spec import FIELDS

DEFAULT_METRICS = ("val/accuracy", "val/loss", "train/loss")  # the first one the models report is chosen
NOT_RESULTS = ("epoch", "lr")  # the epoch is the x axis; the learning rate is a setting, not a result
NOT_RESULT_PREFIXES = ("time/",)  # speed measures the machine, not the model
NOT_HYPERPARAMETERS = ("gpus", "workers")  # where a model trained, not what was trained
HYPERPARAMETER_ORDER = ("dataset",) + tuple(f.name for f in FIELDS)
BEST = "★"
MAX_TICKS = 8  # a numeric axis with at most this many values labels each one
MAX_TICK_TEXT = 24  # custom network code makes long categories


@dataclass(frozen=True)
class MetricSummary:
    best: float
    best_epoch: float
    last: float


@dataclass
class ModelResult:
    """One model as the comparison sees it."""
    id: str
    name: str
    state: JobState
    records: list[dict]
    summaries: dict[str, MetricSummary]
    hyperparameters: dict


def is_loss(metric: str) -> bool:
    """A loss is best when lowest; every other metric when highest."""
    return "loss" in metric.rsplit("/", 1)[-1]


def is_better(metric: str, value: float, than: float) -> bool:
    return value < than if is_loss(metric) else value > than


def is_result(key: str) -> bool:
    return key not in NOT_RESULTS and not key.startswith(NOT_RESULT_PREFIXES)


def points(records: list[dict], metric: str) -> list[tuple[float, float]]:
    """(epoch, value) of every record that has `metric`, in the order written."""
    return [(r["epoch"], r[metric]) for r in records if _finite(r.get(metric)) and _finite(r.get("epoch"))]


def summarize_metric(records: list[dict], metric: str) -> MetricSummary | None:
    """The best value (the first time it came), its epoch and the last value; None without any."""
    found = points(records, metric)
    if not found:
        return None
    best_epoch, best = found[0]
    for epoch, value in found[1:]:
        if is_better(metric, value, best):
            best_epoch, best = epoch, value
    return MetricSummary(best=best, best_epoch=best_epoch, last=found[-1][1])


def hyperparameters(job: Job) -> dict:
    """What was asked for the model (its job params) and the dataset it learnt from."""
    params = {k: v for k, v in job.params.items() if k not in NOT_HYPERPARAMETERS}
    return {"dataset": (job.parents or [None])[0], **params}


def model_result(job: Job) -> ModelResult:
    records = job.metrics()
    keys = sorted({key for record in records for key in record if is_result(key)})
    summaries = {key: summary for key in keys if (summary := summarize_metric(records, key)) is not None}
    return ModelResult(id=job.id, name=job.name, state=job.state, records=records, summaries=summaries,
                       hyperparameters=hyperparameters(job))


def results(jobs: list[Job]) -> list[ModelResult]:
    return [model_result(job) for job in jobs]


def metrics(models: list[ModelResult]) -> list[str]:
    """Every metric any of the models reports, sorted (train/accuracy, train/loss, val/accuracy, ...)."""
    return sorted({key for model in models for key in model.summaries})


def default_metric(available: list[str]) -> str | None:
    """val/accuracy, else val/loss, else train/loss, else the first available; None when there is none."""
    return next((m for m in DEFAULT_METRICS if m in available), available[0] if available else None)


def best_model(models: list[ModelResult], metric: str) -> str | None:
    """The id of the model with the best `metric` (the first of equals); None when none reports it."""
    best_id, best = None, None
    for model in models:
        summary = model.summaries.get(metric)
        if summary is not None and (best is None or is_better(metric, summary.best, best)):
            best_id, best = model.id, summary.best
    return best_id


def differing(models: list[ModelResult]) -> list[str]:
    """The hyperparameters whose values are not the same in all the models, in the form's order."""
    keys = {key for model in models for key in model.hyperparameters}
    differ = [key for key in keys if len({_hashable(m.hyperparameters.get(key)) for m in models}) > 1]
    order = {name: i for i, name in enumerate(HYPERPARAMETER_ORDER)}
    return sorted(differ, key=lambda key: (order.get(key, len(order)), key))


def table(models: list[ModelResult], metric: str | None) -> pd.DataFrame:
    """One row a model, the columns in the order a person reads them: "best" (a star on the best by
    `metric`), model; `<metric> best`, `<metric> epoch` (where it was best) and `<metric> last` for
    the chosen metric; the hyperparameters that differ; the same three for every other metric;
    state and id."""
    winner = best_model(models, metric) if metric else None
    others = [m for m in metrics(models) if m != metric]
    keys = differing(models)
    rows = []
    for model in models:
        row = {"best": BEST if model.id == winner else "", "model": model.name}
        row.update(_metric_cells(model, metric) if metric else {})
        row.update({key: _cell(model.hyperparameters.get(key)) for key in keys})
        for name in others:
            row.update(_metric_cells(model, name))
        rows.append({**row, "state": model.state.value, "id": model.id})
    return pd.DataFrame(rows)


def _metric_cells(model: ModelResult, metric: str) -> dict:
    summary = model.summaries.get(metric)
    return {f"{metric} best": summary.best if summary else None,
            f"{metric} epoch": summary.best_epoch if summary else None,
            f"{metric} last": summary.last if summary else None}


def parallel_axes(models: list[ModelResult], metric: str) -> list[dict]:
    """The axes of a parallel-coordinates plot: one for each differing hyperparameter, then `metric`
    (its best value), over the models that report it. Each axis is {"label", "values"}; a
    hyperparameter's has "tickvals" and "ticktext" too where its values are categories (mapped to
    0, 1, ...), few numbers (each labelled) or numbers spanning 100x or more (on a log10 scale)."""
    scored = [m for m in models if metric in m.summaries]
    axes = [axis(key, [m.hyperparameters.get(key) for m in scored]) for key in differing(scored)]
    return axes + [{"label": metric, "values": [m.summaries[metric].best for m in scored]}]


def axis(label: str, values: list) -> dict:
    if not all(_finite(v) for v in values):
        categories = sorted({_text(v) for v in values})
        return {"label": label, "values": [categories.index(_text(v)) for v in values],
                "tickvals": list(range(len(categories))), "ticktext": [_short(c) for c in categories]}
    distinct = sorted(set(values))
    if distinct[0] > 0 and distinct[-1] / distinct[0] >= 100:
        return {"label": f"{label} (log)", "values": [math.log10(v) for v in values],
                "tickvals": [math.log10(v) for v in distinct], "ticktext": [f"{v:g}" for v in distinct]}
    if len(distinct) <= MAX_TICKS:
        return {"label": label, "values": list(values), "tickvals": distinct, "ticktext": [f"{v:g}" for v in distinct]}
    return {"label": label, "values": list(values)}


def sweep_groups(store: JobStore) -> dict[str, list[Job]]:
    """Models sharing a group name (a sweep's, or one a person gave), oldest first, by group name."""
    groups: dict[str, list[Job]] = {}
    for job in reversed(store.list("model")):
        if group := job.spec.get("group"):
            groups.setdefault(group, []).append(job)
    return dict(sorted(groups.items()))


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _hashable(value):
    return json.dumps(value, sort_keys=True, default=str)


def _cell(value):
    """A table cell: numbers, text and booleans as they are; lists and dicts as JSON."""
    return value if value is None or isinstance(value, (str, int, float, bool)) else _hashable(value)


def _text(value) -> str:
    """A category's tick label."""
    if value is None:
        return "none"
    return f"{value:g}" if _finite(value) else str(_cell(value))


def _short(text: str) -> str:
    return text if len(text) <= MAX_TICK_TEXT else text[:MAX_TICK_TEXT - 1] + "…"
