"""Several machines: a model created with --workers 2 waits for its workers; two real
`digits model join` processes on 127.0.0.1 (MultiWorkerMirroredStrategy, TF_CONFIG) train it
to Done with identical weights; TF_CONFIG mistakes are refused with what to fix."""
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from digits_engine import cluster_config, lmdb_store, snapshots
from digits_engine.errors import DigitsError
from digits_engine.job_store import JobStore
from test_jobs_integration import create_dataset, run_cli, submit_model, wait_for

pytestmark = pytest.mark.timeout(300)

JOIN_TIMEOUT = 240  # seconds for both workers: a hang (a worker waiting for a peer forever) fails the test


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_config(ports: list[int], index: int) -> str:
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                       "task": {"type": "worker", "index": index}})


def join_all(job_id: str, tmp_path, workers: int = 2, meanwhile=None) -> list[tuple[int, str, str]]:
    """Start every worker's `digits model join`, wait for all; (exit code, stdout, stderr) of each.
    `meanwhile(processes)` runs once they have started."""
    ports = free_ports(workers)
    procs, outputs = [], []
    for index in range(workers):
        out, err = tmp_path / f"worker{index}.out", tmp_path / f"worker{index}.err"
        env = dict(os.environ, TF_CONFIG=tf_config(ports, index), CUDA_VISIBLE_DEVICES="")
        with open(out, "w") as stdout, open(err, "w") as stderr:
            procs.append(subprocess.Popen([sys.executable, "-m", "digits_engine", "model", "join", job_id, "--json"],
                                          stdout=stdout, stderr=stderr, env=env))
        outputs.append((out, err))
    deadline = time.monotonic() + JOIN_TIMEOUT
    try:
        if meanwhile:
            meanwhile(procs)
        for proc in procs:
            proc.wait(timeout=max(deadline - time.monotonic(), 1))
    except subprocess.TimeoutExpired:
        for proc in procs:
            proc.kill()
        logs = "\n".join(f"--- worker {i}\n{err.read_text()[-3000:]}" for i, (_, err) in enumerate(outputs))
        pytest.fail(f"the workers did not finish in {JOIN_TIMEOUT}s:\n{logs}")
    return [(p.returncode, o.read_text(), e.read_text()) for p, (o, e) in zip(procs, outputs)]


def test_two_workers_train_to_the_same_weights(jobs_dir, image_folder, tmp_path):
    dataset = create_dataset(image_folder)
    job = submit_model(dataset, 2, "two machines", "--workers", 2, "--seed", 1)
    assert job["status"] == "Waiting"
    assert f"digits model join {job['id']}" in job["note"] and "docs/distributed.md" in job["note"]

    results = join_all(job["id"], tmp_path)
    for code, out, err in results:
        assert code == 0, err[-3000:]
    reports = [json.loads(out) for _, out, _ in results]
    assert [r["worker"] for r in reports] == [0, 1] and all(r["state"] == "Done" for r in reports)

    folder = jobs_dir / job["id"]
    status = json.loads((folder / "status.json").read_text())
    assert status["state"] == "Done" and status["progress"] == 1.0
    records = [json.loads(line) for line in (folder / "progress.jsonl").read_text().splitlines()]
    per_epoch = [r for r in records if r["epoch"] in (1, 2)]
    assert [r["epoch"] for r in per_epoch] == [1, 2]
    assert all({"train/loss", "train/accuracy", "val/loss", "val/accuracy", "lr"} <= set(r) for r in per_epoch)
    log = (folder / "log.txt").read_text()
    assert "MultiWorkerMirroredStrategy, worker 0 of 2" in log and "as worker 1" not in log  # the chief's only

    chief, other = (json.loads((folder / "workers" / f"{i}.json").read_text()) for i in (0, 1))
    assert chief["index"] == 0 and other["index"] == 1
    steps_per_epoch = math.ceil(lmdb_store.count(jobs_dir / dataset / "train") / 8)
    assert chief["steps"] == other["steps"] == 2 * steps_per_epoch
    assert chief["weights_sha256"] == other["weights_sha256"]
    assert sorted(p.name for p in (folder / "snapshots").glob("epoch_*.keras")) == ["epoch_1.keras", "epoch_2.keras"]

    import keras  # TensorFlow in this process only now, for the one check that needs it

    from digits_engine.training.multi_worker import weights_sha256
    assert weights_sha256(keras.models.load_model(folder / "snapshots" / "epoch_2.keras")) == chief["weights_sha256"]


