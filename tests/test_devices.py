"""Devices: the GPUs the form lists and accepts, the scheduler's choice of GPUs (slots are GPUs),
and a real worker training mirrored across two logical CPU devices (DIGITS_CPU_DEVICES=2)."""
import json

import pytest
from conftest import fake_nvidia_smi

from digits_engine import config, model_spec
from digits_engine.fields import FormErrors
from digits_engine.job_state import JobState
from digits_engine.job_store import JobStore
from digits_engine.scheduler import Scheduler
from test_jobs_integration import create_dataset, run_cli

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(autouse=True)
def fresh_detection():
    config._detected_gpus.cache_clear()
    yield
    config._detected_gpus.cache_clear()


# ------------------------------------------------------------------ what the form lists

def test_gpu_devices_from_nvidia_smi(monkeypatch, tmp_path):
    fake_nvidia_smi(tmp_path, monkeypatch, "0, NVIDIA H200, 143771 MiB\\n1, NVIDIA H200, 143771 MiB\\n")
    assert config.gpu_devices() == [{"id": "0", "name": "NVIDIA H200", "memory": "143771 MiB"},
                                    {"id": "1", "name": "NVIDIA H200", "memory": "143771 MiB"}]
    assert config.gpu_ids() == ["0", "1"]


def test_gpu_devices_named_in_the_environment(monkeypatch):
    monkeypatch.setenv("DIGITS_GPUS", "0,3")
    assert config.gpu_devices() == [{"id": "0", "name": "GPU 0", "memory": None},
                                    {"id": "3", "name": "GPU 3", "memory": None}]
    monkeypatch.setenv("DIGITS_GPUS", "none")
    assert config.gpu_devices() == []


# ------------------------------------------------------------------ what the form accepts

@pytest.fixture
def done_dataset(jobs_dir):
    """A dataset job marked Done (the form only looks at its state and task)."""
    store = JobStore()
    dataset = store.create("dataset", "shapes", {})
    dataset.set_state(JobState.DONE)
    return dataset.id


def form_errors(raw: dict) -> dict:
    with pytest.raises(FormErrors) as caught:
        model_spec.check({"name": "m", **raw}, JobStore())
    return caught.value.errors


def test_gpus_are_refused_on_a_machine_without_one(done_dataset, monkeypatch):
    monkeypatch.setenv("DIGITS_GPUS", "none")
    errors = form_errors({"dataset": done_dataset, "gpus": "0"})
    assert "no GPU TensorFlow can use; it trains on the CPU" in errors["gpus"]
    assert model_spec.check({"name": "m", "dataset": done_dataset, "gpus": " "}, JobStore())["gpus"] is None


def test_gpus_must_be_among_the_machines(done_dataset, monkeypatch):
    monkeypatch.setenv("DIGITS_GPUS", "0,1")
    errors = form_errors({"dataset": done_dataset, "gpus": "1,2"})
    assert "No GPU 2 on this machine: its GPUs are 0, 1" in errors["gpus"]
    assert "listed more than once" in form_errors({"dataset": done_dataset, "gpus": "1,1"})["gpus"]
    assert "at least 2" in form_errors({"dataset": done_dataset, "gpus": "0,1", "batch_size": "1"})["batch_size"]
    assert model_spec.check({"name": "m", "dataset": done_dataset, "gpus": " 1 , 0"}, JobStore())["gpus"] == "1,0"
    errors = form_errors({"dataset": done_dataset, "gpus": "0,1", "batch_accumulation": "2"})
    assert "does not work across several GPUs" in errors["batch_accumulation"]
    assert model_spec.check({"name": "m", "dataset": done_dataset, "gpus": "1", "batch_accumulation": "2"},
                            JobStore())["batch_accumulation"] == 2


def test_several_workers_take_no_gpu_choice(done_dataset, monkeypatch):
    monkeypatch.setenv("DIGITS_GPUS", "0,1")
    errors = form_errors({"dataset": done_dataset, "gpus": "0", "workers": "2", "batch_size": "1",
                          "batch_accumulation": "2"})
    assert "CUDA_VISIBLE_DEVICES on each machine" in errors["gpus"]
    assert "does not work across several GPUs or machines" in errors["batch_accumulation"]
    assert "split across the 2 workers" in errors["batch_size"]


def test_cli_names_the_gpus_option(done_dataset, monkeypatch):
    monkeypatch.setenv("DIGITS_GPUS", "none")
    code, _, err = run_cli("model", "train", "--dataset", done_dataset, "--name", "m", "--gpus", "0")
    assert code == 2 and "--gpus: This machine has no GPU" in err


# ------------------------------------------------------------------ the scheduler's choice

