"""Secrets a job needs (S3 keys) on their way from the form to the worker.

They never enter job.json, status.json, logs or pages: the submitter writes
them to jobs_dir/<id>/credentials.json, readable by the owner only (0600),
and the worker reads and deletes that file before it does anything else. A
job that ends without a worker reading them (aborted while waiting, dead
worker) has the file removed by whoever ends it.
"""
import json
import os

from .job_store import Job

FILENAME = "credentials.json"


def store(job: Job, secrets: dict) -> None:
    fd = os.open(job.dir / FILENAME, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(secrets, f)


def take(job: Job) -> dict:
    """The job's secrets, removed from disk as they are read ({} if it has none)."""
    path = job.dir / FILENAME
    try:
        with open(path) as f:
            secrets = json.load(f)
    except FileNotFoundError:
        return {}
    finally:
        discard(job)
    return secrets


def discard(job: Job) -> None:
    (job.dir / FILENAME).unlink(missing_ok=True)
