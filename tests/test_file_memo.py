"""Job files that cannot be read (broken jobs) and file_memo: job.json and status.json parsed again
only when they change, progress.jsonl followed from a byte offset."""
import json

import pytest

from digits_engine import job_summary, progress_log
from digits_engine.atomic_json import write_json
from digits_engine.job_state import JobState
from digits_engine.job_store import JobStore


@pytest.fixture
def store(jobs_dir):
    return JobStore()


def test_broken_jobs_are_listed_and_summarized(store, jobs_dir):
    from digits_engine.job_store import BrokenJob
    dataset = store.create("dataset", "d", {})
    bad_status = store.create("model", "m", {}, parents=[dataset.id])
    bad_spec = store.create("model", "m2", {}, parents=[dataset.id])
    bad_status.status_path.write_text('{"state": "Run')  # half-written
    bad_spec.spec_path.write_text("[1, 2]")  # JSON, but not a job's record
    (jobs_dir / "99999999-999999-999-half").mkdir()  # half-created: still ignored
    assert set(store.list()) == {bad_spec, bad_status, dataset}
    assert store.list("model") == []  # only the jobs that can be read
    assert store.children(dataset) == [bad_status]  # its parents can still be read
    assert dataset.problem() is None
    with pytest.raises(BrokenJob, match="status.json cannot be read"):
        bad_status.state
    with pytest.raises(BrokenJob, match="job.json holds a JSON list"):
        bad_spec.kind
    summary = job_summary.summarize(bad_status)
    assert (summary["broken"], summary["status"], summary["kind"], summary["name"]) == (True, "Error", "model", "m")
    assert summary["error"] == bad_status.problem() and "status.json cannot be read" in summary["error"]
    assert str(bad_status.dir) in summary["error"]
    summary = job_summary.summarize(bad_spec)
    assert (summary["kind"], summary["name"], summary["status"]) == ("unknown", bad_spec.id, "Error")
    json.dumps(summary)
    write_json(bad_status.status_path, {"state": "Done", "history": []})  # restored: no longer broken
    assert "broken" not in job_summary.summarize(bad_status) and bad_status.problem() is None


def test_summary_memo_follows_changes(store, monkeypatch):
    from digits_engine import file_memo
    monkeypatch.setattr(file_memo, "RACY_NS", 0)  # trust even a file written just now
    model = store.create("model", "m", {})
    for epoch in (1, 2):
        progress_log.append(model.progress_path, {"epoch": epoch, "val/accuracy": 0.5 + epoch / 10})
    assert job_summary.summarize(model)["best"] == 0.7
    model.set_state(JobState.RUNNING, progress=0.4)
    progress_log.append(model.progress_path, {"epoch": 3, "val/accuracy": 0.9, "val/loss": 0.1})
    summary = job_summary.summarize(model)
    assert (summary["status"], summary["progress"], summary["best"]) == ("Running", 0.4, 0.9)
    assert summary["metrics"] == {"epoch": 3, "val/accuracy": 0.9, "val/loss": 0.1}
    progress_log.keep_until(model.progress_path, 1)  # a resume replaces the file: read again from the start
    assert job_summary.summarize(model)["best"] == 0.6
    summary["metrics"]["epoch"] = 99  # a caller's copy: the memo keeps its own
    assert job_summary.summarize(model)["metrics"]["epoch"] == 1


def test_progress_digest_reads_only_new_lines(tmp_path):
    from digits_engine.file_memo import ProgressDigest
    path = tmp_path / "progress.jsonl"
    digest = ProgressDigest(path).update()
    assert digest.last == {} and digest.maxima == {}
    progress_log.append(path, {"epoch": 1, "train/loss": 0.5})
    with open(path, "a") as f:
        f.write('{"epoch": 2, "train/lo')  # torn: waits for its end
    assert digest.update().last == {"epoch": 1, "train/loss": 0.5}
    with open(path, "a") as f:
        f.write('ss": 0.25}\n')
    assert digest.update().last == {"epoch": 2, "train/loss": 0.25} and digest.maxima["train/loss"] == 0.5
    assert digest.reader.records == [] and digest.reader.offset == path.stat().st_size


def test_metrics_read_only_new_lines_and_start_over_after_a_resume(store):
    model = store.create("model", "m", {})
    assert model.metrics() == []
    for epoch in (1, 2, 3):
        progress_log.append(model.progress_path, {"epoch": epoch, "train/loss": 1 / epoch})
    assert [r["epoch"] for r in model.metrics()] == [1, 2, 3]
    with open(model.progress_path, "a") as f:
        f.write('{"epoch": 4, "train/lo')  # torn: not yet a record
    assert [r["epoch"] for r in model.metrics()] == [1, 2, 3]
    progress_log.keep_until(model.progress_path, 2)  # what a resume does: the file is replaced
    assert [r["epoch"] for r in model.metrics()] == [1, 2]
    progress_log.append(model.progress_path, {"epoch": 3, "train/loss": 0.3})
    assert [r["epoch"] for r in model.metrics()] == [1, 2, 3]
