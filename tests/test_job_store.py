"""The jobs directory and the small modules around it: status files, progress
logs, summaries, learning-rate policies, form fields and the two job forms.
No workers here (tests/test_jobs_integration.py runs those)."""
import json
import time
from datetime import datetime, timedelta, timezone

import pytest

from digits_engine import dataset_spec, fields, job_summary, lr_policies, model_spec, progress_log
from digits_engine.atomic_json import read_json, write_json
from digits_engine.errors import JobNotFound
from digits_engine.fields import Field, FormErrors
from digits_engine.job_state import JobState
from digits_engine.job_store import JobStore


@pytest.fixture
def store(jobs_dir):
    return JobStore()


# ------------------------------------------------------------------ job store

def test_create_and_get(store, jobs_dir):
    job = store.create("dataset", "digits", {"folder": "/data"}, group="g1")
    assert store.root == jobs_dir and job.dir.parent == jobs_dir
    again = store.get(job.id)
    assert again == job
    spec = again.spec
    assert (spec["kind"], spec["name"], spec["group"], spec["params"], spec["parents"]) == \
        ("dataset", "digits", "g1", {"folder": "/data"}, [])
    assert spec["id"] == job.id and spec["owner"] and spec["created"]
    status = job.status()
    assert status["state"] == "Initialized" and status["progress"] == 0.0 and status["pid"] is None
    assert [s for s, _ in status["history"]] == ["Initialized"]


def test_create_rejects_unknown_kind(store):
    with pytest.raises(ValueError, match="kind"):
        store.create("notebook", "x", {})


def test_list_is_newest_first_and_filters_by_kind(store):
    created = []
    for i, kind in enumerate(["dataset", "model", "dataset", "model", "dataset"]):
        created.append(store.create(kind, f"job{i}", {}))
        time.sleep(0.002)  # ids sort to the millisecond
    assert store.list() == created[::-1]
    assert [j.name for j in store.list("dataset")] == ["job4", "job2", "job0"]
    assert [j.name for j in store.list("model")] == ["job3", "job1"]


def test_list_ignores_half_created_and_foreign_folders(store, jobs_dir):
    job = store.create("dataset", "real", {})
    (jobs_dir / "99999999-999999-999-zzzz").mkdir()  # no job.json yet
    (jobs_dir / "notes.txt").write_text("hello")
    assert store.list() == [job]


def test_children(store):
    dataset = store.create("dataset", "d", {})
    other = store.create("dataset", "other", {})
    m1 = store.create("model", "m1", {}, parents=[dataset.id])
    m2 = store.create("model", "m2", {}, parents=[dataset.id])
    store.create("model", "m3", {}, parents=[other.id])
    assert set(store.children(dataset)) == {m1, m2}
    assert [j.name for j in store.children(other)] == ["m3"]
    assert store.children(m1) == []


def test_remove(store):
    job = store.create("dataset", "gone", {})
    (job.dir / "train").mkdir()
    (job.dir / "train" / "data.mdb").write_bytes(b"x" * 100)
    store.remove(job)
    assert not job.dir.exists()
    assert not store.exists(job.id)
    with pytest.raises(JobNotFound):
        store.get(job.id)


@pytest.mark.parametrize("bad_id", ["20990101-000000-000-beef", "", "  ", "../etc", "a/b"])
def test_job_not_found_message(store, bad_id):
    with pytest.raises(JobNotFound) as info:
        store.get(bad_id)
    message = str(info.value)
    assert repr(bad_id.strip()) in message
    assert "digits jobs list" in message


def test_status_history_appends_and_done_forces_progress(store):
    job = store.create("model", "m", {})
    job.update_status(progress=0.4, pid=1234)
    job.set_state(JobState.WAITING)
    job.set_state(JobState.RUNNING, gpu="0")
    job.update_status(progress=0.7)
    status = job.set_state(JobState.DONE)
    assert status == job.status()
    assert [s for s, _ in status["history"]] == ["Initialized", "Waiting", "Running", "Done"]
    times = [datetime.fromisoformat(t) for _, t in status["history"]]
    assert times == sorted(times)
    assert status["progress"] == 1.0 and status["pid"] == 1234 and status["gpu"] == "0"
    assert job.state is JobState.DONE and not job.state.is_active


