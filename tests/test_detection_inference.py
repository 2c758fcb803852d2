"""Inference jobs on a detection model, with real workers on a tiny CenterNet
trained on coloured squares (tests/test_detection_training's data): a dataset
split with ground truth (detections.jsonl, mAP equal to training's
evaluate_model, the worst misses) through `digits infer --json`, a list of
files (boxes in the files' own pixels), the refusals, and the inference page
in both states (AppTest).

One dataset, model and pair of jobs per module: the list job runs while the
CLI waits for the split's.
"""
import json
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from conftest import stop_workers
from digits_engine import inference_results, inference_spec, job_actions, lmdb_store
from digits_engine.atomic_json import read_json
from digits_engine.detection_decode import decode
from digits_engine.detection_inference import MISS_SCORE, WORST, WRITTEN_SCORE, WorstMisses
from digits_engine.fields import FormErrors
from digits_engine.image_records import read_record
from digits_engine.job_state import JobState
from digits_engine.job_store import JobStore
from test_detection_training import LABELS, SIZE, detection_dataset
from test_inference_page import assert_fine, metrics, open_page
from test_jobs_integration import run_cli
from test_pages import engine_env

pytestmark = pytest.mark.timeout(300)
EPOCHS = 8
N_VAL = 8
N_FILES = 3  # val records saved as files twice their size


def val_records(dataset) -> list:
    return [read_record(r) for r in lmdb_store.read_indices(dataset.dir / "val", range(N_VAL))]


