"""Bad input to the CLI: every wrong option gets a message that names it,
exit code 2, no traceback, and nothing is created."""
import json

import pytest

from digits_engine.job_store import JobStore
from test_jobs_integration import run_cli, run_digits

pytestmark = pytest.mark.timeout(300)


# ------------------------------------------------------------------ input errors

@pytest.fixture
def done_dataset(jobs_dir) -> str:
    """A dataset job record in state Done (enough for the model form's checks)."""
    from digits_engine.job_state import JobState

    job = JobStore().create("dataset", "ready", {})
    job.set_state(JobState.DONE)
    return job.id


MODEL_ERRORS = [
    (["--epochs", "0"], "--epochs", "at least 1"),
    (["--batch-size", "abc"], "--batch-size", "whole number"),
    (["--epochs", "2.5"], "--epochs", "whole number"),
    (["--epochs", "inf"], "--epochs", "whole number"),
    (["--lr", "nan"], "--lr", "finite"),
    (["--solver", "lbfgs"], "--solver", "sgd, nesterov, momentum"),
]


@pytest.mark.parametrize("extra,option,words", MODEL_ERRORS)
def test_invalid_model_options(jobs_dir, done_dataset, extra, option, words):
    code, out, err = run_cli("model", "train", "--dataset", done_dataset, "--name", "m", *extra)
    assert code == 2 and out == ""
    assert f"error: {option}:" in err and words in err
    assert "Traceback" not in err
    assert JobStore().list("model") == []


@pytest.mark.parametrize("dataset,words", [("20990101-000000-000-beef", "No dataset with id"), (None, "required")])
def test_invalid_model_dataset(jobs_dir, dataset, words):
    args = ["--dataset", dataset] if dataset else []
    code, out, err = run_cli("model", "train", "--name", "m", *args)
    assert code == 2 and "error: --dataset:" in err and words in err


def test_model_given_a_model_as_dataset(jobs_dir, done_dataset):
    from digits_engine.job_state import JobState

    model = JobStore().create("model", "m", {}, parents=[done_dataset])
    model.set_state(JobState.DONE)
    code, out, err = run_cli("model", "train", "--dataset", model.id, "--name", "m2")
    assert code == 2 and "is a model, not a dataset" in err


@pytest.mark.parametrize("extra,option,words", [
    (["--folder", "/no/such/folder"], "--folder", "does not exist"),
    (["--folder", "relative/path"], "--folder", "absolute"),
    (["--folder", "{images}", "--val-pct", "80", "--test-pct", "30"], "--test-pct", "over 100"),
    (["--folder", "{images}", "--resize-mode", "stretch"], "--resize-mode", "squash"),
    (["--folder", "{images}", "--width", "0"], "--width", "at least 1"),
    (["--folder", "{images}", "--encoding", "webp"], "--encoding", "png, jpg, none"),
])
def test_invalid_dataset_options(jobs_dir, image_folder, extra, option, words):
    extra = [a.replace("{images}", str(image_folder)) for a in extra]
    code, out, err = run_cli("dataset", "create", "--name", "d", *extra)
    assert code == 2 and f"error: {option}:" in err and words in err and "Traceback" not in err
    assert JobStore().list() == []


def test_several_bad_options_are_reported_together(jobs_dir, done_dataset):
    code, out, err = run_cli("model", "train", "--dataset", done_dataset, "--name", "",
                             "--epochs", "0", "--batch-size", "x", "--json")
    assert code == 2
    report = json.loads(out)
    assert set(report["fields"]) == {"name", "epochs", "batch_size"}
    assert "error: --batch-size:" in err and "error: --epochs:" in err and "error: --name:" in err


@pytest.mark.parametrize("args,option", [
    (["model", "train", "--dataset", "{ds}", "--name", "m", "--epochs", "0"], "--epochs"),
    (["model", "train", "--dataset", "{ds}", "--name", "m", "--batch-size", "abc"], "--batch-size"),
    (["dataset", "create", "--name", "d", "--folder", "/no/such/folder"], "--folder"),
])
def test_invalid_options_from_the_command_line(jobs_dir, done_dataset, args, option):
    proc = run_digits(*[a.replace("{ds}", done_dataset) for a in args], timeout=60)
    assert proc.returncode == 2
    assert option in proc.stderr and proc.stderr.startswith("error:")
    assert "Traceback" not in proc.stderr and proc.stdout == ""


@pytest.mark.parametrize("action", ["show", "abort", "delete", "clone"])
def test_unknown_job_id(jobs_dir, action):
    proc = run_digits("jobs", action, "20990101-000000-000-beef", timeout=60)
    assert proc.returncode == 2
    assert "No job with id '20990101-000000-000-beef'" in proc.stderr and "digits jobs list" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unknown_job_id_as_json(jobs_dir):
    code, out, err = run_cli("jobs", "show", "nope", "--json")
    assert code == 2 and "No job with id 'nope'" in json.loads(out)["error"]


def test_classify_needs_a_model(jobs_dir, done_dataset, image_folder):
    code, out, err = run_cli("classify", "nope", image_folder / "circle" / "000.png")
    assert code == 2 and "No job with id 'nope'" in err
    code, out, err = run_cli("classify", done_dataset, image_folder / "circle" / "000.png")
    assert code == 2 and err.startswith("error:") and "is a dataset; classify needs a model id" in err
