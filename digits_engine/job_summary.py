"""A job as one flat dict: what `--json` prints and what the pages list.

Built from file_memo's memo of the job's files, so that summarizing every
job again on each rerun of a page costs a few stats per unchanged job."""
import os
from datetime import datetime

from . import file_memo
from .job_state import JobState
from .job_store import BrokenJob, Job, read_spec, read_status

BEST_METRICS = ("val/accuracy", "val/mean_iou")  # the first a model reports is its "best"
RUNNING = JobState.RUNNING.value  # plain strings: an Enum's .value is slow over thousands of histories
ENDED = frozenset(state.value for state in (JobState.DONE, JobState.ABORTED, JobState.ERROR))


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def run_times(status: dict) -> tuple[str | None, str | None]:
    """When the job last started running and when it ended (ISO), from its history."""
    started = ended = None
    for state, when in status.get("history", []):
        if state == RUNNING:
            started, ended = when, None
        elif state in ENDED:
            ended = when
    return started, ended


def eta_seconds(status: dict, now: datetime | None = None) -> float | None:
    """Time left, extrapolated from the time spent so far and the progress made."""
    if status.get("state") != RUNNING:
        return None
    progress = status.get("progress") or 0.0
    started, ended = run_times(status)
    if not started or ended or progress <= 0.01:
        return None
    now = now or datetime.now(_parse_time(started).tzinfo)
    elapsed = (now - _parse_time(started)).total_seconds()
    return max(elapsed * (1 - progress) / progress, 0.0)


def summarize(job: Job, with_params: bool = True, with_metrics: bool = True) -> dict:
    """The job's summary; for a broken job (see Job.problem) `broken_summary`'s. Without metrics,
    a model's summary has no "metrics", "best" and "best_metric" (`model_metrics` adds them)."""
    folder = os.fspath(job.dir)  # joined as strings: Job's Path properties cost more than the memo over many jobs
    try:
        spec = file_memo.parsed(os.path.join(folder, "job.json"), read_spec)
        status = file_memo.parsed(os.path.join(folder, "status.json"), read_status)
    except BrokenJob as exc:
        return broken_summary(job, str(exc))
    if spec is None:  # deleted while we looked
        return broken_summary(job, f"Its job.json is gone: the job was deleted from {job.dir}.")
    started, ended = run_times(status)
    out = {
        "id": job.id, "kind": spec["kind"], "task": spec.get("task"), "name": spec["name"],
        "group": spec.get("group", ""), "owner": spec.get("owner"), "created": spec.get("created"),
        "status": status["state"], "progress": status.get("progress", 0.0), "error": status.get("error"),
        "note": status.get("note"),
        "started": started, "ended": ended, "eta_seconds": eta_seconds(status),
    }
    if spec["kind"] == "model":
        out["dataset"] = (spec.get("parents") or [None])[0]
        if with_metrics:
            out.update(model_metrics(job))
    if with_params:
        out["params"] = file_memo.copied(spec.get("params", {}))  # the memo's own must stay as it is
    return out


def model_metrics(job: Job) -> dict:
    """A model's last value of each metric, and its best validation metric (name and value)."""
    metrics, maxima = file_memo.progress(os.path.join(job.dir, "progress.jsonl"))
    best_key = next((key for key in BEST_METRICS if key in maxima), None)
    return {"metrics": metrics, "best": maxima.get(best_key), "best_metric": best_key}


def broken_summary(job: Job, reason: str) -> dict:
    """A broken job: what can still be read of its job.json, status Error, and why."""
    try:
        spec = read_spec(job.spec_path) or {}
    except BrokenJob:
        spec = {}
    return {
        "id": job.id, "kind": spec.get("kind", "unknown"), "task": spec.get("task"),
        "name": spec.get("name", job.id), "group": spec.get("group", ""), "owner": spec.get("owner"),
        "created": spec.get("created"), "status": JobState.ERROR.value, "progress": 0.0, "error": reason,
        "note": None, "started": None, "ended": None, "eta_seconds": None, "broken": True, "folder": str(job.dir),
    }
