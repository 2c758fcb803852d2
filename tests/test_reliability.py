"""Nothing is lost under load or damage: 20 models submitted at once run two at
a time and all end Done; broken job files stop neither starting nor reaping;
a dataset that fills its space ends Error, with nothing left that looks usable.
Real workers and LMDB throughout (the kills are in test_reliability_kills.py).
"""
import json
import os
import signal
import time

import pytest

from conftest import make_images
from digits_engine import liveness
from digits_engine.scheduler import Scheduler
from test_jobs_integration import (WAIT, blocked_folder, create_dataset, run_cli, status, submit, submit_model,
                                   wait_ended, wait_for)

pytestmark = pytest.mark.timeout(400)
ENDED = ("Done", "Aborted", "Error")


def running_now(jobs_dir, ids: list[str]) -> int:
    """How many of `ids` are Running, all at one instant: read newest first. Jobs start in id order, so a
    job read later that still runs was already running when the first Running one was read."""
    return sum(status(jobs_dir, job_id)["state"] == "Running" for job_id in sorted(ids, reverse=True))


def most_at_once(jobs_dir, ids: list[str]) -> int:
    """The most jobs Running at once, from their recorded [started, ended) times."""
    edges = []
    for job_id in ids:
        times = dict(status(jobs_dir, job_id)["history"])
        edges += [(times["Running"], 1), (times["Done"], -1)]
    running = peak = 0
    for _, step in sorted(edges, key=lambda edge: (edge[0], edge[1])):  # an end before a start at the same ms
        running += step
        peak = max(peak, running)
    return peak


def test_twenty_models_at_once_run_two_at_a_time_and_all_end_done(jobs_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITS_TRAIN_SLOTS", "2")
    ds = create_dataset(make_images(tmp_path / "images", per_class=4))
    ids = [submit_model(ds, 1, f"m{i:02d}")["id"] for i in range(20)]
    samples = []
    deadline = time.monotonic() + 2 * WAIT
    while not all(status(jobs_dir, job_id)["state"] in ENDED for job_id in ids):
        assert time.monotonic() < deadline, f"not all ended: {[status(jobs_dir, i)['state'] for i in ids]}"
        samples.append(running_now(jobs_dir, ids))
        time.sleep(0.05)
    assert max(samples) == 2, f"at most 2 Running at once, and 2 at some point; sampled {sorted(set(samples))}"
    assert [status(jobs_dir, job_id)["state"] for job_id in ids] == ["Done"] * 20
    assert most_at_once(jobs_dir, ids) == 2


def broken_jobs(jobs_dir) -> tuple[str, str]:
    """A folder whose job.json was written in part, and a job whose status.json was; named to be listed first."""
    half_spec = jobs_dir / "99990101-000000-000-dead"
    half_spec.mkdir()
    (half_spec / "job.json").write_text('{"id": "99990101-000000-000-dead", "kind": "mod')
    half_status = jobs_dir / "99990101-000000-000-beef"
    half_status.mkdir()
    (half_status / "job.json").write_text(json.dumps({"id": half_status.name, "kind": "dataset", "name": "torn",
                                                      "params": {}, "parents": []}))
    (half_status / "status.json").write_text('{"state": "Runn')
    return half_spec.name, half_status.name


def test_broken_job_files_stop_neither_starting_nor_reaping(jobs_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITS_DATASET_SLOTS", "1")
    folder, fifo = blocked_folder(tmp_path / "blocked")
    dead = submit("dataset", "create", "--folder", folder, "--name", "dies", "--width", 16, "--height", 16)["id"]
    wait_for(lambda: status(jobs_dir, dead).get("pid"), WAIT, "the blocked worker to start")
    waiting = submit("dataset", "create", "--folder", make_images(tmp_path / "images", per_class=4), "--name",
                     "waits", "--width", 16, "--height", 16)["id"]
    assert status(jobs_dir, waiting)["state"] == "Waiting"  # the one slot is taken
    os.kill(status(jobs_dir, dead)["pid"], signal.SIGKILL)  # dies: no pass runs after it
    wait_for(lambda: not liveness.lock_is_held(jobs_dir / dead / "lock"), 30, "the lock to be freed")
    half_spec, half_status = broken_jobs(jobs_dir)

    Scheduler().schedule()
    assert status(jobs_dir, dead)["state"] == "Error" and "died" in status(jobs_dir, dead)["error"]
    assert wait_ended(jobs_dir, waiting) == "Done"
    assert (jobs_dir / half_status / "status.json").read_text() == '{"state": "Runn'  # left as it was

    code, out, err = run_cli("jobs", "list", "--json")  # shown as broken jobs, with the file that is bad
    assert code == 0, err
    shown = {job["id"]: job for job in json.loads(out)}
    assert shown[dead]["status"] == "Error" and shown[waiting]["status"] == "Done"
    for job_id, kind, name, bad_file in ((half_spec, "unknown", half_spec, "job.json"),
                                         (half_status, "dataset", "torn", "status.json")):
        job = shown[job_id]
        assert job["broken"] is True and job["status"] == "Error" and bad_file in job["error"], job
        assert (job["kind"], job["name"]) == (kind, name)


def test_a_full_disk_ends_the_dataset_in_error_with_nothing_usable_left(jobs_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITS_LMDB_MAP_MB", "1")  # the dataset's space: 27 raw 128x128 images need 1.3 MB
    folder = make_images(tmp_path / "images", per_class=12, size=128)
    code, out, err = run_cli("dataset", "create", "--folder", folder, "--name", "too big", "--width", 128,
                             "--height", 128, "--encoding", "none", "--wait", "--json")
    job = json.loads(out)
    assert code == 1 and job["status"] == "Error", err
    assert job["error"].startswith("The disk (or the dataset's space) is full while writing the train database")
    assert "DIGITS_LMDB_MAP_MB=1 MB" in job["error"] and "clone the job" in job["error"]
    assert sorted(p.name for p in (jobs_dir / job["id"]).iterdir()) == ["job.json", "lock", "log.txt", "status.json"]

    code, out, err = run_cli("model", "train", "--dataset", job["id"], "--name", "m", "--epochs", 1)
    assert code == 2 and "ended Error; pick a dataset that is Done" in err