def test_error_state_keeps_the_message(store):
    job = store.create("model", "m", {})
    job.set_state(JobState.RUNNING)
    job.update_status(progress=0.3)
    job.set_state(JobState.ERROR, error="out of memory")
    status = job.status()
    assert status["state"] == "Error" and status["error"] == "out of memory"
    assert status["progress"] == 0.3  # only Done forces 1.0


def test_atomic_writes_leave_no_temp_files(store):
    job = store.create("dataset", "d", {})
    for i in range(30):
        job.update_status(progress=i / 30)
    job.set_state(JobState.DONE)
    assert sorted(p.name for p in job.dir.iterdir()) == ["job.json", "status.json"]


def test_failed_write_keeps_the_old_file_and_no_temp(tmp_path):
    path = tmp_path / "status.json"
    write_json(path, {"state": "Running"})
    circular: dict = {}
    circular["self"] = circular
    with pytest.raises(ValueError):
        write_json(path, {"state": "Done", "bad": circular})
    assert read_json(path) == {"state": "Running"}
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]


def test_metrics_and_log_tail(store):
    job = store.create("model", "m", {})
    assert job.metrics() == [] and job.log_tail() == ""
    progress_log.append(job.progress_path, {"epoch": 0.5, "train/loss": 1.0})
    progress_log.append(job.progress_path, {"epoch": 1, "val/accuracy": 0.5})
    assert job.metrics() == [{"epoch": 0.5, "train/loss": 1.0}, {"epoch": 1, "val/accuracy": 0.5}]
    job.log_path.write_text("".join(f"line {i}\n" for i in range(100)))
    assert job.log_tail(3) == "line 97\nline 98\nline 99"


# ------------------------------------------------------------------ progress log

def test_progress_reader_reads_only_new_lines(tmp_path):
    path = tmp_path / "progress.jsonl"
    reader = progress_log.ProgressReader(path)
    assert reader.read_new() == []  # no file yet
    progress_log.append(path, {"epoch": 0.25, "train/loss": 2.0})
    progress_log.append(path, {"epoch": 0.5, "train/loss": 1.5})
    assert [r["epoch"] for r in reader.read_new()] == [0.25, 0.5]
    assert reader.read_new() == []
    progress_log.append(path, {"epoch": 0.75, "train/loss": 1.2})
    assert reader.read_new() == [{"epoch": 0.75, "train/loss": 1.2}]
    assert len(reader.records) == 3


def test_progress_reader_skips_a_torn_last_line_until_completed(tmp_path):
    path = tmp_path / "progress.jsonl"
    progress_log.append(path, {"epoch": 1, "train/loss": 0.9})
    with open(path, "a") as f:
        f.write('{"epoch": 2, "train/lo')  # a writer caught mid-append
    reader = progress_log.ProgressReader(path)
    assert reader.read_new() == [{"epoch": 1, "train/loss": 0.9}]
    assert reader.read_new() == []  # still torn: nothing, no error
    with open(path, "a") as f:
        f.write('ss": 0.8}\n')
    assert reader.read_new() == [{"epoch": 2, "train/loss": 0.8}]
    assert reader.read_all() == [{"epoch": 1, "train/loss": 0.9}, {"epoch": 2, "train/loss": 0.8}]


def test_progress_reader_skips_garbage_lines(tmp_path):
    path = tmp_path / "progress.jsonl"
    path.write_text('{"epoch": 1}\nnot json\n[1, 2]\n\n{"epoch": 2}\n')
    assert progress_log.ProgressReader(path).read_all() == [{"epoch": 1}, {"epoch": 2}]


def test_append_refuses_nan(tmp_path):
    with pytest.raises(ValueError):
        progress_log.append(tmp_path / "p.jsonl", {"loss": float("nan")})


def test_last_values():
    records = [{"epoch": 0.5, "train/loss": 2.0, "lr": 0.1},
               {"epoch": 1, "train/loss": 1.0, "val/accuracy": 0.6, "lr": 0.1},
               {"epoch": 1.5, "train/loss": 0.8, "lr": 0.01}]
    assert progress_log.last_values(records) == {"epoch": 1.5, "train/loss": 0.8, "val/accuracy": 0.6, "lr": 0.01}
    assert progress_log.last_values([]) == {}


# ------------------------------------------------------------------ summaries