def test_stopping_one_worker_stops_all_then_the_job_resumes(jobs_dir, image_folder, tmp_path):
    dataset = create_dataset(image_folder)
    job = submit_model(dataset, 6, "stopped", "--workers", 2, "--seed", 3)
    folder = jobs_dir / job["id"]

    def stop_worker_1_after_an_epoch(procs):
        wait_for(lambda: (folder / "snapshots" / "epoch_1.keras").exists(), JOIN_TIMEOUT, "the first epoch")
        procs[1].send_signal(signal.SIGTERM)  # not the chief: the chief must learn it from the others

    results = join_all(job["id"], tmp_path, meanwhile=stop_worker_1_after_an_epoch)
    assert [json.loads(out)["state"] for _, out, _ in results] == ["Aborted", "Aborted"]
    assert json.loads((folder / "status.json").read_text())["state"] == "Aborted"
    assert (folder / "snapshots" / "aborted.keras").exists()
    stopped_at = max(e for e, _ in snapshots.list_snapshots(JobStore().get(job["id"])))
    assert stopped_at < 6

    code, out, err = run_cli("jobs", "resume", job["id"], "--json")
    assert code == 0 and json.loads(out)["status"] == "Waiting", err + out
    results = join_all(job["id"], tmp_path)
    assert [code for code, _, _ in results] == [0, 0], results[0][2][-3000:] + results[1][2][-3000:]
    assert json.loads((folder / "status.json").read_text())["state"] == "Done"
    whole = [json.loads(line)["epoch"] for line in (folder / "progress.jsonl").read_text().splitlines()]
    assert [e for e in whole if e == int(e)] == [1, 2, 3, 4, 5, 6]  # no gap, no repeat
    chief, other = (json.loads((folder / "workers" / f"{i}.json").read_text()) for i in (0, 1))
    assert chief["weights_sha256"] == other["weights_sha256"]


def test_validation_scores_from_the_summed_confusion_matrix():
    from digits_engine.training.multi_worker import confusion_scores
    confusion = np.array([[3, 1, 0], [0, 2, 0], [0, 0, 0]])  # class 2 neither seen nor predicted: not averaged
    scores = confusion_scores(confusion)
    assert scores["accuracy"] == pytest.approx(5 / 6)
    assert scores["mean_iou"] == pytest.approx((3 / 4 + 2 / 3) / 2)


# ------------------------------------------------------------------ what is refused, and why

def test_tf_config_mistakes_say_what_to_fix():
    def problem(raw, expected=2) -> str:
        with pytest.raises(DigitsError) as caught:
            cluster_config.read(expected, {} if raw is None else {"TF_CONFIG": raw})
        return str(caught.value)

    assert "TF_CONFIG is not set" in problem(None)
    assert "not valid JSON" in problem("{cluster")
    assert "no cluster.worker list" in problem('{"task": {"type": "worker", "index": 0}}')
    assert "out of range" in problem(tf_config([1, 2], 2))
    assert "must be \"host:port\"" in problem(json.dumps({"cluster": {"worker": ["a", "b:1"]},
                                                          "task": {"type": "worker", "index": 0}}))
    assert "lists 2 worker(s) but the job was created for 3" in problem(tf_config([1, 2], 1), expected=3)
    task = cluster_config.read(2, {"TF_CONFIG": tf_config([5, 6], 1)})
    assert task.index == 1 and not task.is_chief and task.workers == ("127.0.0.1:5", "127.0.0.1:6")


def test_join_refuses_what_it_cannot_run(jobs_dir, image_folder, monkeypatch):
    dataset = create_dataset(image_folder)
    waiting = submit_model(dataset, 1, "several", "--workers", 2)
    monkeypatch.delenv("TF_CONFIG", raising=False)
    code, _, err = run_cli("model", "join", waiting["id"])
    assert code == 2 and "TF_CONFIG is not set" in err
    monkeypatch.setenv("TF_CONFIG", tf_config([1, 2, 3], 0))
    code, _, err = run_cli("model", "join", waiting["id"])
    assert code == 2 and "lists 3 worker(s) but the job was created for 2" in err

    code, out, _ = run_cli("model", "train", "--dataset", dataset, "--name", "one", "--epochs", 1, "--batch-size", 8,
                           "--wait", "--json")
    assert code == 0
    code, _, err = run_cli("model", "join", json.loads(out)["id"])
    assert code == 2 and "not a multi-worker model" in err
