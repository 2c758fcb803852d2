"""Decides what runs: a scheduling pass starts waiting jobs on free slots and
turns Running jobs whose worker died into Error.

Every submit and every worker exit runs a pass, so waiting jobs start with no
browser open. Passes are serialised by an flock on jobs_dir/.scheduler.lock
(the kernel frees it if a pass is killed). Workers are detached processes in
their own session: they outlive whoever launched them.
"""
import os
import subprocess
import sys
import threading

from . import config, credentials, liveness
from .job_state import JobState
from .job_store import Job, JobStore

WORKER_DIED = ("The worker process died without finishing (killed, out of memory, or the machine restarted). "
               "The log below shows what it printed last; clone the job to run it again.")


class Scheduler:
    def __init__(self, store: JobStore | None = None):
        self.store = store or JobStore()

    def submit(self, job: Job) -> Job:
        job.set_state(JobState.WAITING)
        self.schedule()
        return job

    def schedule(self) -> None:
        """One pass: reap dead workers, settle models whose dataset failed, start what fits."""
        with liveness.exclusive(self.store.root / ".scheduler.lock"):
            jobs = self.store.list()
            states = {job: job.state for job in jobs}
            for job in [j for j, s in states.items() if s is JobState.RUNNING]:
                if not liveness.lock_is_held(job.lock_path):
                    job.set_state(JobState.ERROR, error=WORKER_DIED)
                    credentials.discard(job)
                    states[job] = JobState.ERROR
            for job in sorted((j for j, s in states.items() if s is JobState.WAITING), key=lambda j: j.id):
                if self._ready(job) and self._has_slot(job, states):
                    if self._launch(job, self._free_gpu(states) if job.kind == "model" else None):
                        states[job] = JobState.RUNNING

    def _ready(self, job: Job) -> bool:
        """A model waits while its dataset is not Done, and errors if the dataset cannot become Done."""
        for parent_id in job.parents:
            if not self.store.exists(parent_id):
                job.set_state(JobState.ERROR, error=f"Its dataset {parent_id} was deleted before the model could start.")
                return False
            parent_state = self.store.get(parent_id).state
            if parent_state in (JobState.ERROR, JobState.ABORTED):
                job.set_state(JobState.ERROR, error=f"Its dataset {parent_id} ended in state {parent_state}; "
                                                    "the model cannot train on it. Fix the dataset, then clone this model.")
                return False
            if parent_state is not JobState.DONE:
                return False
        return True

    def _has_slot(self, job: Job, states: dict) -> bool:
        running = [j for j, s in states.items() if s is JobState.RUNNING and j.kind == job.kind]
        slots = config.train_slots() if job.kind == "model" else config.dataset_slots()
        return len(running) < slots

    def _free_gpu(self, states: dict) -> str | None:
        used = {j.status().get("gpu") for j, s in states.items() if s is JobState.RUNNING}
        return next((g for g in config.gpu_ids() if g not in used), None)

    def _launch(self, job: Job, gpu: str | None) -> bool:
        # Take the job's lock here and hand the fd to the worker: the lock is held
        # from before the job is marked Running until the worker has recorded how it ended.
        try:
            fd = liveness.acquire(job.lock_path)
        except BlockingIOError:
            return False  # its previous worker is still exiting: a later pass starts it
        try:
            job.set_state(JobState.RUNNING, pid=None, gpu=gpu, error=None)
            env = dict(os.environ, DIGITS_JOBS_DIR=str(self.store.root), DIGITS_LOCK_FD=str(fd),
                       CUDA_VISIBLE_DEVICES=gpu or "", TF_CPP_MIN_LOG_LEVEL="2")
            with open(job.log_path, "ab") as log:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "digits_engine.worker", job.id],
                    start_new_session=True, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    pass_fds=(fd,), env=env, cwd=job.dir)
        finally:
            os.close(fd)
        # Reap the child when it exits so that a long-lived launcher (the UI) keeps no zombies.
        threading.Thread(target=proc.wait, daemon=True).start()
        return True
