"""Training options with real workers: the same seed gives the same curves,
the best snapshot is kept, and early stopping ends a model that stopped improving."""
import json

import pytest

from test_jobs_integration import create_dataset, run_cli

pytestmark = pytest.mark.timeout(300)


def train(dataset: str, *extra) -> dict:
    code, out, err = run_cli("model", "train", "--dataset", dataset, "--batch-size", 8, "--name", "m", *extra,
                             "--wait", "--json")
    assert code == 0, err + out
    return json.loads(out)


def curves(jobs_dir, model: dict) -> list[dict]:
    lines = (jobs_dir / model["id"] / "progress.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if not k.startswith("time/")} for line in lines]


def test_the_same_seed_gives_the_same_curves(jobs_dir, image_folder):
    ds = create_dataset(image_folder)
    first, second = (train(ds, "--epochs", 2, "--seed", 5) for _ in range(2))
    assert curves(jobs_dir, first) == curves(jobs_dir, second)
    other = train(ds, "--epochs", 2, "--seed", 6)
    assert curves(jobs_dir, other) != curves(jobs_dir, first)


def test_best_snapshot_and_early_stopping(jobs_dir, image_folder):
    ds = create_dataset(image_folder)  # three flat colours: validation accuracy reaches 1.0 and stays there
    model = train(ds, "--epochs", 40, "--seed", 1, "--lr", "0.05", "--watch-metric", "val/accuracy",
                  "--early-stop-patience", 2)
    assert model["status"] == "Done"
    ran = model["metrics"]["epoch"]
    assert ran < 40, "early stopping never stopped"
    best = json.loads((jobs_dir / model["id"] / "snapshots" / "best.json").read_text())
    assert best["metric"] == "val/accuracy" and best["value"] == model["best"] and best["epoch"] == ran - 2
    assert (jobs_dir / model["id"] / "snapshots" / "best.keras").exists()


def test_a_metric_the_task_does_not_report_is_refused(jobs_dir, image_folder):
    ds = create_dataset(image_folder)
    code, _, err = run_cli("model", "train", "--dataset", ds, "--epochs", 1, "--name", "m", "--watch-metric",
                           "val/mean_iou")
    assert code == 2 and "--watch-metric" in err and "does not report val/mean_iou" in err