def _running_status(started: datetime, progress: float, **extra) -> dict:
    return {"state": "Running", "progress": progress,
            "history": [["Initialized", (started - timedelta(seconds=5)).isoformat()],
                        ["Waiting", (started - timedelta(seconds=4)).isoformat()],
                        ["Running", started.isoformat()]], **extra}


def test_eta_seconds():
    start = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    now = start + timedelta(seconds=10)
    assert job_summary.eta_seconds(_running_status(start, 0.25), now) == pytest.approx(30.0)
    assert job_summary.eta_seconds(_running_status(start, 0.5), now) == pytest.approx(10.0)
    assert job_summary.eta_seconds(_running_status(start, 1.0), now) == pytest.approx(0.0)
    assert job_summary.eta_seconds(_running_status(start, 0.005), now) is None  # too early to tell
    done = _running_status(start, 1.0, state="Done")
    done["history"].append(["Done", now.isoformat()])
    assert job_summary.eta_seconds(done, now) is None
    assert job_summary.eta_seconds({"state": "Waiting", "progress": 0.0, "history": []}, now) is None


def test_eta_counts_from_the_last_start():
    first = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    status = _running_status(first, 0.5)
    restart = first + timedelta(hours=1)
    status["history"] += [["Aborted", (first + timedelta(minutes=5)).isoformat()], ["Running", restart.isoformat()]]
    assert job_summary.run_times(status) == (restart.isoformat(), None)
    assert job_summary.eta_seconds(status, restart + timedelta(seconds=20)) == pytest.approx(20.0)


def test_summarize_model(store):
    dataset = store.create("dataset", "d", {})
    model = store.create("model", "m", {"epochs": 2}, parents=[dataset.id], group="exp")
    progress_log.append(model.progress_path, {"epoch": 1, "val/accuracy": 0.7, "lr": 0.01})
    progress_log.append(model.progress_path, {"epoch": 2, "val/accuracy": 0.6, "lr": 0.001})
    model.set_state(JobState.RUNNING)
    model.set_state(JobState.DONE)
    summary = job_summary.summarize(model)
    assert summary["status"] == "Done" and summary["progress"] == 1.0 and summary["group"] == "exp"
    assert summary["dataset"] == dataset.id and summary["params"] == {"epochs": 2}
    assert summary["metrics"] == {"epoch": 2, "val/accuracy": 0.6, "lr": 0.001}
    assert summary["best"] == 0.7
    assert summary["started"] and summary["ended"] and summary["eta_seconds"] is None
    assert "params" not in job_summary.summarize(model, with_params=False)
    json.dumps(summary)  # what --json prints


# ------------------------------------------------------------------ learning rate policies

def test_fixed_policy():
    for pct in (0, 10, 50, 99.9, 100):
        assert lr_policies.fixed(0.01, pct) == 0.01


@pytest.mark.parametrize("pct,expected", [(0, 0.1), (24.9, 0.1), (25, 0.05), (49.99, 0.05), (50, 0.025),
                                          (75, 0.0125), (99, 0.0125), (100, 0.00625)])
def test_step_policy_is_digits_formula(pct, expected):
    # DIGITS: lr * gamma ^ floor(p / step_pct)
    assert lr_policies.step(0.1, pct, step_pct=25, gamma=0.5) == pytest.approx(expected)


def test_step_policy_defaults_and_job_params():
    assert lr_policies.step(1.0, 32.9) == pytest.approx(1.0)
    assert lr_policies.step(1.0, 33.0) == pytest.approx(0.1)
    assert lr_policies.step(1.0, 66.0) == pytest.approx(0.01)
    params = {"lr": 0.2, "lr_policy": "step", "lr_step_pct": 10.0, "lr_gamma": 0.5}
    assert lr_policies.learning_rate(params, 35) == pytest.approx(0.2 * 0.5 ** 3)
    assert lr_policies.learning_rate({"lr": 0.2}, 90) == 0.2  # fixed by default


def test_unknown_policy_names_the_valid_ones():
    with pytest.raises(ValueError, match="fixed, step"):
        lr_policies.get("cosine")


# ------------------------------------------------------------------ form fields

