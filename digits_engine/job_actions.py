"""What a person can do to an existing job: abort, delete, rename, clone, resume.

Abort, delete, rename and resume are for the job's owner or an admin (`by`, see ownership);
`by=None` (no sign-in, or the server's shell) may do anything."""
import os
import signal
import time

from . import (credentials, dataset_spec, inference_spec, liveness, model_spec, ownership, plugin_dataset_spec,
               snapshots, uploads)
from .errors import DeleteRefused, DigitsError, JobNotFound
from .job_state import JobState
from .atomic_json import write_json
from .job_store import Job, JobStore
from .scheduler import Scheduler

MAX_NAME = 200


def _check(job: Job, by: ownership.Actor | None, verb: str) -> None:
    spec = job.spec
    ownership.check_may_change(spec.get("owner"), spec["name"], by, verb)


def abort(job: Job, store: JobStore | None = None, by: ownership.Actor | None = None) -> Job:
    """Stop a job. A running worker gets SIGTERM (its whole process group), saves
    what it can and ends Aborted; a job that has not started is Aborted at once.
    """
    _check(job, by, "abort")
    store = store or JobStore(job.dir.parent)
    (job.dir / "abort").touch()  # seen by a worker that has not installed its handler yet
    with liveness.exclusive(store.root / ".scheduler.lock"):
        state = job.state
        if state in (JobState.INITIALIZED, JobState.WAITING):
            job.set_state(JobState.ABORTED)
            credentials.discard(job)
        elif state is JobState.RUNNING:
            _signal(job.status().get("pid"))
    return job


def _signal(pid) -> None:
    if not pid:
        return  # not started yet: the abort file stops it as it starts
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass


def wait(job: Job, timeout: float | None = None, poll: float = 0.2) -> JobState:
    """Block until the job has ended (or `timeout` seconds pass); return its state."""
    deadline = None if timeout is None else time.monotonic() + timeout
    scheduler = Scheduler(JobStore(job.dir.parent))
    while True:
        if not job.spec_path.exists():
            raise JobNotFound(job.id)  # deleted while we waited
        state = job.state
        if not state.is_active or (deadline is not None and time.monotonic() > deadline):
            return state
        if state is JobState.RUNNING and not liveness.lock_is_held(job.lock_path):
            scheduler.schedule()  # the worker died: let the pass record it
        time.sleep(poll)


def delete(job: Job, store: JobStore | None = None, by: ownership.Actor | None = None) -> None:
    """Remove a job and its files. Refused while a model depends on the dataset; a model's
    inference jobs go with it."""
    _check(job, by, "delete")
    store = store or JobStore(job.dir.parent)
    children = store.children(job)
    dependents = [d for d in children if d.kind != "inference"]
    if dependents:
        names = ", ".join(f"{d.name} ({d.id})" for d in dependents)
        raise DeleteRefused(f"Dataset {job.name!r} is used by {len(dependents)} model(s): {names}. "
                            "Delete those models first.")
    for inference in [d for d in children if d.kind == "inference"]:
        delete(inference, store)  # part of the model, whoever ran it
    if job.state is JobState.RUNNING:
        abort(job, store)
        wait(job, timeout=30)
    upload = job.params.get("folder") if job.params.get("source") == "upload" else None
    with liveness.exclusive(store.root / ".scheduler.lock"):  # no pass sees it half-removed
        store.remove(job)
        credentials.discard(job)  # a waiting job's keys
    if upload:  # its extracted archive goes with the last dataset that reads it
        uploads.release(upload, store.list("dataset"))
    Scheduler(store).schedule()


def clone(job: Job, store: JobStore | None = None, name: str | None = None, secrets: dict | None = None) -> Job:
    """Submit a new job with the same parameters (and the same dataset, for a model).
    Secrets are never stored, so an S3 dataset needs its keys given again in `secrets`."""
    store = store or JobStore(job.dir.parent)
    spec = job.spec
    raw = {**spec["params"], **{k: v for k, v in (secrets or {}).items() if v},
           "name": name or f"{spec['name']} (clone)", "group": spec.get("group", "")}
    if job.kind == "model" and not job.parents:
        raise DigitsError(f"{job.name!r} was imported, so it has no dataset to train again on; fine-tune it "
                          "instead: New model, network \"Previous network\", this model.")
    if job.kind == "model":
        return model_spec.create({**raw, "dataset": job.parents[0]}, store)
    if job.kind == "inference":
        names = spec["params"].get("uploads", [])
        uploads = [(n, (job.dir / inference_spec.UPLOADS / n).read_bytes()) for n in names]
        return inference_spec.create(raw, store, uploads=uploads)
    if spec["params"].get("source") == "plugin":
        return plugin_dataset_spec.create(spec["params"]["plugin"], {**spec["params"]["options"], **raw}, store)
    return dataset_spec.create(raw, store)


def resumable_epoch(job: Job) -> int | float | None:
    """The epoch an ended model can resume from (its last epoch snapshot: 2, or 2.5 with a fractional
    snapshot interval), or None."""
    if job.kind != "model" or job.state not in (JobState.ABORTED, JobState.ERROR):
        return None
    found = snapshots.list_snapshots(job)
    return found[-1][0] if found else None


def resume(job: Job, store: JobStore | None = None, by: ownership.Actor | None = None) -> Job:
    """Continue an Aborted model, or one whose worker died, from its last epoch snapshot:
    weights, optimizer state and schedule position, up to the epochs first asked for."""
    _check(job, by, "resume")
    store = store or JobStore(job.dir.parent)
    epoch = resumable_epoch(job)
    if epoch is None:
        raise DigitsError(f"{job.name!r} cannot resume: only an Aborted model, or one whose worker died, "
                          "with an epoch snapshot can. Clone it to start again.")
    if epoch >= job.params["epochs"]:
        raise DigitsError(f"{job.name!r} already has all its {job.params['epochs']} epochs; clone it to train more.")
    deadline = time.monotonic() + 30
    while liveness.lock_is_held(job.lock_path):  # the aborted worker is still exiting
        if time.monotonic() > deadline:
            raise DigitsError(f"{job.name!r} is still stopping; resume it in a moment.")
        time.sleep(0.2)
    (job.dir / "abort").unlink(missing_ok=True)
    job.update_status(resume_epoch=epoch)
    return Scheduler(store).submit(job)


def rename(job: Job, name: str, by: ownership.Actor | None = None) -> Job:
    """Give a job a new name (the one thing in job.json that may change after creation)."""
    _check(job, by, "rename")
    name = (name or "").strip()
    if not name:
        raise DigitsError("Give the job a name: it cannot be blank.")
    if len(name) > MAX_NAME:
        raise DigitsError(f"A job's name can be at most {MAX_NAME} characters; this one has {len(name)}.")
    spec = job.spec
    spec["name"] = name
    write_json(job.spec_path, spec)
    return job
