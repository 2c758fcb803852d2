"""Nothing is lost when a process is killed with SIGKILL: a training worker (it
ends Error and resumes; the model training beside it goes on), the process
inside a scheduling pass (the next pass is not blocked and starts every
waiting job), and the Streamlit server (its workers live on). Real processes
throughout; test_resume.py has the helpers for the resume part.
"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import make_images
from digits_engine import liveness
from test_browser import start_server, stop
from test_jobs_integration import (WAIT, create_dataset, history, run_cli, status, submit_model, wait_ended,
                                   wait_for)
from test_resume import EPOCHS, epochs_done, resume_and_check

pytestmark = pytest.mark.timeout(400)


def test_a_killed_worker_ends_error_and_resumes_while_the_other_model_trains_on(jobs_dir, image_folder,
                                                                                  monkeypatch):
    monkeypatch.setenv("DIGITS_TRAIN_SLOTS", "2")
    ds = create_dataset(image_folder, "--max-per-class", 12)
    other = submit_model(ds, EPOCHS, "bystander", "--seed", 4)["id"]
    doomed = submit_model(ds, EPOCHS, "resumable", "--seed", 3)["id"]
    wait_for(lambda: (jobs_dir / doomed / "snapshots" / "epoch_2.keras").exists(), WAIT, "epoch 2's snapshot")
    other_pid = status(jobs_dir, other)["pid"]
    assert status(jobs_dir, other)["state"] == "Running" and other_pid  # it trains while the other dies

    os.kill(status(jobs_dir, doomed)["pid"], signal.SIGKILL)
    wait_for(lambda: not liveness.lock_is_held(jobs_dir / doomed / "lock"), 30, "the lock to be freed")
    code, out, err = run_cli("jobs", "show", doomed, "--json")  # its scheduling pass records the death
    assert code == 0, err
    shown = json.loads(out)
    assert shown["status"] == "Error" and "worker process died" in shown["error"], shown
    resume_and_check(jobs_dir, doomed)

    assert wait_ended(jobs_dir, other) == "Done"
    assert history(jobs_dir, other) == ["Initialized", "Waiting", "Running", "Done"]
    assert status(jobs_dir, other)["pid"] == other_pid  # one worker from start to end
    assert epochs_done(jobs_dir, other) == list(range(1, EPOCHS + 1))


# ------------------------------------------------------------------ the scheduling process

STALLED_PASS = """
import sys, time
from pathlib import Path
from digits_engine import cli, scheduler

where, marker = sys.argv[1], Path(sys.argv[2])

def stall(*args, **kwargs):
    marker.write_text("inside the pass")
    time.sleep(600)

if where == "listing":  # holds jobs_dir/.scheduler.lock, has read nothing yet
    scheduler.JobStore.list = stall
else:  # has marked its job Running and holds the job's lock, has not started the worker
    scheduler.subprocess.Popen = stall
