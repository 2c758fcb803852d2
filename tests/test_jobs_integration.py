"""Real jobs end to end: the `digits` CLI submits, detached worker processes
build LMDB datasets and train Keras models, and the scheduler moves jobs
through their states. Nothing of ours is mocked.

Timing: every wait has a deadline, so a hang fails the test instead of
blocking the run. Where a test needs a job to stay in a state (Running,
Waiting), it holds it there deterministically: a named pipe among a dataset's
images blocks its worker on open() until the test writes to it.
"""
import errno
import io
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import CLASSES, COLOURS, make_images
from digits_engine import cli, image_records, liveness, lmdb_store
from digits_engine.job_store import JobStore

pytestmark = pytest.mark.timeout(300)

WAIT = 180  # seconds: generous for a loaded 2-core machine; a hang still fails


# ------------------------------------------------------------------ helpers

def run_cli(*args) -> tuple[int, str, str]:
    """`digits ARGS` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def run_digits(*args, timeout: float = WAIT) -> subprocess.CompletedProcess:
    """`python -m digits_engine ARGS` as a separate process (the real entry point)."""
    return subprocess.run([sys.executable, "-m", "digits_engine", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def status(jobs_dir: Path, job_id: str) -> dict:
    return json.loads((jobs_dir / job_id / "status.json").read_text())


def history(jobs_dir: Path, job_id: str) -> list[str]:
    return [state for state, _ in status(jobs_dir, job_id)["history"]]


def wait_for(predicate, timeout: float = WAIT, what: str = "condition", poll: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(poll)


def wait_ended(jobs_dir: Path, job_id: str, timeout: float = WAIT) -> str:
    """Poll status.json only (never runs a scheduling pass) until the job has ended."""
    ended = ("Done", "Aborted", "Error")
    state = wait_for(lambda: (s := status(jobs_dir, job_id)["state"]) in ended and s, timeout,
                     f"job {job_id} to end (log: {jobs_dir / job_id / 'log.txt'})")
    return state


def create_dataset(folder: Path, *extra, name: str = "shapes") -> str:
    code, out, err = run_cli("dataset", "create", "--name", name, "--folder", folder, "--width", 16, "--height", 16,
                             "--seed", 1, *extra, "--wait", "--json")
    assert code == 0, err + out
    summary = json.loads(out)
    assert summary["status"] == "Done"
    return summary["id"]


def submit(*args) -> dict:
    """Submit without waiting; the summary printed right after submit."""
    code, out, err = run_cli(*args, "--json")
    assert code == 0, err + out
    return json.loads(out)


def submit_model(dataset_id: str, epochs: int, name: str = "lenet", *extra) -> dict:
    return submit("model", "train", "--dataset", dataset_id, "--name", name, "--epochs", epochs,
                  "--batch-size", 8, *extra)


def release(fifo: Path, data: bytes = b"this is not an image", timeout: float = WAIT) -> None:
    """Unblock the worker waiting to read `fifo` (once it has opened it)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError as exc:  # ENXIO: nobody reads the pipe yet
            if exc.errno != errno.ENXIO or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def blocked_folder(root: Path, per_class: int = 4, classes=CLASSES) -> tuple[Path, Path]:
    """An image folder whose dataset worker blocks on a named pipe until `release`."""
    make_images(root, per_class=per_class, classes=classes)
    fifo = root / classes[0] / "pipe.png"
    os.mkfifo(fifo)
    return root, fifo


# ------------------------------------------------------------------ datasets

