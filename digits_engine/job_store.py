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

import getpass
import os
import secrets
import shutil
from datetime import datetime, timezone
from pathlib import Path

from . import config, progress_log
from .atomic_json import read_json, write_json
from .errors import JobNotFound
from .job_state import JobState

KINDS = ("dataset", "model", "inference")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def new_job_id() -> str:
    """Sortable by creation time to the millisecond, e.g. 20261127-143012-345-ab12
    (with seconds only, jobs made in the same second listed in random order)."""
    now = datetime.now()
    return now.strftime("%Y%m%d-%H%M%S-") + f"{now.microsecond // 1000:03d}-" + secrets.token_hex(2)


class Job:
    """A handle on one job folder. Cheap to make; every read goes to disk."""

    def __init__(self, job_dir: Path):
        self.dir = Path(job_dir)
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
        spec = read_json(self.spec_path)
        if spec is None:
            raise JobNotFound(self.id)
        return spec

    @property
    def kind(self) -> str:
        return self.spec["kind"]

    @property
    def name(self) -> str:
        return self.spec["name"]

    @property
    def params(self) -> dict:
        return self.spec["params"]

    @property
    def parents(self) -> list[str]:
        return self.spec.get("parents", [])

    # --- the status record
    def status(self) -> dict:
        return read_json(self.status_path) or {"state": JobState.INITIALIZED.value, "history": [], "progress": 0.0}

    @property
    def state(self) -> JobState:
        return JobState(self.status()["state"])

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
        return progress_log.ProgressReader(self.progress_path).read_all()

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
            "owner": _owner(), "created": now_iso(), "params": params, "parents": list(parents),
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
        """Jobs, newest first. Folders without a job.json (half-created or foreign) are ignored."""
        return [Job(d) for d, spec in self._specs() if kind is None or spec["kind"] == kind]

    def children(self, job: Job) -> list[Job]:
        """Jobs that name `job` as a parent (models of a dataset)."""
        return [Job(d) for d, spec in self._specs() if job.id in spec.get("parents", [])]

    def _specs(self):
        """(folder, job.json) newest first, skipping folders that vanish while we look."""
        for d in sorted(self.root.iterdir(), reverse=True):
            spec = read_json(d / "job.json") if d.is_dir() else None
            if spec is not None:
                yield d, spec

    def remove(self, job: Job) -> None:
        shutil.rmtree(job.dir, ignore_errors=True)


def _owner() -> str:
    try:
        return os.environ.get("DIGITS_USER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