sys.exit(cli.main(sys.argv[3:]))
"""


def stalled_pass(where: str, marker, *cli_args) -> subprocess.Popen:
    """A process that stops inside a scheduling pass (at `where`) until it is killed."""
    proc = subprocess.Popen([sys.executable, "-c", STALLED_PASS, where, str(marker), *map(str, cli_args)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for(lambda: marker.exists() or proc.poll() is not None, 60, "the pass to stall")
    assert proc.poll() is None, proc.stderr.read().decode()
    return proc


def kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    proc.stderr.close()


def dataset_args(folder, name: str) -> list:
    return ["dataset", "create", "--folder", folder, "--name", name, "--width", 16, "--height", 16, "--json"]


def test_a_killed_scheduling_pass_blocks_nothing_and_loses_no_job(jobs_dir, tmp_path):
    folder = make_images(tmp_path / "images", per_class=4)
    holder = stalled_pass("listing", tmp_path / "holding", "jobs", "list")
    # two submits: their jobs are Waiting, their own passes wait for the lock
    submits = [subprocess.Popen([sys.executable, "-m", "digits_engine", *map(str, dataset_args(folder, f"d{i}"))],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    waiting = wait_for(lambda: len(found := [p.parent.name for p in jobs_dir.glob("*/status.json")]) == 2 and found,
                       60, "two jobs to be written")
    time.sleep(1)
    assert all(p.poll() is None for p in submits), "a pass ran while another held the lock"
    assert [status(jobs_dir, job_id)["state"] for job_id in waiting] == ["Waiting"] * 2

    kill(holder)
    ids = []
    for proc in submits:
        out, err = proc.communicate(timeout=WAIT)
        assert proc.returncode == 0, err
        ids.append(json.loads(out)["id"])
    assert [wait_ended(jobs_dir, job_id) for job_id in ids] == ["Done", "Done"]

    # killed after marking its job Running, before starting the worker: the next pass starts it again
    starter = stalled_pass("launching", tmp_path / "launching", *dataset_args(folder, "interrupted"))
    interrupted = next(d.name for d in jobs_dir.iterdir() if d.is_dir() and d.name not in ids)
    assert status(jobs_dir, interrupted)["state"] == "Running"
    kill(starter)
    code, out, err = run_cli("jobs", "list", "--json")  # the next pass, from another process
    assert code == 0, err
    assert wait_ended(jobs_dir, interrupted) == "Done"
    assert history(jobs_dir, interrupted) == ["Initialized", "Waiting", "Running", "Waiting", "Running", "Done"]
    assert all((jobs_dir / job_id / "job.json").exists() for job_id in [*ids, interrupted])


# ------------------------------------------------------------------ the Streamlit server

def run_app_once(url: str) -> None:
    """One session over the app's websocket, as a browser tab opens: the script runs once, and so
    does its scheduling pass, in the server's process."""
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from websockets.sync.client import connect

    rerun = BackMsg()
    rerun.rerun_script.query_string = ""
    rerun.rerun_script.page_script_hash = ""
    with connect(url.replace("http://", "ws://") + "/_stcore/stream", subprotocols=["streamlit"],
                 origin=url) as ws:
        ws.send(rerun.SerializeToString())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            message = ForwardMsg()
            message.ParseFromString(ws.recv(timeout=60))
            if message.WhichOneof("type") == "script_finished":
                return
    pytest.fail("the app's script did not finish within 60 s")


def parent_pid(pid: int) -> int:
    return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])


def test_a_killed_server_leaves_training_running(jobs_dir, image_folder, tmp_path):
    from digits_engine import model_spec
    from digits_engine.job_state import JobState
    from digits_engine.job_store import JobStore
    from test_pages import assert_fine, open_page, texts

    ds = create_dataset(image_folder)
    # a model written Waiting with no pass run: the server's page load starts it, as its child
    store = JobStore()
    params = model_spec.check({"dataset": ds, "name": "survivor", "epochs": 15, "batch_size": 8}, store)
    name, _, _ = params.pop("name"), params.pop("group"), params.pop("dataset")
    model = store.create("model", name, params, parents=[ds])
    model.set_state(JobState.WAITING)
    server, url = start_server(jobs_dir, tmp_path / "streamlit.log")
    try:
        run_app_once(url)
        wait_for(lambda: status(jobs_dir, model.id).get("pid"), 60, "the server to start the worker")
        worker = status(jobs_dir, model.id)["pid"]
        assert parent_pid(worker) == server.pid  # launched by the server itself
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
        assert status(jobs_dir, model.id)["state"] == "Running" and liveness.lock_is_held(model.lock_path)
        assert wait_ended(jobs_dir, model.id) == "Done"
    finally:
        stop(server)

    server, url = start_server(jobs_dir, tmp_path / "streamlit-again.log")
    try:
        run_app_once(url)  # the new server serves the app, and its pass finds nothing to fix
        at = open_page("model", job=model.id)
        assert_fine(at)
        assert "Done" in texts(at)
    finally:
        stop(server)
