"""A job as one flat dict: what `--json` prints and what the pages list."""
from datetime import datetime

from . import progress_log
from .job_state import JobState
from .job_store import Job

BEST_METRICS = ("val/accuracy", "val/mean_iou")  # the first a model reports is its "best"


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def run_times(status: dict) -> tuple[str | None, str | None]:
    """When the job last started running and when it ended (ISO), from its history."""
    started = ended = None
    for state, when in status.get("history", []):
        if state == JobState.RUNNING.value:
            started, ended = when, None
        elif state in (JobState.DONE.value, JobState.ABORTED.value, JobState.ERROR.value):
            ended = when
    return started, ended


def eta_seconds(status: dict, now: datetime | None = None) -> float | None:
    """Time left, extrapolated from the time spent so far and the progress made."""
    progress = status.get("progress") or 0.0
    started, ended = run_times(status)
    if status.get("state") != JobState.RUNNING.value or not started or ended or progress <= 0.01:
        return None
    now = now or datetime.now(_parse_time(started).tzinfo)
    elapsed = (now - _parse_time(started)).total_seconds()
    return max(elapsed * (1 - progress) / progress, 0.0)


def best_metric(records: list[dict]) -> tuple[str | None, float | None]:
    """(metric name, its best value) for the first of BEST_METRICS the model reports."""
    for key in BEST_METRICS:
        values = [r[key] for r in records if key in r]
        if values:
            return key, max(values)
    return None, None


def summarize(job: Job, with_params: bool = True) -> dict:
    spec, status = job.spec, job.status()
    started, ended = run_times(status)
    out = {
        "id": job.id, "kind": spec["kind"], "task": spec.get("task"), "name": spec["name"],
        "group": spec.get("group", ""), "owner": spec.get("owner"), "created": spec.get("created"),
        "status": status["state"], "progress": status.get("progress", 0.0), "error": status.get("error"),
        "note": status.get("note"),
        "started": started, "ended": ended, "eta_seconds": eta_seconds(status),
    }
    if spec["kind"] == "model":
        records = job.metrics()
        metrics = progress_log.last_values(records)
        best_key, best = best_metric(records)
        out.update(dataset=(spec.get("parents") or [None])[0], metrics=metrics, best=best, best_metric=best_key)
    if with_params:
        out["params"] = spec["params"]
    return out
