"""Secrets a job needs (S3 keys) on their way from the form to the worker.

They never enter the jobs directory (nor job.json, logs or pages, nor the
jobs directory's backups): the submitter writes them to
DIGITS_CREDENTIALS_DIR/<job id>.json, readable by the owner only (0600, in a
0700 folder), and the worker reads and deletes that file before it does
anything else. A job that ends without a worker reading them (aborted or
deleted while waiting, dead worker) has the file removed by whoever ends it.
"""
import json
import os
from pathlib import Path

from . import config
from .job_store import Job


def path_for(job: Job) -> Path:
    return config.credentials_dir() / f"{job.id}.json"


def store(job: Job, secrets: dict) -> None:
    fd = os.open(path_for(job), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(secrets, f)


def take(job: Job) -> dict:
    """The job's secrets, removed from disk as they are read ({} if it has none)."""
    path = path_for(job)
    try:
        with open(path) as f:
            secrets = json.load(f)
    except FileNotFoundError:
        return {}
    finally:
        discard(job)
    return secrets


def discard(job: Job) -> None:
    path_for(job).unlink(missing_ok=True)