FORM = [
    Field("name", "Name", required=True),
    Field("epochs", "Epochs", kind="int", default=10, minimum=1, maximum=100),
    Field("lr", "Learning rate", kind="float", default=0.01, minimum=0, maximum=1),
    Field("solver", "Solver", kind="choice", default="sgd", choices=("sgd", "adam")),
    Field("channels", "Channels", kind="choice", default=3, choices=(3, 1)),
    Field("shuffle", "Shuffle", kind="bool", default=True),
]


def test_validate_fills_defaults_and_types():
    assert fields.validate(FORM, {"name": " run 1 "}) == {
        "name": "run 1", "epochs": 10, "lr": 0.01, "solver": "sgd", "channels": 3, "shuffle": True}
    values = fields.validate(FORM, {"name": "x", "epochs": "5", "lr": "0.5", "solver": "ADAM", "channels": "1",
                                    "shuffle": "no"})
    assert values == {"name": "x", "epochs": 5, "lr": 0.5, "solver": "adam", "channels": 1, "shuffle": False}
    assert isinstance(values["epochs"], int)


@pytest.mark.parametrize("raw,expected", [("5", 5), ("5.0", 5), (" 7 ", 7), (5, 5), (5.0, 5), ("1e1", 10)])
def test_int_parsing_accepts_whole_numbers(raw, expected):
    value = fields.validate(FORM, {"name": "x", "epochs": raw})["epochs"]
    assert value == expected and isinstance(value, int)


@pytest.mark.parametrize("raw", ["5.5", "abc", "inf", "nan", "-inf", "1,000"])
def test_int_parsing_errors(raw):
    with pytest.raises(FormErrors) as info:
        fields.validate(FORM, {"name": "x", "epochs": raw})
    assert list(info.value.errors) == ["epochs"]
    assert "whole number" in info.value.errors["epochs"] and repr(raw) in info.value.errors["epochs"]


@pytest.mark.parametrize("raw", ["fast", "nan", "inf"])
def test_float_parsing_errors(raw):
    with pytest.raises(FormErrors) as info:
        fields.validate(FORM, {"name": "x", "lr": raw})
    assert list(info.value.errors) == ["lr"] and repr(raw) in info.value.errors["lr"]


@pytest.mark.parametrize("key,raw,word", [("epochs", "0", "at least 1"), ("epochs", "101", "at most 100"),
                                          ("lr", "-0.1", "at least 0"), ("lr", "2", "at most 1")])
def test_range(key, raw, word):
    with pytest.raises(FormErrors) as info:
        fields.validate(FORM, {"name": "x", key: raw})
    assert word in info.value.errors[key]


def test_choices_are_case_insensitive_and_listed_on_error():
    assert fields.validate(FORM, {"name": "x", "solver": "Adam"})["solver"] == "adam"
    with pytest.raises(FormErrors) as info:
        fields.validate(FORM, {"name": "x", "solver": "rmsprop"})
    assert "sgd, adam" in info.value.errors["solver"] and "'rmsprop'" in info.value.errors["solver"]


def test_required():
    for blank in (None, "", "   "):
        with pytest.raises(FormErrors) as info:
            fields.validate(FORM, {"name": blank})
        assert info.value.errors == {"name": "Name is required."}


def test_form_errors_carry_every_bad_field_at_once():
    with pytest.raises(FormErrors) as info:
        fields.validate(FORM, {"name": "", "epochs": "abc", "lr": "5", "solver": "x", "channels": "2"})
    assert set(info.value.errors) == {"name", "epochs", "lr", "solver", "channels"}
    message = str(info.value)
    for name in info.value.errors:
        assert f"{name}:" in message


# ------------------------------------------------------------------ dataset form

def _dataset_raw(folder, **extra) -> dict:
    return {"name": "d", "folder": str(folder), **extra}


def test_dataset_check_accepts_a_folder(image_folder, jobs_dir):
    params = dataset_spec.check(_dataset_raw(image_folder, val_pct="10", test_pct="5", channels="1",
                                             encoding="JPG", max_per_class="20"))
    assert params["folder"] == str(image_folder.resolve())
    assert (params["val_pct"], params["test_pct"], params["channels"], params["encoding"]) == (10, 5, 1, "jpg")
    assert (params["width"], params["height"], params["resize_mode"], params["min_per_class"]) == (32, 32, "squash", 2)


def test_dataset_check_missing_folder(tmp_path, jobs_dir):
    with pytest.raises(FormErrors) as info:
        dataset_spec.check(_dataset_raw(tmp_path / "nope"))
    assert "does not exist" in info.value.errors["folder"] and str(tmp_path / "nope") in info.value.errors["folder"]