def test_dataset_create_splits_skips_and_writes_everything(jobs_dir, image_folder):
    bad = image_folder / "circle" / "bad.png"
    bad.write_text("this is text, not a PNG")
    (image_folder / "circle" / "notes.txt").write_text("not an image name: ignored")
    (image_folder / "square" / ".hidden.png").write_text("hidden: ignored")

    ds = create_dataset(image_folder)
    job_dir = jobs_dir / ds
    assert status(jobs_dir, ds)["progress"] == 1.0
    assert history(jobs_dir, ds) == ["Initialized", "Waiting", "Running", "Done"]

    stats = json.loads((job_dir / "stats.json").read_text())
    assert stats["labels"] == list(CLASSES)
    assert (job_dir / "labels.txt").read_text() == "circle\nsquare\ntriangle\n"
    counts = stats["counts"]
    assert set(counts) == {"train", "val"} and not (job_dir / "test").exists()
    # DIGITS' split of 12 images with 25% validation: 9 train, 3 val
    for name in ("square", "triangle"):
        assert (counts["train"][name], counts["val"][name]) == (9, 3)
    # circle lists 13 files (bad.png too): split 10 / 3, then bad.png is dropped from its side
    assert (counts["train"]["circle"], counts["val"]["circle"]) in {(9, 3), (10, 2)}
    assert stats["totals"] == {"train": sum(counts["train"].values()), "val": sum(counts["val"].values())}
    assert sum(stats["totals"].values()) == 36  # every good image, bad.png left out

    skipped = {s["path"]: s["reason"] for s in stats["skipped_files"]}
    assert set(skipped) == {str(bad), str(image_folder / "circle" / "notes.txt")}
    assert "not an image" in skipped[str(bad)]
    assert "not an image file (.txt)" in skipped[str(image_folder / "circle" / "notes.txt")]
    assert ".hidden" not in json.dumps(stats)
    assert "bad.png" in (job_dir / "log.txt").read_text()

    with Image.open(job_dir / "mean.png") as mean:
        assert mean.size == (16, 16) and mean.mode == "RGB"
        mean_pixels = np.asarray(mean, np.float64)
    # the mean of the train split: each class's colour weighted by its count
    weights = np.array([counts["train"][c] for c in CLASSES], np.float64)
    expected = (np.array([COLOURS[c] for c in CLASSES], np.float64) * weights[:, None]).sum(0) / weights.sum()
    np.testing.assert_allclose(mean_pixels.mean(axis=(0, 1)), expected, atol=4)
    np.testing.assert_allclose(stats["pixel_mean"], expected, atol=4)

    try:
        for split in ("train", "val"):
            assert lmdb_store.count(job_dir / split) == stats["totals"][split]
        labels = []
        for record in lmdb_store.read_range(job_dir / "train", 0, stats["totals"]["train"]):
            pixels, label = image_records.read_record(record)
            assert pixels.shape == (16, 16, 3)
            # every record's pixels are its class's colour
            assert np.abs(pixels.reshape(-1, 3).mean(0) - COLOURS[CLASSES[label]]).max() < 10
            labels.append(label)
        assert {CLASSES[i]: labels.count(i) for i in range(3)} == counts["train"]
        assert labels != sorted(labels)  # classes mixed, not one block per class
    finally:
        for split in ("train", "val"):
            lmdb_store.close_env(job_dir / split)


def test_dataset_grayscale_jpeg_with_test_split(jobs_dir, image_folder):
    ds = create_dataset(image_folder, "--channels", 1, "--encoding", "jpg", "--val-pct", 25, "--test-pct", 25,
                        "--resize-mode", "crop", "--width", 8, "--height", 12)
    job_dir = jobs_dir / ds
    stats = json.loads((job_dir / "stats.json").read_text())
    # 12 images, 25% val and 25% test: 6 / 3 / 3 per class
    assert stats["counts"] == {split: {c: n for c in CLASSES} for split, n in (("train", 6), ("val", 3), ("test", 3))}
    assert stats["image"] == {"width": 8, "height": 12, "channels": 1, "resize_mode": "crop", "encoding": "jpg"}
    with Image.open(job_dir / "mean.png") as mean:
        assert mean.size == (8, 12) and mean.mode == "L"
    try:
        record = lmdb_store.read_range(job_dir / "test", 0, 1)[0]
        assert image_records.read_record(record)[0].shape == (12, 8, 1)
        assert lmdb_store.count(job_dir / "test") == 9
    finally:
        for split in ("train", "val", "test"):
            lmdb_store.close_env(job_dir / split)