def model_job(store: JobStore, gpus: str | None = None, running_on: str | None = None, workers: int = 1):
    """A model job as the scheduler sees it; `running_on`: Running, holding those GPUs ("" for none)."""
    job = store.create("model", "m", {"gpus": gpus, "workers": workers, "epochs": 1})
    if running_on is None:
        job.set_state(JobState.WAITING)
    else:
        job.set_state(JobState.RUNNING, gpu=running_on or None)
    return job


def choice(store: JobStore, job) -> list[str] | None:
    return Scheduler(store).devices_for(job, {j: j.state for j in store.list()})


@pytest.fixture
def two_gpus(jobs_dir, monkeypatch):
    monkeypatch.setenv("DIGITS_GPUS", "0,1")
    return JobStore()


def test_blank_takes_the_next_free_gpu(two_gpus):
    blank = model_job(two_gpus)
    assert choice(two_gpus, blank) == ["0"]
    model_job(two_gpus, running_on="0")
    assert choice(two_gpus, blank) == ["1"]
    model_job(two_gpus, running_on="1")
    assert choice(two_gpus, blank) is None


def test_a_job_naming_several_gpus_waits_until_all_are_free(two_gpus):
    both = model_job(two_gpus, gpus="0,1")
    assert choice(two_gpus, both) == ["0", "1"]
    running = model_job(two_gpus, running_on="1")
    assert choice(two_gpus, both) is None
    running.set_state(JobState.DONE)
    assert choice(two_gpus, both) == ["0", "1"]


def test_a_job_on_several_gpus_takes_that_many_slots(two_gpus):
    model_job(two_gpus, running_on="0,1")
    assert choice(two_gpus, model_job(two_gpus)) is None
    assert choice(two_gpus, model_job(two_gpus, gpus="1")) is None


def test_a_job_started_without_a_gpu_still_takes_a_slot(two_gpus):
    model_job(two_gpus, running_on="")
    assert choice(two_gpus, model_job(two_gpus, gpus="0,1")) is None
    assert choice(two_gpus, model_job(two_gpus)) == ["0"]


def test_a_multi_worker_job_takes_no_local_slot_and_is_not_started(two_gpus):
    model_job(two_gpus, running_on="", workers=2)
    assert choice(two_gpus, model_job(two_gpus, gpus="0,1")) == ["0", "1"]
    waiting = model_job(two_gpus, workers=2)
    Scheduler(two_gpus).schedule()
    assert waiting.state is JobState.WAITING
    assert f"digits model join {waiting.id}" in waiting.status()["note"]
    assert "docs/distributed.md" in waiting.status()["note"]


def test_gpus_that_are_gone_end_the_job_with_a_reason(two_gpus, monkeypatch):
    job = model_job(two_gpus, gpus="1")
    monkeypatch.setenv("DIGITS_GPUS", "0")
    assert choice(two_gpus, job) is None
    assert job.state is JobState.ERROR and "No GPU 1 on this machine" in job.status()["error"]


def test_cpu_slots_without_gpus(jobs_dir, monkeypatch):
    monkeypatch.setenv("DIGITS_GPUS", "none")
    monkeypatch.setenv("DIGITS_TRAIN_SLOTS", "2")
    store = JobStore()
    model_job(store, running_on="")
    assert choice(store, model_job(store)) == []
    model_job(store, running_on="")
    assert choice(store, model_job(store)) is None


# ------------------------------------------------------------------ mirrored across two devices, for real

def test_mirrored_strategy_over_two_cpu_devices(jobs_dir, image_folder, monkeypatch):
    dataset = create_dataset(image_folder)
    monkeypatch.setenv("DIGITS_CPU_DEVICES", "2")  # the scheduler hands os.environ to the worker
    code, out, err = run_cli("model", "train", "--dataset", dataset, "--name", "mirrored", "--epochs", 2,
                             "--batch-size", 8, "--seed", 1, "--wait", "--json")
    summary = json.loads(out)
    log = (jobs_dir / summary["id"] / "log.txt").read_text()
    assert code == 0 and summary["status"] == "Done", err + log
    assert "MirroredStrategy over 2 devices" in log
    assert "/device:CPU:0" in log and "/device:CPU:1" in log
    records = [json.loads(line) for line in (jobs_dir / summary["id"] / "progress.jsonl").read_text().splitlines()]
    epochs = [r for r in records if r["epoch"] in (1, 2)]
    assert [r["epoch"] for r in epochs] == [1, 2]
    assert all("train/loss" in r and "val/loss" in r and "val/accuracy" in r for r in epochs)
    assert (jobs_dir / summary["id"] / "snapshots" / "epoch_2.keras").exists()