def test_dataset_check_relative_folder(jobs_dir):
    with pytest.raises(FormErrors) as info:
        dataset_spec.check(_dataset_raw("images/cats"))
    assert "absolute" in info.value.errors["folder"]


def test_dataset_check_file_not_folder(tmp_path, jobs_dir):
    path = tmp_path / "list.txt"
    path.write_text("a.png 0\n")
    with pytest.raises(FormErrors) as info:
        dataset_spec.check(_dataset_raw(path))
    assert "not a folder" in info.value.errors["folder"]


def test_dataset_check_val_plus_test_over_100(image_folder, jobs_dir):
    with pytest.raises(FormErrors) as info:
        dataset_spec.check(_dataset_raw(image_folder, val_pct="60", test_pct="50"))
    assert "over 100" in info.value.errors["test_pct"]


def test_dataset_check_max_below_min(image_folder, jobs_dir):
    with pytest.raises(FormErrors) as info:
        dataset_spec.check(_dataset_raw(image_folder, min_per_class="5", max_per_class="3"))
    assert list(info.value.errors) == ["max_per_class"]


def test_dataset_check_reports_folder_and_split_together(tmp_path, jobs_dir):
    with pytest.raises(FormErrors) as info:
        dataset_spec.check(_dataset_raw(tmp_path / "nope", val_pct="70", test_pct="40"))
    assert set(info.value.errors) == {"folder", "test_pct"}


def test_dataset_check_data_roots(tmp_path, image_folder, jobs_dir, monkeypatch):
    allowed = tmp_path / "allowed"
    inside = allowed / "set1"
    inside.mkdir(parents=True)
    monkeypatch.setenv("DIGITS_DATA_ROOTS", f"{tmp_path / 'elsewhere'}:{allowed}")
    assert dataset_spec.check(_dataset_raw(inside))["folder"] == str(inside)
    assert dataset_spec.check(_dataset_raw(allowed))["folder"] == str(allowed)
    with pytest.raises(FormErrors) as info:
        dataset_spec.check(_dataset_raw(image_folder))
    assert "DIGITS_DATA_ROOTS" in info.value.errors["folder"]
    # a link inside the allowed folder does not open the rest of the disk
    (allowed / "escape").symlink_to(image_folder)
    with pytest.raises(FormErrors) as info:
        dataset_spec.check(_dataset_raw(allowed / "escape"))
    assert "DIGITS_DATA_ROOTS" in info.value.errors["folder"]
    # a sibling whose name merely starts with the root's is outside too
    sibling = tmp_path / "allowed2"
    sibling.mkdir()
    with pytest.raises(FormErrors):
        dataset_spec.check(_dataset_raw(sibling))


# ------------------------------------------------------------------ model form

def test_model_check(store):
    dataset = store.create("dataset", "d", {})
    params = model_spec.check({"dataset": dataset.id, "name": "m", "epochs": "3", "network": "AlexNet"}, store)
    assert params["dataset"] == dataset.id and params["epochs"] == 3 and params["network"] == "alexnet"
    assert params["batch_size"] == 32 and params["solver"] == "sgd" and params["lr_policy"] == "fixed"


def test_model_check_unknown_dataset(store):
    with pytest.raises(FormErrors) as info:
        model_spec.check({"dataset": "20990101-000000-000-beef", "name": "m"}, store)
    assert info.value.errors == {"dataset": "No dataset with id '20990101-000000-000-beef'."}


def test_model_check_model_given_as_dataset(store):
    dataset = store.create("dataset", "d", {})
    model = store.create("model", "m", {}, parents=[dataset.id])
    with pytest.raises(FormErrors) as info:
        model_spec.check({"dataset": model.id, "name": "m2"}, store)
    assert "is a model, not a dataset" in info.value.errors["dataset"]


def test_model_check_failed_dataset(store):
    dataset = store.create("dataset", "broken", {})
    dataset.set_state(JobState.ERROR, error="no images")
    with pytest.raises(FormErrors) as info:
        model_spec.check({"dataset": dataset.id, "name": "m"}, store)
    assert "Error" in info.value.errors["dataset"] and "'broken'" in info.value.errors["dataset"]
