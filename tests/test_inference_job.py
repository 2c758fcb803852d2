"""Inference jobs ("classify many") with real workers on a tiny model: a
dataset split, a text list, files and uploads; the CSV, results.json and the
confusion matrix they leave; abort; `digits infer --wait --json`; bad input;
deleting a model takes its inference jobs along.

One Done dataset and model per module (made with the CLI); jobs of a test run
in the two inference slots side by side where they can.
"""
import csv
import io
import json
import time
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from conftest import COLOURS, make_images, stop_workers
from digits_engine import cli, inference_results, inference_spec, job_actions
from digits_engine.atomic_json import read_json
from digits_engine.errors import DigitsError
from digits_engine.fields import FormErrors
from digits_engine.job_state import JobState
from digits_engine.job_store import Job, JobStore
from digits_engine.scheduler import Scheduler
from test_jobs_integration import run_cli

pytestmark = pytest.mark.timeout(300)
LABELS = ["circle", "square", "triangle"]
HEADER = "row,image,record,label,predicted,confidence,correct,top5_labels,top5_probabilities"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A Done dataset (3 classes x 12 images, 16x16) and a Done 1-epoch model; the environment workers inherit."""
    root = tmp_path_factory.mktemp("inference")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DIGITS_JOBS_DIR", str(root / "jobs"))
        mp.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
        for name in ("DIGITS_DATA_ROOTS", "DIGITS_TRAIN_SLOTS", "DIGITS_DATASET_SLOTS"):
            mp.delenv(name, raising=False)
        mp.setenv("DIGITS_GPUS", "none")
        mp.setenv("DIGITS_OFFLINE", "1")
        images = make_images(root / "images")
        assert cli.main(["dataset", "create", "--folder", str(images), "--name", "d", "--wait"]) == 0
        dataset = JobStore().list("dataset")[0]
        assert cli.main(["model", "train", "--dataset", dataset.id, "--name", "m", "--epochs", "1",
                         "--batch-size", "8", "--wait"]) == 0
        yield SimpleNamespace(root=root, images=images, store=JobStore(), dataset=dataset,
                              model=JobStore().list("model")[0])
        stop_workers(root / "jobs")


def csv_rows(job) -> list[dict]:
    with open(job.dir / "predictions.csv", newline="") as f:
        return list(csv.DictReader(f))


def wait_done(*jobs) -> None:
    for job in jobs:
        assert job_actions.wait(job, timeout=120) is JobState.DONE, job.log_tail()


def png(colour, size=16) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def check_rows(rows: list[dict]) -> None:
    """What every row holds, whatever the source: consecutive ids, top-5 best first, confidence = top-1."""
    assert [int(r["row"]) for r in rows] == list(range(len(rows)))
    for r in rows:
        top = r["top5_labels"].split(";")
        probs = [float(p) for p in r["top5_probabilities"].split(";")]
        assert sorted(top) == LABELS and probs == sorted(probs, reverse=True)
        assert sum(probs) == pytest.approx(1, abs=1e-4)
        assert r["predicted"] == top[0] and float(r["confidence"]) == probs[0]
        assert r["correct"] == ("" if not r["label"] else str(int(r["label"] == r["predicted"])))


# ------------------------------------------------------------------ sources

def test_dataset_split_with_the_cli(trained, capsys):
    code = cli.main(["infer", trained.model.id, "--dataset", trained.dataset.id, "--split", "val", "--wait", "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["state"] == "Done"
    job = trained.store.get(summary["id"])
    stats = read_json(trained.dataset.dir / "stats.json")
    rows, results = csv_rows(job), inference_results.load(job)
    assert (job.dir / "predictions.csv").read_text().splitlines()[0] == HEADER
    assert summary["count"] == results["count"] == len(rows) == stats["totals"]["val"] == results["labelled"]
    check_rows(rows)
    # the records in LMDB order, each named by its source file, labelled with its class
    assert [int(r["record"]) for r in rows] == list(range(len(rows)))
    assert all(r["image"].startswith(str(trained.images)) and f"/{r['label']}/" in r["image"] for r in rows)
    assert sorted({r["label"] for r in rows}) == LABELS
    top1 = np.mean([r["correct"] == "1" for r in rows])
    assert summary["top1"] == pytest.approx(top1) and summary["top5"] == 1.0  # 3 classes: always in the top 5
    # results.json: the metrics of those rows
    assert results["labels"] == LABELS and results["errors"] == [] and results["images_per_second"] > 0
    confusion = np.array(results["confusion"])
    assert confusion.sum() == len(rows) and np.trace(confusion) == sum(r["correct"] == "1" for r in rows)
    assert [c["support"] for c in results["per_class"]] == confusion.sum(1).tolist()
    assert {int(r["row"]) for r in rows if r["correct"] == "0"} == set(results["mistakes"])
    assert all(len(ids) <= 20 for ids in results["top_per_class"].values())
    with open(job.dir / "confusion.csv", newline="") as f:
        table = list(csv.reader(f))
    assert table[0][1:] == LABELS and [r[0] for r in table[1:]] == LABELS
    assert [[int(v) for v in r[1:]] for r in table[1:]] == confusion.tolist()
    # what the results page reads back: rows in the order asked, and a row's image from LMDB
    frame = inference_results.predictions(job, rows=[2, 0])
    assert frame["row"].tolist() == [2, 0] and frame["record"].tolist() == [2, 0]
    image = inference_results.image_of(job, frame.iloc[0].to_dict())
    size = stats["image"]
    assert image.shape == (size["height"], size["width"], 3) and image.dtype == np.uint8
    assert np.abs(image.mean((0, 1)) - COLOURS[rows[2]["label"]]).max() < 10  # the record of that class


def test_list_and_image_sources(trained, tmp_path):
    images, model = trained.images, trained.model
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "my circle.png").write_bytes((images / "circle" / "000.png").read_bytes())
    listed = tmp_path / "list.txt"
    listed.write_text("\n".join([
        "# path [label]: a class name, a class index, or none",
        f"{images / 'circle' / '001.png'} circle",
        f"{images / 'square' / '001.png'} 1",
        "",
        f"{images / 'triangle' / '001.png'}",
        "more/my circle.png 0",  # relative to the list's folder; a space in the name
        f"{images / 'nowhere.png'} square",
    ]) + "\n")
    from_list = inference_spec.create({"model": model.id, "list_file": str(listed)}, trained.store)
    from_files = inference_spec.create(
        {"model": model.id, "images": [str(images / "square" / "002.png")]}, trained.store,
        uploads=[("red.png", png((220, 40, 40))), ("red.png", png((230, 30, 30))), ("notes.png", b"not an image")])
    wait_done(from_list, from_files)

    rows = csv_rows(from_list)
    check_rows(rows)
    assert [(r["image"], r["label"]) for r in rows] == [
        (str(images / "circle" / "001.png"), "circle"), (str(images / "square" / "001.png"), "square"),
        (str(images / "triangle" / "001.png"), ""), (str(tmp_path / "more" / "my circle.png"), "circle")]
    assert all(r["record"] == "" for r in rows)
    results = inference_results.load(from_list)
    assert (results["count"], results["labelled"], results["error_count"]) == (4, 3, 1)
    assert results["errors"][0]["image"] == str(images / "nowhere.png") and results["errors"][0]["error"]
    assert results["top1"] == pytest.approx(np.mean([r["correct"] == "1" for r in rows if r["label"]]))
    assert "nowhere.png" in from_list.log_path.read_text()

    rows = csv_rows(from_files)
    check_rows(rows)
    assert [r["image"] for r in rows] == [str(images / "square" / "002.png"), "uploads/red.png", "uploads/red_2.png"]
    assert all(r["label"] == r["correct"] == "" for r in rows)
    results = inference_results.load(from_files)
    assert (results["top1"], results["top5"], results["confusion"]) == (None, None, [])
    assert results["errors"] == [{"image": "uploads/notes.png", "error": results["errors"][0]["error"]}]
    assert not (from_files.dir / "confusion.csv").exists()
    upload = inference_results.image_of(from_files, inference_results.predictions(from_files).iloc[1].to_dict())
    assert upload.shape == (16, 16, 3) and tuple(upload[0, 0]) == (220, 40, 40)
    assert inference_results.summary(from_files)["top1"] is None


def test_abort_stops_the_loop_and_keeps_what_was_done(trained, tmp_path):
    listed = tmp_path / "long.txt"
    line = f"{trained.images / 'circle' / '003.png'} circle\n"
    listed.write_text(line * 20_000)
    job = inference_spec.create({"model": trained.model.id, "list_file": str(listed), "batch_size": 16},
                                trained.store)
    deadline = time.monotonic() + 60
    while not (job.state is JobState.RUNNING and job.status().get("progress", 0) > 0):
        assert job.state.is_active and time.monotonic() < deadline, job.log_tail()
        time.sleep(0.05)
    partial = inference_results.predictions(job)  # while it writes: whole rows only
    assert partial["row"].tolist() == list(range(len(partial))) and (partial["predicted"] != "").all()
    job_actions.abort(job, trained.store)
    assert job_actions.wait(job, timeout=60) is JobState.ABORTED
    results = inference_results.load(job)
    assert results["complete"] is False and 0 < results["count"] < 20_000
    assert len(csv_rows(job)) == results["count"]


def test_predictions_leave_out_the_row_being_written(tmp_path):
    job = Job(tmp_path)
    path = tmp_path / "predictions.csv"
    path.write_text("row,ima")
    assert inference_results.predictions(job).empty
    whole = "".join(f'{i},"/x/a,{i}.png",,NA,null,0.500000,,NA;null,0.500000;0.500000\n' for i in range(3))
    path.write_text(HEADER + "\n" + whole + '3,"/x/a,3')
    frame = inference_results.predictions(job)
    assert frame["row"].tolist() == [0, 1, 2] and frame["label"].tolist() == ["NA"] * 3  # class names stay text
    assert frame["image"].tolist() == [f"/x/a,{i}.png" for i in range(3)] and frame["record"].isna().all()
    assert inference_results.predictions(job, rows=[2, 3, 0])["row"].tolist() == [2, 0]


# ------------------------------------------------------------------ bad input

def test_bad_input_is_refused_with_what_to_do(trained, tmp_path, monkeypatch):
    model, dataset = trained.model.id, trained.dataset.id
    before = len(trained.store.list())
    allowed = tmp_path / "allowed"
    make_images(allowed, per_class=1)
    monkeypatch.setenv("DIGITS_DATA_ROOTS", str(allowed))

    code, out, err = run_cli("infer", model, "--images", trained.images / "circle" / "000.png")
    assert code == 2 and "error: --images:" in err and "outside the folders this server may read" in err
    code, out, err = run_cli("infer", "no-such-model", "--images", allowed / "circle" / "000.png")
    assert code == 2 and "error: MODEL_ID: No model with id 'no-such-model'" in err
    code, out, err = run_cli("infer", dataset, "--images", allowed / "circle" / "000.png")
    assert code == 2 and "is a dataset, not a model" in err

    listed = allowed / "list.txt"
    listed.write_text(f"circle/000.png circle\n\nsquare/000.png elephant\ncircle/000.png 7\n"
                      f"{trained.images / 'circle' / '000.png'}\n")
    code, out, err = run_cli("infer", model, "--list", listed, "--json")
    assert code == 2 and "Traceback" not in err
    message = json.loads(out)["fields"]["list_file"]
    assert "line 3: 'elephant' is neither a class of the model (circle, square, triangle)" in message
    assert "line 4: '7'" in message and "line 5:" in message and "outside the folders" in message
    assert "line 1" not in message

    code, out, err = run_cli("infer", model, "--dataset", dataset, "--split", "test")
    assert code == 2 and "error: --split:" in err and "has no test images; its splits: train" in err
    code, out, err = run_cli("infer", model, "--dataset", model)
    assert code == 2 and "error: --dataset:" in err and "is a model, not a dataset" in err
    code, out, err = run_cli("infer", model)
    assert code == 2 and "--output FILE.npz" in err and "--list FILE" in err
    code, out, err = run_cli("infer", model, "--images", allowed / "circle" / "000.png", "--output", "x.npz")
    assert code == 2 and "--option and --output are for a plugin's inference form" in err
    with pytest.raises(FormErrors, match="Give at least one image"):
        inference_spec.create({"model": model, "source": "images"}, trained.store)
    assert len(trained.store.list()) == before  # nothing was created


def test_waits_for_a_snapshot_and_fails_when_the_model_goes(trained):
    store = trained.store
    model = store.create("model", "not started", {}, parents=[trained.dataset.id])  # no worker: never starts
    job = inference_spec.create({"model": model.id, "images": [str(trained.images / "circle" / "000.png")]}, store)
    assert job.state is JobState.WAITING  # no snapshot yet
    model.set_state(JobState.ABORTED)
    Scheduler(store).schedule()
    assert job.state is JobState.ERROR and "ended Aborted without any snapshot" in job.status()["error"]
    with pytest.raises(FormErrors, match="ended Aborted without any snapshot"):
        inference_spec.create({"model": model.id, "images": [str(trained.images / "circle" / "000.png")]}, store)
    model.set_state(JobState.INITIALIZED)  # not started yet (Waiting would make the scheduler start it)
    waiting = inference_spec.create({"model": model.id, "images": [str(trained.images / "circle" / "000.png")]},
                                    store)
    store.remove(model)
    Scheduler(store).schedule()
    assert waiting.state is JobState.ERROR and "was deleted" in waiting.status()["error"]


def test_a_dataset_is_not_held_by_inference_but_a_model_takes_its_inference_along(trained):
    store = trained.store
    other = inference_spec.create({"model": trained.model.id, "images": [str(trained.images / "circle" / "000.png")]},
                                  store, uploads=[("blue.png", png((40, 60, 230)))])
    assert cli.main(["dataset", "create", "--folder", str(trained.images), "--name", "d2", "--wait"]) == 0
    second = store.list("dataset")[0]
    on_second = inference_spec.create({"model": trained.model.id, "dataset": second.id, "split": "train"}, store)
    wait_done(other)
    clone = job_actions.clone(other, store)  # its uploads are copied
    wait_done(on_second, clone)
    assert clone.name == f"{other.name} (clone)" and csv_rows(clone) == csv_rows(other)
    assert (clone.dir / "uploads" / "blue.png").read_bytes() == (other.dir / "uploads" / "blue.png").read_bytes()
    job_actions.delete(second, store)  # allowed: only an inference job used it
    row = inference_results.predictions(on_second, rows=[0]).iloc[0].to_dict()
    with pytest.raises(DigitsError, match="was deleted"):
        inference_results.image_of(on_second, row)
    inference_jobs = store.list("inference")
    assert on_second in inference_jobs and other in inference_jobs
    job_actions.delete(trained.model, store)
    assert not store.exists(trained.model.id)
    assert not [j for j in store.list("inference") if trained.model.id in j.parents]
    assert not on_second.dir.exists() and not other.dir.exists() and not clone.dir.exists()
