"""Sweeps, as DIGITS made them: comma lists of learning rates and batch sizes
give one model per combination, named after it and grouped."""
import json

import pytest

from digits_engine import model_spec
from digits_engine.fields import FormErrors
from digits_engine.job_store import JobStore
from test_jobs_integration import create_dataset, run_cli

pytestmark = pytest.mark.timeout(300)


def test_sweep_expands_every_combination():
    runs = model_spec.sweep({"name": "net", "lr": "0.01, 0.02", "batch_size": "8,16", "epochs": "1"})
    assert [(r["lr"], r["batch_size"]) for r in runs] == [("0.01", "8"), ("0.01", "16"), ("0.02", "8"), ("0.02", "16")]
    assert runs[0]["name"] == "net learning_rate:0.01 batch_size:8"
    assert {r["group"] for r in runs} == {"net"}
    assert model_spec.sweep({"name": "one", "lr": "0.01"}) == [{"name": "one", "lr": "0.01"}]


def test_a_2x2_sweep_makes_4_jobs_that_all_train(jobs_dir, image_folder):
    ds = create_dataset(image_folder, "--max-per-class", 6)
    code, out, err = run_cli("model", "train", "--dataset", ds, "--name", "sw", "--epochs", 1, "--lr", "0.01,0.02",
                             "--batch-size", "4,8", "--group", "lr study", "--wait", "--json")
    assert code == 0, err
    jobs = json.loads(out)
    assert len(jobs) == 4 and {j["status"] for j in jobs} == {"Done"}
    assert {(j["params"]["lr"], j["params"]["batch_size"]) for j in jobs} == {(0.01, 4), (0.01, 8), (0.02, 4), (0.02, 8)}
    assert {j["group"] for j in jobs} == {"lr study"}
    assert len(JobStore(jobs_dir).list("model")) == 4
    for job in jobs:  # each epoch's time and speed, and TensorBoard logs in the job folder
        assert job["metrics"]["time/epoch_seconds"] > 0 and job["metrics"]["time/images_per_second"] > 0
        assert any((jobs_dir / job["id"] / "tensorboard" / "train").iterdir())


def test_one_bad_value_submits_nothing(jobs_dir, image_folder):
    ds = create_dataset(image_folder, "--max-per-class", 6)
    with pytest.raises(FormErrors) as caught:
        model_spec.create_all({"dataset": ds, "name": "sw", "lr": "0.01,abc", "epochs": "1"})
    assert "must be a number" in caught.value.errors["lr"] and "sweep" in caught.value.errors["lr"]
    assert JobStore(jobs_dir).list("model") == []
