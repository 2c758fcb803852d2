"""The jobs directory: one folder a job, the single source of truth.

    jobs_dir/<job_id>/job.json        what was asked (fixed after creation)
    jobs_dir/<job_id>/status.json     state, history, progress, error, pid (atomic)
    jobs_dir/<job_id>/progress.jsonl  metrics (see progress_log)
    jobs_dir/<job_id>/log.txt         the worker's output
    jobs_dir/<job_id>/lock            flock-held by the live worker

This module reads and writes those files. Deciding what runs is the
scheduler's; doing the work is the worker's.
"""
from __future__ import annotations

import os
import secrets
import shutil
from datetime import datetime, timezone
from pathlib import Path

from . import config, file_memo, ownership
from .atomic_json import read_json, write_json
from .errors import DigitsError, JobNotFound
from .job_state import JobState

KINDS = ("dataset", "model", "inference")
NEW_STATUS = {"state": JobState.INITIALIZED.value, "history": [], "progress": 0.0}


class BrokenJob(DigitsError):
    """A job whose job.json or status.json cannot be read: corrupt, half-written, or not a job's record."""


def read_record(path: Path, required: tuple[str, ...]) -> dict | None:
    """The JSON object in a job's file (None when there is no file); BrokenJob, naming the file, when unreadable."""
    try:
        data = read_json(path)
    except (OSError, ValueError) as exc:  # ValueError: bad JSON, or bytes that are not UTF-8
        raise BrokenJob(f"{path.name} cannot be read ({exc}): it is corrupt or was written only in part. "
                        f"Restore it from a backup, or delete the job's folder {path.parent}.") from None
    if data is None:
        return None
    missing = [key for key in required if key not in data] if isinstance(data, dict) else list(required)
    if missing:
        what = f"has no {', '.join(map(repr, missing))}" if isinstance(data, dict) else \
            f"holds a JSON {type(data).__name__}, not an object"
        raise BrokenJob(f"{path.name} {what}: it is not a job's record. "
                        f"Restore it from a backup, or delete the job's folder {path.parent}.")
    return data


def read_spec(path: Path) -> dict | None:
    return read_record(path, ("kind", "name"))


def read_status(path: Path) -> dict:
    status = read_record(path, ("state",))
    if status is None:
        return dict(NEW_STATUS, history=[])
    if status["state"] not in {state.value for state in JobState}:
        raise BrokenJob(f"{path.name} names an unknown state {status['state']!r}. "
                        f"Restore it from a backup, or delete the job's folder {path.parent}.")
    return status


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def new_job_id() -> str:
    """Sortable by creation time to the millisecond, e.g. 20261127-143012-345-ab12
    (with seconds only, jobs made in the same second listed in random order)."""
    now = datetime.now()
    return now.strftime("%Y%m%d-%H%M%S-") + f"{now.microsecond // 1000:03d}-" + secrets.token_hex(2)


class Job:
    """A handle on one job folder. Cheap to make; every read checks the disk (file_memo)."""

    def __init__(self, job_dir: Path):
        self.dir = job_dir if isinstance(job_dir, Path) else Path(job_dir)  # Path(a Path) parses it again
        self.id = self.dir.name

    # --- paths
    @property
    def spec_path(self) -> Path:
        return self.dir / "job.json"

    @property
    def status_path(self) -> Path:
        return self.dir / "status.json"

    @property
    def progress_path(self) -> Path:
        return self.dir / "progress.jsonl"

    @property
    def log_path(self) -> Path:
        return self.dir / "log.txt"

    @property
    def lock_path(self) -> Path:
        return self.dir / "lock"

    # --- the fixed spec
    @property
    def spec(self) -> dict:
        return file_memo.copied(self._shared_spec())

    def _shared_spec(self) -> dict:
        """job.json as file_memo holds it: read it, never change it. (Paths joined as strings: with
        thousands of jobs, pathlib costs more than the memo.)"""
        spec = file_memo.parsed(os.path.join(self.dir, "job.json"), read_spec)
        if spec is None:
            raise JobNotFound(self.id)
        return spec

    @property
    def kind(self) -> str:
        return self._shared_spec()["kind"]

    @property
    def name(self) -> str:
        return self._shared_spec()["name"]

    @property
    def params(self) -> dict:
        return self.spec["params"]

    @property
    def parents(self) -> list[str]:
        return self.spec.get("parents", [])

    # --- the status record
    def status(self) -> dict:
        """status.json (a new job's when there is none yet). Raises BrokenJob when it cannot be read."""
        return file_memo.copied(self._shared_status())

    def _shared_status(self) -> dict:
        return file_memo.parsed(os.path.join(self.dir, "status.json"), read_status)

    def problem(self) -> str | None:
        """Why this job is broken (its job.json or status.json cannot be read), or None when it is not."""
        try:
            self._shared_spec()
            self._shared_status()
        except BrokenJob as exc:
            return str(exc)
        return None

    @property
    def state(self) -> JobState:
        return JobState(self._shared_status()["state"])

    def set_state(self, state: JobState, error: str | None = None, **fields) -> dict:
        """Move to `state`, appending to the history; `error` replaces the last one. DONE forces progress to 1."""
        status = self.status()
        status["history"].append([state.value, now_iso()])
        status["state"] = state.value
        status["error"] = error
        if state is JobState.DONE:
            status["progress"] = 1.0
        status.update(fields)
        write_json(self.status_path, status)
        return status

    def update_status(self, **fields) -> None:
        status = self.status()
        status.update(fields)
        write_json(self.status_path, status)

    # --- metrics and logs
    def metrics(self) -> list[dict]:
        """progress.jsonl's records (shared with other readers in this process: never change them)."""
        return file_memo.records(self.progress_path)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def artifact(self, name: str) -> Path:
        return self.dir / name

    def __repr__(self) -> str:
        return f"Job({self.id!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Job) and other.dir == self.dir

    def __hash__(self) -> int:
        return hash(self.dir)


class JobStore:
    """All jobs under one directory."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root else config.jobs_dir()
        self.root.mkdir(parents=True, exist_ok=True)

    def create(self, kind: str, name: str, params: dict, parents=(), group: str = "", task: str = "classification") -> Job:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        job_dir = self.root / new_job_id()
        while job_dir.exists():
            job_dir = self.root / new_job_id()
        job_dir.mkdir()
        job = Job(job_dir)
        write_json(job.spec_path, {
            "id": job.id, "kind": kind, "task": task, "name": name, "group": group or "",
            "owner": ownership.new_job_owner(), "created": now_iso(), "params": params, "parents": list(parents),
        })
        job.set_state(JobState.INITIALIZED, progress=0.0, error=None, pid=None)
        return job

    def get(self, job_id: str) -> Job:
        job_id = str(job_id).strip()
        job = Job(self.root / job_id)
        if "/" in job_id or not job_id or not job.spec_path.exists():
            raise JobNotFound(job_id)
        return job

    def exists(self, job_id: str) -> bool:
        return (self.root / job_id / "job.json").exists()

    def list(self, kind: str | None = None) -> list[Job]:
        """Jobs, newest first, broken ones included (see Job.problem); with `kind`, only the readable
        jobs of that kind. Folders without a job.json (half-created or foreign) are ignored."""
        if kind is None:
            return [Job(d) for d, _ in self._specs()]
        return [Job(d) for d, spec in self._specs() if spec and spec["kind"] == kind and _status_readable(d)]

    def children(self, job: Job) -> list[Job]:
        """Jobs that name `job` as a parent (models of a dataset)."""
        return [Job(d) for d, spec in self._specs() if spec and job.id in spec.get("parents", [])]

    def _specs(self):
        """(folder, job.json, or None when it cannot be read) newest first, skipping folders that vanish
        while we look. job.json changes only on a rename, so listing parses each one once (file_memo)."""
        with os.scandir(self.root) as entries:
            names = sorted((e.name for e in entries if e.is_dir()), reverse=True)
        for name in names:  # strings, not Paths, where we can: pathlib is most of a listing's cost
            d = self.root / name
            try:
                spec = file_memo.parsed(os.path.join(d, "job.json"), read_spec)
            except BrokenJob:
                yield d, None
                continue
            if spec is not None:
                yield d, spec

    def remove(self, job: Job) -> None:
        shutil.rmtree(job.dir, ignore_errors=True)


def _status_readable(job_dir: Path) -> bool:
    try:
        file_memo.parsed(job_dir / "status.json", read_status)
    except BrokenJob:
        return False
    return True