def test_dataset_with_no_readable_image_is_an_error(jobs_dir, tmp_path):
    folder = tmp_path / "broken"
    for name in ("a", "b"):
        (folder / name).mkdir(parents=True)
        for i in range(3):
            (folder / name / f"{i}.png").write_text("text")
    code, out, err = run_cli("dataset", "create", "--name", "broken", "--folder", folder, "--wait", "--json")
    assert code == 1
    summary = json.loads(out)
    assert summary["status"] == "Error"
    assert "No training image could be read" in summary["error"] and str(folder) in summary["error"]


# ------------------------------------------------------------------ training and inference

def test_train_then_classify(jobs_dir, image_folder):
    ds = create_dataset(image_folder)
    proc = run_digits("model", "train", "--dataset", ds, "--name", "lenet", "--epochs", 2, "--batch-size", 8,
                      "--lr-policy", "step", "--lr-step-pct", 50, "--seed", 1, "--wait", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    summary = json.loads(proc.stdout)
    model = summary["id"]
    job_dir = jobs_dir / model
    assert summary["status"] == "Done" and summary["progress"] == 1.0 and summary["dataset"] == ds, \
        (job_dir / "log.txt").read_text()
    assert history(jobs_dir, model) == ["Initialized", "Waiting", "Running", "Done"]

    metrics = summary["metrics"]
    for key in ("train/loss", "train/accuracy", "val/loss", "val/accuracy", "lr", "epoch"):
        assert key in metrics, metrics
    assert metrics["epoch"] == 2
    assert 0 <= metrics["val/accuracy"] <= 1 and metrics["train/loss"] > 0

    assert sorted(p.name for p in (job_dir / "snapshots").iterdir()) == [
        "best.json", "best.keras", "epoch_1.keras", "epoch_2.keras"]  # one per epoch, and the best on val/loss

    records = [json.loads(line) for line in (job_dir / "progress.jsonl").read_text().splitlines()]
    epochs = [r["epoch"] for r in records]
    assert epochs == sorted(epochs) and epochs[-1] == 2
    assert any(not float(e).is_integer() for e in epochs), epochs  # points within an epoch
    ends = {r["epoch"]: r for r in records if float(r["epoch"]).is_integer()}
    assert summary["best"] == max(r["val/accuracy"] for r in ends.values())
    assert set(ends) == {1, 2} and all("val/loss" in r and "val/accuracy" in r for r in ends.values())
    # step policy, 50% steps: the whole first epoch at the base rate, the second at rate * gamma
    assert ends[1]["lr"] == pytest.approx(0.01) and ends[2]["lr"] == pytest.approx(0.001)

    model_info = json.loads((job_dir / "model.json").read_text())
    assert model_info["labels"] == list(CLASSES) and model_info["dataset"] == ds

    images = [image_folder / "square" / "000.png", image_folder / "circle" / "001.png"]
    code, out, err = run_cli("classify", model, *images, "--json")
    assert code == 0, err
    results = json.loads(out)
    assert [r["image"] for r in results] == [str(p) for p in images]
    for result in results:
        predictions = result["predictions"]
        assert sorted(p["label"] for p in predictions) == sorted(CLASSES)
        probabilities = [p["probability"] for p in predictions]
        assert probabilities == sorted(probabilities, reverse=True)
        assert sum(probabilities) == pytest.approx(1.0, abs=1e-4)
        assert all(0 <= p <= 1 for p in probabilities)

    code, out, err = run_cli("classify", model, images[0], "--top", 1, "--json")
    assert code == 0, err
    one = json.loads(out)
    assert len(one["predictions"]) == 1
    assert one["predictions"][0] == results[0]["predictions"][0]

    code, out, err = run_cli("classify", model, images[0], "--epoch", 1, "--json")
    assert code == 0 and len(json.loads(out)["predictions"]) == 3

    not_an_image = image_folder / "readme.png"
    not_an_image.write_text("text")
    code, out, err = run_cli("classify", model, not_an_image, images[1], "--json")
    assert code == 1
    bad, good = json.loads(out)
    assert "error" in bad and "predictions" not in bad and len(good["predictions"]) == 3

    code, out, err = run_cli("classify", model, images[0], "--epoch", 7)
    assert code == 2 and "epoch 7" in err and "Traceback" not in err


# ------------------------------------------------------------------ scheduling

def test_waiting_jobs_start_when_their_dataset_is_done(jobs_dir, image_folder, tmp_path, monkeypatch):
    """One dataset slot: B waits for A's slot, the model waits for B; each worker's exit starts the next."""
    monkeypatch.setenv("DIGITS_DATASET_SLOTS", "1")
    folder_a, fifo = blocked_folder(tmp_path / "blocked")
    a = submit("dataset", "create", "--name", "A", "--folder", folder_a, "--width", 16, "--height", 16)["id"]
    assert status(jobs_dir, a)["state"] == "Running"
    b_summary = submit("dataset", "create", "--name", "B", "--folder", image_folder, "--width", 16, "--height", 16)
    b = b_summary["id"]
    assert b_summary["status"] == "Waiting"  # the only dataset slot is A's
    m_summary = submit_model(b, 1)
    model = m_summary["id"]
    assert m_summary["status"] == "Waiting"  # its dataset is not Done

    time.sleep(1.0)
    code, out, _ = run_cli("jobs", "list", "--json")  # a scheduling pass changes nothing while A runs
    states = {j["id"]: j["status"] for j in json.loads(out)}
    assert states == {a: "Running", b: "Waiting", model: "Waiting"}

    release(fifo)
    # From here on nobody runs a scheduling pass: only status.json is read.
    assert wait_ended(jobs_dir, a) == "Done"
    assert wait_ended(jobs_dir, b) == "Done", (jobs_dir / b / "log.txt").read_text()
    assert wait_ended(jobs_dir, model) == "Done", (jobs_dir / model / "log.txt").read_text()
    assert history(jobs_dir, b) == ["Initialized", "Waiting", "Running", "Done"]
    assert history(jobs_dir, model) == ["Initialized", "Waiting", "Running", "Done"]

    def when(job_id, state):
        return next(t for s, t in status(jobs_dir, job_id)["history"] if s == state)
    assert when(a, "Done") <= when(b, "Running") and when(b, "Done") <= when(model, "Running")
    stats_a = json.loads((jobs_dir / a / "stats.json").read_text())
    assert [s["path"] for s in stats_a["skipped_files"]] == [str(fifo)]


def test_model_errors_when_its_dataset_fails(jobs_dir, tmp_path):
    folder = tmp_path / "unreadable"
    for name in ("a", "b"):
        (folder / name).mkdir(parents=True)
        for i in range(3):
            (folder / name / f"{i}.png").write_text("text")
    fifo = folder / "a" / "pipe.png"
    os.mkfifo(fifo)
    ds = submit("dataset", "create", "--name", "bad", "--folder", folder)["id"]
    model = submit_model(ds, 1)
    assert model["status"] == "Waiting"
    release(fifo)
    assert wait_ended(jobs_dir, ds) == "Error"
    assert wait_ended(jobs_dir, model["id"]) == "Error"  # settled by the dataset worker's exit pass
    error = status(jobs_dir, model["id"])["error"]
    assert ds in error and "Error" in error
    assert "Running" not in history(jobs_dir, model["id"])


def test_abort_running_and_waiting_models(jobs_dir, image_folder):
    ds = create_dataset(image_folder)
    long = submit_model(ds, 1000, "long")["id"]
    progress = jobs_dir / long / "progress.jsonl"
    wait_for(lambda: progress.exists() and progress.read_text().count("\n") >= 1, WAIT, "training to start")

    waiting = submit_model(ds, 1, "queued")
    assert waiting["status"] == "Waiting"  # the only training slot is busy
    code, out, err = run_cli("jobs", "abort", waiting["id"], "--json")
    assert code == 0, err
    assert json.loads(out)["status"] == "Aborted"
    assert history(jobs_dir, waiting["id"]) == ["Initialized", "Waiting", "Aborted"]

    code, out, err = run_cli("jobs", "abort", long, "--json")  # waits up to 60 s for the worker to stop
    assert code == 0, err
    assert json.loads(out)["status"] == "Aborted", (jobs_dir / long / "log.txt").read_text()
    final = status(jobs_dir, long)
    assert final["history"][-1][0] == "Aborted" and not final.get("error")
    assert final["progress"] < 0.5
    snapshots = [p.name for p in (jobs_dir / long / "snapshots").iterdir()]
    assert "aborted.keras" in snapshots or any(n.startswith("epoch_") for n in snapshots), snapshots
    assert "ended Aborted" in (jobs_dir / long / "log.txt").read_text()
    wait_for(lambda: not liveness.lock_is_held(jobs_dir / long / "lock"), 30, "the worker to exit")
    # the worker's exit pass must not start a job that was aborted while waiting
    assert history(jobs_dir, waiting["id"]) == ["Initialized", "Waiting", "Aborted"]


def test_killed_worker_becomes_error(jobs_dir, image_folder):
    ds = create_dataset(image_folder)
    other = create_dataset(image_folder, name="unrelated")
    model = submit_model(ds, 1000, "doomed")["id"]
    progress = jobs_dir / model / "progress.jsonl"
    wait_for(lambda: progress.exists() and progress.read_text().count("\n") >= 1, WAIT, "training to start")
    pid = status(jobs_dir, model)["pid"]
    assert status(jobs_dir, model)["state"] == "Running"
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not liveness.lock_is_held(jobs_dir / model / "lock"), 30, "the kernel to free the lock")
    assert status(jobs_dir, model)["state"] == "Running"  # nobody has noticed yet

    code, out, err = run_cli("jobs", "list", "--json")  # runs a scheduling pass
    assert code == 0, err
    jobs = {j["id"]: j for j in json.loads(out)}
    assert jobs[model]["status"] == "Error" and "died" in jobs[model]["error"]
    assert jobs[ds]["status"] == "Done" and jobs[other]["status"] == "Done"
    assert [j["id"] for j in json.loads(out)] == [model, other, ds]  # newest first

    code, out, err = run_cli("jobs", "show", model, "--json")
    assert code == 0 and json.loads(out)["status"] == "Error"
    assert history(jobs_dir, model) == ["Initialized", "Waiting", "Running", "Error"]


# ------------------------------------------------------------------ clone and delete

def test_clone_and_delete(jobs_dir, image_folder):
    ds = create_dataset(image_folder, "--val-pct", 10, "--encoding", "none")
    code, out, err = run_cli("model", "train", "--dataset", ds, "--name", "net", "--epochs", 1, "--batch-size", 8,
                             "--solver", "adam", "--lr", 0.001, "--wait", "--json")
    assert code == 0, err + out
    model = json.loads(out)
    assert model["status"] == "Done"
    store = JobStore()

    code, out, err = run_cli("jobs", "clone", ds, "--wait", "--json")
    assert code == 0, err
    ds_clone = json.loads(out)
    assert ds_clone["id"] != ds and ds_clone["status"] == "Done" and ds_clone["name"] == "shapes (clone)"
    assert ds_clone["params"] == store.get(ds).params

    code, out, err = run_cli("jobs", "clone", model["id"], "--json")
    assert code == 0, err
    model_clone = json.loads(out)
    assert model_clone["id"] != model["id"] and model_clone["dataset"] == ds
    assert model_clone["params"] == model["params"] and model_clone["params"]["solver"] == "adam"
    code, out, err = run_cli("jobs", "abort", model_clone["id"], "--json")
    assert code == 0 and json.loads(out)["status"] == "Aborted"

    proc = run_digits("jobs", "delete", ds)
    assert proc.returncode == 2
    assert "net" in proc.stderr and model["id"] in proc.stderr and model_clone["id"] in proc.stderr
    assert "Traceback" not in proc.stderr
    assert (jobs_dir / ds).is_dir()

    for job_id in (model["id"], model_clone["id"], ds):
        code, out, err = run_cli("jobs", "delete", job_id, "--json")
        assert code == 0, err
        assert json.loads(out) == {"deleted": job_id}
        assert not (jobs_dir / job_id).exists()
    code, out, _ = run_cli("jobs", "list", "--json")
    assert [j["id"] for j in json.loads(out)] == [ds_clone["id"]]
