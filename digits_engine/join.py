"""`digits model join JOB_ID`: this machine's worker of a multi-worker model job, in the foreground.

Every machine runs it with TF_CONFIG naming the whole cluster and its own index. Worker 0,
the chief, takes the job's lock, marks it Running and then Done, Aborted or Error, and
copies what it prints into the job's log; the other workers only train (and write
workers/<index>.json). Ctrl-C or SIGTERM on any worker, or Abort in the app, stops them
all after the same step.
"""
import os
import signal
import socket
import sys
from contextlib import contextmanager

from . import cluster_config, liveness
from .errors import DigitsError
from .job_state import JobState
from .job_store import Job, JobStore
from .scheduler import Scheduler, is_multi_worker
from .stop_token import StopToken
from .worker import run_job


def join(job: Job, store: JobStore) -> dict:
    """Train as the worker TF_CONFIG says this process is; {"job", "worker", "workers", "state", "error"}."""
    if not is_multi_worker(job):
        raise DigitsError(f"{job.name!r} ({job.id}) is not a multi-worker model: the scheduler trains it by itself. "
                          "Only a model created with --workers 2 or more is joined.")
    task = cluster_config.read(job.params["workers"])
    _check_can_join(job, store, task)
    stop = StopToken(job.dir / "abort")
    _stop_on_signals(stop)
    print(f"joining {job.id} ({job.name}) as worker {task.index} of {len(task.workers)}", flush=True)
    state, error = _as_chief(job, stop, store) if task.is_chief else run_job(job, stop)
    return {"job": job.id, "worker": task.index, "workers": len(task.workers), "state": state.value, "error": error}


def _check_can_join(job: Job, store: JobStore, task: cluster_config.ClusterTask) -> None:
    dataset = store.get(job.parents[0])
    if dataset.state is not JobState.DONE:
        raise DigitsError(f"Its dataset {dataset.name!r} is {dataset.state}, not Done: join once it is built.")
    if task.is_chief and job.state is not JobState.WAITING:
        raise DigitsError(f"{job.name!r} is {job.state}; the chief (worker 0) starts a Waiting job only. "
                          + ("Another chief runs it already." if job.state is JobState.RUNNING else
                             "Resume or clone it to train again."))
    if not job.state.is_active:
        raise DigitsError(f"{job.name!r} already ended {job.state}; resume or clone it to train again.")


def _stop_on_signals(stop: StopToken) -> None:
    def request(signum, _frame):
        if signum == signal.SIGINT and stop.requested:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        print("stopping after the current step (all workers)", flush=True)
        stop.request()
    signal.signal(signal.SIGTERM, request)
    signal.signal(signal.SIGINT, request)


def _as_chief(job: Job, stop: StopToken, store: JobStore) -> tuple[JobState, str | None]:
    try:
        fd = liveness.acquire(job.lock_path)  # held while it runs: a chief that dies is seen as dead
    except BlockingIOError:
        raise DigitsError(f"Another chief (worker 0) holds {job.name!r} already.") from None
    try:
        with _also_into(job.log_path):
            # No pid: it may be on another machine, where Abort must not signal a process of that number.
            job.set_state(JobState.RUNNING, pid=None, gpu=None, error=None, note=None, host=socket.gethostname())
            state, error = run_job(job, stop)
            job.set_state(state, error=error)
            print(f"job {job.id} ended {state}", flush=True)
    finally:
        os.close(fd)
    Scheduler(store).schedule()
    return state, error


class _Tee:
    def __init__(self, *streams):
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()

    def __getattr__(self, name):
        return getattr(self.streams[0], name)


@contextmanager
def _also_into(log_path):
    """What this process prints goes to the terminal and into the job's log."""
    saved = sys.stdout, sys.stderr
    with open(log_path, "a", buffering=1) as log:
        sys.stdout, sys.stderr = _Tee(saved[0], log), _Tee(saved[1], log)
        try:
            yield
        finally:
            sys.stdout, sys.stderr = saved
