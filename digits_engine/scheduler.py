"""Decides what runs: a scheduling pass starts waiting jobs on free slots and
turns Running jobs whose worker died into Error.

Every submit and every worker exit runs a pass, so waiting jobs start with no
browser open. Passes are serialised by an flock on jobs_dir/.scheduler.lock
(the kernel frees it if a pass is killed). Workers are detached processes in
their own session: they outlive whoever launched them. A broken job (its
job.json or status.json unreadable) is left alone: never started nor reaped.
"""
import os
import subprocess
import sys
import threading

from . import config, credentials, device_choice, liveness, snapshots
from .job_state import JobState
from .job_store import BrokenJob, Job, JobStore

WORKER_DIED = ("The worker process died without finishing (killed, out of memory, or the machine restarted). "
               "The log below shows what it printed last; clone the job to run it again.")
RELAUNCH_NOTE = "Its start was interrupted (the process starting it was killed): it waits to start again."


def is_multi_worker(job: Job) -> bool:
    """A model trained by several workers (MultiWorkerMirroredStrategy): started with `digits model join`."""
    return job.kind == "model" and (job.params.get("workers") or 1) > 1


def slots_held(job: Job) -> int:
    """The slots a running job holds: a model one per GPU it runs on (at least one: one started without
    a GPU too), any other job one; a model trained by several workers runs elsewhere and holds none."""
    if is_multi_worker(job):
        return 0
    return max(len(device_choice.parse_gpus(job.status().get("gpu"))), 1) if job.kind == "model" else 1


def _wait_for_workers(job: Job) -> None:
    note = (f"Waiting for its {job.params['workers']} workers: run `digits model join {job.id}` on each machine, "
            f"with TF_CONFIG set (see {device_choice.DOCS}).")
    if job.status().get("note") != note:
        job.update_status(note=note)


def _readable_states(jobs: list[Job]) -> dict:
    """{job: state} of the jobs whose job.json and status.json can be read."""
    states = {}
    for job in jobs:
        try:
            job.kind  # noqa: B018 - reads job.json: the pass needs it
            states[job] = job.state
        except BrokenJob:
            continue
    return states


def _reap(job: Job) -> JobState:
    """A Running job whose lock is free: its worker died, and it ends Error. One whose worker never
    started (the pass was killed between marking it Running and starting it) waits again, once."""
    status = job.status()
    if status.get("pid") is None and not is_multi_worker(job) and not status.get("relaunched"):
        job.set_state(JobState.WAITING, relaunched=True, note=RELAUNCH_NOTE)
        return JobState.WAITING
    job.set_state(JobState.ERROR, error=WORKER_DIED)
    credentials.discard(job)
    return JobState.ERROR


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
            states = _readable_states(self.store.list())
            for job in [j for j, s in states.items() if s is JobState.RUNNING]:
                if not liveness.lock_is_held(job.lock_path):
                    states[job] = _reap(job)
            for job in sorted((j for j, s in states.items() if s is JobState.WAITING), key=lambda j: j.id):
                try:
                    if not self._ready(job):
                        continue
                except BrokenJob as exc:  # its dataset or model cannot be read
                    job.set_state(JobState.ERROR, error=f"A job it needs is broken: {exc}")
                    continue
                if is_multi_worker(job):
                    _wait_for_workers(job)  # its workers are started by hand, on their machines
                elif (devices := self.devices_for(job, states)) is not None and self._launch(job, devices):
                    states[job] = JobState.RUNNING

    def _ready(self, job: Job) -> bool:
        """A model waits while its dataset is not Done, and errors if the dataset cannot become Done."""
        if job.kind == "inference":
            return self._snapshot_ready(job)
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

    def _snapshot_ready(self, job: Job) -> bool:
        """An inference job waits for its model's snapshot (the model may still be training, or be Aborted),
        and errors if the model was deleted or ended without that snapshot."""
        model_id, epoch = job.parents[0], job.params.get("epoch")
        if not self.store.exists(model_id):
            job.set_state(JobState.ERROR, error=f"Its model {model_id} was deleted before the inference could start.")
            return False
        model = self.store.get(model_id)
        if snapshots.for_epoch(model, epoch) is not None:
            return True
        if not model.state.is_active:
            which = "any snapshot" if epoch is None else f"a snapshot of epoch {epoch}"
            job.set_state(JobState.ERROR, error=f"Its model {model.name!r} ended {model.state} without {which}; "
                                                "choose another snapshot or model.")
        return False

    def devices_for(self, job: Job, states: dict) -> list[str] | None:
        """The GPU ids to start `job` on ([]: the CPU, or a dataset job), or None while it must wait.

        With GPUs, slots are GPUs: a model that names several waits until all of them are free;
        a blank choice takes the next free one. A job the local scheduler does not run (several
        workers) takes no slot."""
        running = [j for j, s in states.items() if s is JobState.RUNNING and j.kind == job.kind
                   and not is_multi_worker(j)]
        if job.kind != "model":
            return [] if len(running) < config.dataset_slots() else None
        gpus, wanted = config.gpu_ids(), device_choice.parse_gpus(job.params.get("gpus"))
        if wanted and (problem := device_choice.gpus_problem(wanted)):
            job.set_state(JobState.ERROR, error=f"It asks for GPU(s) {','.join(wanted)}, which cannot be used "
                                                f"now: {problem} Clone it with other GPUs.")
            return None
        if not gpus:
            return [] if len(running) < config.train_slots() else None
        held = [device_choice.parse_gpus(j.status().get("gpu")) for j in running]
        busy = {g for ids in held for g in ids}
        used_slots = sum(slots_held(j) for j in running)
        if wanted:
            fits = not busy & set(wanted) and used_slots + len(wanted) <= len(gpus)
            return wanted if fits else None
        free = [g for g in gpus if g not in busy]
        return free[:1] if free and used_slots < len(gpus) else None

    def _launch(self, job: Job, gpus: list[str]) -> bool:
        # Take the job's lock here and hand the fd to the worker: the lock is held
        # from before the job is marked Running until the worker has recorded how it ended.
        try:
            fd = liveness.acquire(job.lock_path)
        except BlockingIOError:
            return False  # its previous worker is still exiting: a later pass starts it
        try:
            job.set_state(JobState.RUNNING, pid=None, gpu=",".join(gpus) or None, error=None, note=None)
            env = dict(os.environ, DIGITS_JOBS_DIR=str(self.store.root), DIGITS_LOCK_FD=str(fd),
                       CUDA_VISIBLE_DEVICES=",".join(gpus), TF_CPP_MIN_LOG_LEVEL="2")
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