def write_files(root, records) -> list:
    """The first N_FILES val images enlarged 2x (nearest), as PNG files: the same scenes at 96x96."""
    root.mkdir()
    paths = []
    for i, (pixels, _) in enumerate(records[:N_FILES]):
        paths.append(root / f"val {i}.png")
        Image.fromarray(np.repeat(np.repeat(pixels, 2, axis=0), 2, axis=1)).save(paths[-1])
    return paths


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A Done detection dataset (stats as the dataset job writes them), a Done model, a list job (3 files and a
    missing one, not awaited) and the split job run by `digits infer --wait --json` (its output kept)."""
    root = tmp_path_factory.mktemp("detection_inference")
    jobs = root / "jobs"
    jobs.mkdir()
    with pytest.MonkeyPatch.context() as mp:  # workers inherit this environment
        engine_env(mp, jobs)
        store = JobStore()
        dataset = store.get(detection_dataset(jobs, n_train=32, n_val=N_VAL))
        stats = read_json(dataset.dir / "stats.json")
        objects = {s: {name: 0 for name in LABELS} for s in ("train", "val")}
        for split in objects:
            for record in lmdb_store.read_indices(dataset.dir / split, range(stats["counts"][split])):
                for c in read_record(record)[1]["classes"]:
                    objects[split][LABELS[c]] += 1
        (dataset.dir / "stats.json").write_text(json.dumps({**stats, "totals": stats["counts"], "objects": objects}))
        code, out, err = run_cli("model", "train", "--dataset", dataset.id, "--name", "m", "--epochs", EPOCHS,
                                 "--batch-size", 8, "--solver", "adam", "--lr", "0.003", "--seed", 1, "--wait",
                                 "--json")
        assert code == 0, err + out
        model = store.list("model")[0]
        assert model.state is JobState.DONE, model.log_tail()
        records = val_records(dataset)
        files = write_files(root / "files", records)
        listed = root / "list.txt"
        listed.write_text("".join(f"{path}\n" for path in files) + f"{root / 'files' / 'gone.png'}\n")
        from_list = inference_spec.create({"model": model.id, "list_file": str(listed)}, store)
        code, out, err = run_cli("infer", model.id, "--dataset", dataset.id, "--split", "val", "--wait", "--json")
        assert code == 0, err + out
        summary = json.loads(out)
        yield SimpleNamespace(root=root, jobs=jobs, store=store, dataset=dataset, model=model, records=records,
                              files=files, from_list=from_list, summary=summary, split=store.get(summary["id"]))
        stop_workers(jobs)


@pytest.fixture
def env(trained, monkeypatch):
    engine_env(monkeypatch, trained.jobs)
    return trained


def lines(job) -> list[dict]:
    return [json.loads(line) for line in (job.dir / "detections.jsonl").read_text().splitlines()]


def done(job) -> None:
    assert job_actions.wait(job, timeout=120) is JobState.DONE, job.log_tail()


# ------------------------------------------------------------------ the job

def test_a_split_measures_map_as_training_does(env):
    from digits_engine import inference
    from digits_engine.training.centernet import evaluate_model
    from digits_engine.training.input_pipeline import make_dataset
    summary, job = env.summary, env.split
    results = inference_results.load(job)
    assert summary["state"] == "Done" and summary["task"] == "detection" and summary["count"] == N_VAL
    assert "top1" not in summary and "top5" not in summary and summary["detections"].endswith("detections.jsonl")
    assert summary["mAP"] == results["mAP"] and summary["AP"] == results["AP"] and set(results["AP"]) == set(LABELS)
    assert 0 <= results["mAP"] <= 1 and results["images"] == results["labelled"] == N_VAL
    assert not (job.dir / "predictions.csv").exists() and not (job.dir / "confusion.csv").exists()
    # the same figure as training's val/mAP, on the same snapshot and split
    val = make_dataset(env.dataset.dir / "val", (SIZE, SIZE, 3), "png", 4, shuffle=False, task="detection",
                       n_classes=len(LABELS), cache=False)
    expected = evaluate_model(inference.load_model(env.model), val, len(LABELS))
    assert results["mAP"] == pytest.approx(expected["mAP"], abs=1e-6)
    assert [results["AP"][name] for name in LABELS] == pytest.approx(expected["AP"], abs=1e-6)
    assert results["objects"] == read_json(env.dataset.dir / "stats.json")["objects"]["val"]
    # one line per record, in LMDB order; boxes in the stored image's pixels
    found = lines(job)
    assert [(d["record"], d["image"]) for d in found] == [(i, f"val record {i}") for i in range(N_VAL)]
    for d in found:
        assert len(d["boxes"]) == len(d["scores"]) == len(d["classes"]) and set(d["classes"]) <= set(LABELS)
        assert all(s >= WRITTEN_SCORE for s in d["scores"]) and d["scores"] == sorted(d["scores"], reverse=True)
        assert all(0 <= v <= SIZE for box in d["boxes"] for v in box)
    # the worst misses: images with a missed box, most missed first, then the lowest recall
    misses = results["worst_misses"]
    assert len(misses) <= WORST and all(m["missed"] >= 1 for m in misses)
    assert [(-m["missed"], m["recall"]) for m in misses] == sorted((-m["missed"], m["recall"]) for m in misses)
    for m in misses:
        truth = env.records[m["record"]][1]
        assert m["objects"] == len(truth["classes"]) and m["image"] == found[m["row"]]["image"]
        assert m["recall"] == pytest.approx((m["objects"] - m["missed"]) / m["objects"])
    assert "mAP@0.5:" in inference_results.as_text(summary)


def test_files_get_boxes_in_their_own_pixels(env):
    from digits_engine import inference
    from digits_engine.images import load_image, resize_image
    done(env.from_list)
    results = inference_results.load(env.from_list)
    assert (results["count"], results["error_count"], results["mAP"], results["worst_misses"]) == (N_FILES, 1, None, [])
    assert results["errors"][0]["image"].endswith("gone.png")
    on_files = lines(env.from_list)
    assert [d["image"] for d in on_files] == [str(p) for p in env.files] and all(d["record"] is None for d in on_files)
    # the model saw each 96x96 file squashed to 48x48 (the dataset's resize); its boxes come back twice as large
    model = inference.load_model(env.model)
    seen = np.stack([resize_image(load_image(p), SIZE, SIZE, 3, "squash") for p in env.files]).astype(np.float32)
    for line, found in zip(on_files, decode(np.asarray(model(seen, training=False)))):
        keep = found["scores"] >= WRITTEN_SCORE
        assert line["scores"] == pytest.approx(found["scores"][keep].tolist(), abs=1e-4)
        assert line["classes"] == [LABELS[c] for c in found["classes"][keep]]
        expected = np.clip(found["boxes"][keep] * 2, 0, 2 * SIZE).reshape(-1, 4)
        np.testing.assert_allclose(np.reshape(line["boxes"], (-1, 4)), expected, atol=0.02)
    assert sum(len(d["boxes"]) for d in on_files) > 0


def test_abort_keeps_the_detections_done(env, tmp_path):
    listed = tmp_path / "long.txt"
    listed.write_text(f"{env.files[0]}\n" * 20_000)
    job = inference_spec.create({"model": env.model.id, "list_file": str(listed), "batch_size": 16}, env.store)
    deadline = time.monotonic() + 60
    while not (job.state is JobState.RUNNING and job.status().get("progress", 0) > 0):
        assert job.state.is_active and time.monotonic() < deadline, job.log_tail()
        time.sleep(0.05)
    partial = inference_results.detections(job)  # while it writes: whole lines only
    assert partial and [d["row"] for d in partial] == list(range(len(partial)))
    job_actions.abort(job, env.store)
    assert job_actions.wait(job, timeout=60) is JobState.ABORTED
    results = inference_results.load(job)
    assert results["complete"] is False and 0 < results["count"] < 20_000 and len(lines(job)) == results["count"]


def test_a_detection_list_takes_no_labels(env, tmp_path):
    listed = tmp_path / "labelled.txt"
    listed.write_text(f"{env.files[0]} square\n")
    with pytest.raises(FormErrors) as error:
        inference_spec.create({"model": env.model.id, "list_file": str(listed)}, env.store)
    assert "line 1: 'square' is a label, and a detection model's list names images only" in error.value.errors[
        "list_file"]


def test_worst_misses_keep_the_most_missed_then_the_lowest_recall():
    misses = WorstMisses(2)
    box = np.array([[0, 0, 10, 10]], np.float32)
    truth = {"boxes": np.concatenate([box, box + 20, box + 40]), "classes": np.array([0, 0, 1])}
    found = {"boxes": np.concatenate([box, box + 40]), "scores": np.array([0.9, 0.2]), "classes": np.array([0, 1])}
    misses.add(0, "a", 0, found, truth)  # 2 of 3 missed: the 0.2 box is under MISS_SCORE
    misses.add(1, "b", 1, {**found, "scores": np.array([0.9, 0.9])}, truth)  # 1 of 3
    misses.add(2, "c", 2, found, {"boxes": box, "classes": np.array([0])})  # all found: not kept
    misses.add(3, "d", 3, {**found, "classes": np.array([1, 0])}, {"boxes": box, "classes": np.array([0])})  # 1 of 1
    assert [(m["image"], m["missed"], m["recall"]) for m in misses.sorted()] == [
        ("a", 2, pytest.approx(1 / 3)), ("d", 1, 0.0), ("b", 1, pytest.approx(2 / 3))]
    assert misses.sorted()[1]["false_positives"] == 1


# ------------------------------------------------------------------ the pages

def image_captions(at) -> list[str]:
    return [img.caption for element in at.get("image") for img in element.proto.imgs]


def image_urls(at) -> list[str]:
    return [img.url for element in at.get("image") for img in element.proto.imgs]


def test_page_with_ground_truth_shows_map_ap_and_the_worst_misses(env):
    results = inference_results.load(env.split)
    at = open_page("inference", job=env.split.id)
    assert_fine(at)
    shown = metrics(at)
    assert shown["Images"] == str(N_VAL) and shown["mAP@0.5"] == f"{results['mAP']:.3f}"
    assert shown["Objects"] == str(sum(results["objects"].values()))
    assert [s.value for s in at.subheader] == ["Average precision per class", "Worst misses"]
    table = at.dataframe[0].value
    assert table["Class"].tolist() == LABELS and table["AP"].tolist() == pytest.approx(
        [results["AP"][name] for name in LABELS])
    assert len(at.get("vega_lite_chart")) == 1  # the AP bars
    misses = results["worst_misses"]
    assert image_captions(at) == [f"{m['image']}: {m['missed']} of {m['objects']} missed" for m in misses]
    assert [b.label for b in at.download_button] == ["Download the detections (JSON lines)"]
    if misses and any(s >= 0.05 for m in misses for s in lines(env.split)[m["row"]]["scores"]):
        before = image_urls(at)
        at.slider(key="results.detection_threshold").set_value(0.05).run()
        assert_fine(at)
        assert image_urls(at) != before  # more predicted boxes drawn, without running the model


def test_page_without_ground_truth_shows_the_images_with_their_boxes(env):
    done(env.from_list)
    at = open_page("inference", job=env.from_list.id)
    assert_fine(at)
    assert "mAP@0.5" not in metrics(at) and metrics(at)["Images"] == str(N_FILES)
    assert any(c.value.startswith("No ground truth was given") for c in at.caption)
    assert [s.value for s in at.subheader] == ["Detections"] and not at.get("vega_lite_chart")
    found = lines(env.from_list)
    assert image_captions(at) == [f"val {i}.png: {sum(s >= MISS_SCORE for s in d['scores'])} box"
                                  + ("" if sum(s >= MISS_SCORE for s in d["scores"]) == 1 else "es")
                                  for i, d in enumerate(found)]
    assert [e.label for e in at.expander] == ["1 image(s) could not be read and were skipped"]


def test_model_page_offers_detection_splits(env):
    other = env.store.create("dataset", "labels", {})  # a classification dataset: not for this model
    other.set_state(JobState.DONE, progress=1.0)
    at = open_page("model", job=env.model.id)
    assert_fine(at)
    assert "Detect objects in many images" in [s.value for s in at.subheader]
    assert at.selectbox(key="classify_many.dataset").options == [f"squares ({env.dataset.id})"]
    before = set(j.id for j in env.store.list("inference"))
    at.button(key="classify_many.run_dataset").click().run()
    assert_fine(at)
    [job] = [j for j in env.store.list("inference") if j.id not in before]
    assert (job.params["source"], job.params["dataset"], job.params["split"]) == ("dataset", env.dataset.id, "val")
    job_actions.abort(job, env.store)


def test_the_results_views_import_no_tensorflow():
    code = ("import sys; sys.path.insert(0, 'app'); import detection_results_view, inference_results_view; "
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parent.parent,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr
