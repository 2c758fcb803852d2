"""Resume (DIGITS issue #24): an aborted model, or one whose worker was killed,
continues from its last epoch snapshot to the epochs asked for, and its
metrics have every epoch exactly once. Real workers throughout. (A killed worker, then resume:
test_reliability_kills.py.)"""
import json

import pytest

from test_jobs_integration import WAIT, create_dataset, run_cli, status, submit_model, wait_for

pytestmark = pytest.mark.timeout(300)
EPOCHS = 30  # long enough that the stop lands well before the end


def epochs_done(jobs_dir, model: str) -> list:
    lines = (jobs_dir / model / "progress.jsonl").read_text().splitlines()
    return [r["epoch"] for r in map(json.loads, lines) if "val/loss" in r]


def start_and_stop_after_two_epochs(jobs_dir, image_folder, stop) -> str:
    ds = create_dataset(image_folder, "--max-per-class", 12)
    model = submit_model(ds, EPOCHS, "resumable", "--seed", 3)["id"]
    # stop it as soon as epoch 2 is saved
    wait_for(lambda: (jobs_dir / model / "snapshots" / "epoch_2.keras").exists(), WAIT, "epoch 2's snapshot")
    stop(model)
    return model


def resume_and_check(jobs_dir, model: str) -> None:
    saved = sorted(int(p.stem.split("_")[1]) for p in (jobs_dir / model / "snapshots").glob("epoch_*.keras"))
    assert 2 <= saved[-1] < EPOCHS, saved
    code, out, err = run_cli("jobs", "resume", model, "--wait", "--json")
    assert code == 0, err + out
    summary = json.loads(out)
    assert summary["status"] == "Done" and summary["metrics"]["epoch"] == EPOCHS
    assert epochs_done(jobs_dir, model) == list(range(1, EPOCHS + 1))  # no gap, no repeat
    assert f"resuming from the snapshot of epoch {saved[-1]}" in (jobs_dir / model / "log.txt").read_text()
    states = [s for s, _ in status(jobs_dir, model)["history"]]
    assert states[-3:] == ["Waiting", "Running", "Done"]


def test_abort_then_resume(jobs_dir, image_folder):
    def abort(model):
        code, _, err = run_cli("jobs", "abort", model)
        assert code == 0, err
        assert status(jobs_dir, model)["state"] == "Aborted"
    model = start_and_stop_after_two_epochs(jobs_dir, image_folder, abort)
    resume_and_check(jobs_dir, model)


def test_a_done_model_cannot_resume(jobs_dir, image_folder):
    ds = create_dataset(image_folder, "--max-per-class", 6)
    code, out, err = run_cli("model", "train", "--dataset", ds, "--epochs", 1, "--batch-size", 8, "--name", "m",
                             "--wait", "--json")
    assert code == 0, err
    code, _, err = run_cli("jobs", "resume", json.loads(out)["id"])
    assert code == 2 and "cannot resume" in err


def test_the_model_page_offers_resume(jobs_dir, image_folder):
    from test_pages import assert_fine, open_page

    from digits_engine import job_actions
    from digits_engine.job_store import JobStore

    model = start_and_stop_after_two_epochs(jobs_dir, image_folder, lambda m: run_cli("jobs", "abort", m))
    at = open_page("model", job=model)
    assert_fine(at)
    button = at.button(key="resume")
    assert button.label.startswith("Resume from epoch ")
    button.click().run()
    assert_fine(at)
    job = JobStore(jobs_dir).get(model)
    assert job_actions.wait(job, timeout=WAIT).value == "Done"
    assert epochs_done(jobs_dir, model) == list(range(1, EPOCHS + 1))
