"""The detached process that runs one job: `python -m digits_engine.worker JOB_ID`.

It inherits the job's flock from the scheduler (DIGITS_LOCK_FD) and keeps it
until it exits. SIGTERM asks it to stop: the runner saves what it can and the
job ends Aborted. Whatever happens, it records a final state and runs a
scheduling pass so that waiting jobs start.
"""
import os
import signal
import sys
import traceback

from . import credentials
from .errors import DigitsError
from .job_state import JobState
from .job_store import Job, JobStore
from .scheduler import Scheduler
from .stop_token import StopToken


def _runner(kind: str):
    if kind == "dataset":
        from .dataset_job import run
    elif kind == "inference":
        from .inference_job import run
    else:
        from .training.trainer import run
    return run


def run_job(job: Job, stop: StopToken) -> tuple[JobState, str | None]:
    if stop.requested:
        return JobState.ABORTED, None
    try:
        _runner(job.kind)(job, stop)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a readable job error
        if stop.requested:
            return JobState.ABORTED, None
        traceback.print_exc()
        if isinstance(exc, DigitsError):
            return JobState.ERROR, str(exc)
        return JobState.ERROR, f"{type(exc).__name__}: {exc}. The log shows where it happened."
    return (JobState.ABORTED if stop.requested else JobState.DONE), None


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    store = JobStore()
    job = store.get(argv[0])
    lock_fd = os.environ.pop("DIGITS_LOCK_FD", None)  # inherited, locked: held while the job runs
    stop = StopToken(job.dir / "abort")
    signal.signal(signal.SIGTERM, lambda *_: stop.request())
    job.update_status(pid=os.getpid())
    print(f"worker {os.getpid()} starting {job.kind} job {job.id}", flush=True)
    state, error = run_job(job, stop)
    credentials.discard(job)  # read at start by the runner that needs them; gone whatever happened
    try:
        job.set_state(state, error=error)  # fails only if status.json was broken from outside meanwhile
        print(f"job {job.id} ended {state}", flush=True)
    finally:
        if lock_fd is not None:
            os.close(int(lock_fd))  # the job has ended: free it (to be resumed) before the pass below
        Scheduler(store).schedule()  # whatever happened here, the jobs waiting for this slot start
    return 0 if state is JobState.DONE else 1


if __name__ == "__main__":
    sys.exit(main())
