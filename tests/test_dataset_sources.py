"""Dataset sources beyond one folder (issue 6): separate validation and test
folders, text-file lists and uploaded archives. The form's checks, real
workers submitted through the CLI, and the New dataset page's tabs with
AppTest (file_uploader included)."""
import io
import json
import re
import zipfile
from pathlib import Path

import pytest
from conftest import CLASSES, make_images
from test_jobs_integration import run_cli, wait_ended
from test_pages import assert_fine, error_under, open_page

from digits_engine import dataset_spec, image_records, job_actions, lmdb_store
from digits_engine.fields import FormErrors
from digits_engine.job_state import JobState
from digits_engine.job_store import JobStore
from digits_engine.scheduler import Scheduler

pytestmark = pytest.mark.timeout(300)
SIZE = ("--width", 16, "--height", 16, "--seed", 1)


def create(*args, name: str = "sources") -> tuple[dict, dict]:
    """`digits dataset create ... --wait`: (job.json, stats.json) of the Done dataset."""
    code, out, err = run_cli("dataset", "create", "--name", name, *SIZE, *args, "--wait", "--json")
    assert code == 0, err + out
    job_dir = JobStore().root / json.loads(out)["id"]
    return json.loads((job_dir / "job.json").read_text()), json.loads((job_dir / "stats.json").read_text())


def labels_in_order(job_dir: Path, split: str) -> list[int]:
    try:
        records = lmdb_store.read_range(job_dir / split, 0, lmdb_store.count(job_dir / split))
        return [int(image_records.read_record(r)[1]) for r in records]
    finally:
        lmdb_store.close_env(job_dir / split)


def zip_of(folder: Path, top: str, extra: dict | None = None) -> bytes:
    """A zip of folder/<class>/<images> under `top`/, plus `extra` name -> bytes entries."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for path in sorted(folder.rglob("*.png")):
            zf.write(path, f"{top}/{path.relative_to(folder).as_posix()}")
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return buffer.getvalue()


def job_dirs(root: Path) -> list[Path]:
    return [d for d in root.iterdir() if (d / "job.json").exists()]


# --------------------------------------------------------------------------- separate validation and test folders

def test_val_and_test_folders_go_whole_to_their_splits(jobs_dir, tmp_path):
    make_images(tmp_path / "train", per_class=6)
    make_images(tmp_path / "val", per_class=3, classes=(*CLASSES, "hexagon"))
    make_images(tmp_path / "test", per_class=4)
    spec, stats = create("--folder", tmp_path / "train", "--val-folder", tmp_path / "val", "--val-pct", 25,
                         "--test-folder", tmp_path / "test", "--test-max-per-class", 2, "--test-pct", 10)
    assert spec["params"]["val_pct"] == 0 and spec["params"]["test_pct"] == 0  # forced, as DIGITS
    assert stats["totals"] == {"train": 18, "val": 9, "test": 6}
    assert stats["counts"]["val"] == {name: 3 for name in CLASSES}
    [hexagon] = stats["skipped_classes"]
    assert hexagon["class"] == "hexagon" and "not a class of the training folder" in hexagon["reason"]


def test_val_folder_checks_are_form_errors(jobs_dir, image_folder, tmp_path):
    code, out, err = run_cli("dataset", "create", "--name", "x", "--folder", image_folder,
                             "--val-folder", tmp_path / "nope", "--val-min-per-class", 3, "--val-max-per-class", 2)
    assert code == 2
    assert f"--val-folder: The folder {tmp_path / 'nope'} does not exist" in err
    assert "--val-max-per-class: The maximum per class must be at least the minimum." in err
    assert job_dirs(jobs_dir) == []


# --------------------------------------------------------------------------- text-file lists

@pytest.fixture
def listed(tmp_path):
    """Images with spaces and unicode in their names, a labels file and lists (relative to a prefix)."""
    make_images(tmp_path / "img", per_class=4)
    for path in sorted((tmp_path / "img").rglob("*.png")):
        path.rename(path.with_name(f"pic é {path.name}"))
    files = {name: sorted((tmp_path / "img" / name).glob("*.png")) for name in CLASSES}
    (tmp_path / "labels.txt").write_text("\n".join(CLASSES) + "\n", encoding="utf-8")
    order = [(name, i) for i in range(3) for name in reversed(CLASSES)]  # not grouped by class
    train = [f"{files[name][i].relative_to(tmp_path / 'img')} {CLASSES.index(name)}" for name, i in order]
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "train.txt").write_text("# relative to the prefix\n" + "\n".join(train)
                                                  + "\nmissing/file.png 0\n", encoding="utf-8")
    (tmp_path / "lists" / "val.txt").write_text("".join(f"{files[name][3]}   {CLASSES.index(name)}\n"
                                                        for name in CLASSES), encoding="utf-8")
    return tmp_path


def test_textfile_dataset_keeps_the_list_order_when_asked(jobs_dir, listed):
    spec, stats = create("--train-list", listed / "lists" / "train.txt", "--labels-file", listed / "labels.txt",
                         "--val-list", listed / "lists" / "val.txt", "--train-folder-prefix", listed / "img",
                         "--no-textfile-shuffle")
    assert spec["params"]["source"] == "textfile" and spec["params"]["textfile_shuffle"] is False
    assert "val_pct" not in spec["params"]
    assert stats["labels"] == list(CLASSES)
    assert stats["totals"] == {"train": 9, "val": 3}
    assert [s["reason"] for s in stats["skipped_files"] if s["path"].endswith("missing/file.png")]
    expected = [CLASSES.index(name) for _ in range(3) for name in reversed(CLASSES)]
    assert labels_in_order(jobs_dir / spec["id"], "train") == expected


def test_textfile_bad_lines_are_reported_with_line_numbers_before_any_job(jobs_dir, listed):
    bad = listed / "lists" / "bad.txt"
    bad.write_text("ok.png 0\nnolabel.png\nneg.png -1\nfar.png 9\n", encoding="utf-8")
    code, out, err = run_cli("dataset", "create", "--name", "x", "--train-list", bad,
                             "--labels-file", listed / "labels.txt", "--test-list", listed / "nope.txt")
    assert code == 2
    assert "--test-list: The file" in err and "does not exist" in err and "line 2: no label" in err  # all at once
    assert job_dirs(jobs_dir) == []
    code, out, err = run_cli("dataset", "create", "--name", "x", "--train-list", bad, "--labels-file",
                             listed / "labels.txt")
    assert code == 2 and err.startswith(f"error: --train-list: {bad}: line 2: no label")
    assert "line 3: the label -1 is negative" in err and "line 4: label 9 has no name" in err
    assert job_dirs(jobs_dir) == []


def test_a_list_that_goes_bad_after_submit_fails_in_the_worker_with_its_line(jobs_dir, listed):
    labels, bad = listed / "labels.txt", listed / "lists" / "bad.txt"
    bad.write_text("a.png 0\nb.png five\n", encoding="utf-8")  # as if edited after the form's check
    params = {**dataset_spec.check({"name": "x", "train_list": str(listed / "lists" / "train.txt"),
                                    "labels_file": str(labels)}), "train_list": str(bad)}
    store, name = JobStore(), params.pop("name")
    params.pop("group")
    job = Scheduler(store).submit(store.create("dataset", name, params, task="classification"))
    assert wait_ended(jobs_dir, job.id) == "Error"
    error = json.loads((job.dir / "status.json").read_text())["error"]
    assert f"{bad}: line 2: the label 'five' is not a whole number" in error


# --------------------------------------------------------------------------- uploaded archives

def test_archive_dataset_from_the_cli_and_its_clone(jobs_dir, tmp_path):
    make_images(tmp_path / "src", per_class=5)
    archive = tmp_path / "shapes.zip"
    archive.write_bytes(zip_of(tmp_path / "src", "shapes", {"__MACOSX/shapes/circle/._000.png": b"mac",
                                                            "shapes/.DS_Store": b"mac", "shapes/empty/": b""}))
    spec, stats = create("--archive", archive, "--val-pct", 20)
    params = spec["params"]
    assert params["source"] == "upload" and params["archive"] == "shapes.zip"
    assert Path(params["folder"]).name == "shapes" and (jobs_dir / "uploads") in Path(params["folder"]).parents
    assert stats["totals"] == {"train": 12, "val": 3} and stats["skipped_files"] == []
    assert [c["class"] for c in stats["skipped_classes"]] == ["empty"]
    assert "no images" in stats["skipped_classes"][0]["reason"]
    again = dataset_spec.check({**params, "name": "clone"})  # a clone reads the same extracted folder
    assert again["folder"] == params["folder"] and again["archive"] == "shapes.zip"
    assert len(list((jobs_dir / "uploads").iterdir())) == 1


def test_refused_archive_from_the_cli_leaves_nothing(jobs_dir, tmp_path):
    archive = tmp_path / "evil.zip"
    archive.write_bytes(zip_of(tmp_path, "x", {"../../evil.png": b"x"}))
    code, out, err = run_cli("dataset", "create", "--name", "x", "--archive", archive)
    assert code == 2 and "--archive: The entry '../../evil.png' points outside" in err
    assert job_dirs(jobs_dir) == [] and list((jobs_dir / "uploads").iterdir()) == []


def test_upload_checks(jobs_dir, tmp_path, monkeypatch):
    def errors(archive):
        with pytest.raises(FormErrors) as caught:
            dataset_spec.check({"name": "x", "source": "upload", "archive": archive})
        return caught.value.errors["archive"]

    assert "Choose a .zip" in errors(None)
    assert "not a .zip" in errors(str(tmp_path / "photos.rar"))
    assert "no archive file" in errors(str(tmp_path / "gone.zip"))
    monkeypatch.setenv("DIGITS_UPLOAD_MAX_MB", "1")
    big = io.BytesIO(b"x")
    big.name, big.size = "big.zip", 2 * 2 ** 20
    assert "larger than the upload limit of 1 MB" in errors(big)


# --------------------------------------------------------------------------- the New dataset page

@pytest.fixture
def app_env(jobs_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("DIGITS_DEMO_DIR", str(tmp_path / "no-demo"))  # a blank form
    return jobs_dir


def open_tab(label: str):
    at = open_page("new_dataset")
    at.session_state["new_dataset.source"] = label
    return at.run()


def test_every_source_has_its_tab_and_the_folder_tab_has_separate_folders(app_env):
    at = open_page("new_dataset")
    assert_fine(at)
    assert [t.label for t in at.tabs] == ["Use folder", "Use text files", "Upload an archive", "Use S3"]
    assert "Separate validation and test folders" in [e.label for e in at.expander]
    for name in ("val_folder", "val_min_per_class", "val_max_per_class", "test_folder", "test_max_per_class"):
        assert at.text_input(key=f"new_dataset.{name}")


def test_textfile_tab_shows_each_files_error_under_it(app_env, listed):
    at = open_tab("Use text files")
    assert_fine(at)
    assert not [w for w in at.text_input if w.key == "new_dataset.val_pct"]  # the lists set the splits
    bad = listed / "lists" / "bad.txt"
    bad.write_text("a.png 0\nb.png -2\n", encoding="utf-8")
    at.text_input(key="new_dataset.name").set_value("lists")
    at.text_input(key="new_dataset.train_list").set_value(str(bad))
    at.text_input(key="new_dataset.labels_file").set_value(str(listed / "labels.txt"))
    at.text_input(key="new_dataset.val_list").set_value("relative.txt")
    at.button(key="FormSubmitter:new_dataset_textfile-Create").click().run()
    assert_fine(at)
    assert "line 2: the label -2 is negative" in error_under(at, "new_dataset.train_list")
    assert "relative" in error_under(at, "new_dataset.val_list")
    assert job_dirs(app_env) == []


def test_upload_tab_builds_a_dataset_from_an_archive(app_env, tmp_path):
    make_images(tmp_path / "src", per_class=4)
    at = open_tab("Upload an archive")
    assert_fine(at)
    [uploader] = at.file_uploader
    assert re.search(r"\(up to [\d,]+ MB\)", uploader.label)  # the limit is shown
    at.text_input(key="new_dataset.name").set_value("uploaded")
    at.button(key="FormSubmitter:new_dataset_upload-Create").click().run()
    assert_fine(at)
    assert "Choose a .zip" in error_under(at, "new_dataset.archive") and job_dirs(app_env) == []

    # a form's widgets take their values at the submit: set the file, then click (no run in between)
    at.file_uploader[0].set_value(("shapes.zip", zip_of(tmp_path / "src", "shapes"), "application/zip"))
    at.button(key="FormSubmitter:new_dataset_upload-Create").click().run(timeout=60)
    assert_fine(at)
    [job] = JobStore(app_env).list()
    assert job.params["source"] == "upload" and job.params["archive"] == "shapes.zip"
    assert job_actions.wait(job, timeout=120) is JobState.DONE


def test_upload_tab_shows_why_an_archive_is_refused(app_env, tmp_path):
    at = open_tab("Upload an archive")
    at.file_uploader[0].set_value(("evil.zip", zip_of(tmp_path, "x", {"/etc/evil.png": b"x"}),
                                          "application/zip"))
    at.text_input(key="new_dataset.name").set_value("evil")
    at.button(key="FormSubmitter:new_dataset_upload-Create").click().run()
    assert_fine(at)
    assert any("absolute path" in e.value for e in at.error)
    assert job_dirs(app_env) == [] and list((app_env / "uploads").iterdir()) == []


def test_an_upload_is_removed_with_the_last_dataset_that_reads_it(jobs_dir, tmp_path):
    make_images(tmp_path / "src", per_class=3)
    archive = tmp_path / "shapes.zip"
    archive.write_bytes(zip_of(tmp_path / "src", "shapes", {}))
    first, _ = create("--archive", archive, "--val-pct", 0)
    code, out, err = run_cli("jobs", "clone", first["id"], "--wait", "--json")
    assert code == 0, err
    second = json.loads(out)
    [upload] = (jobs_dir / "uploads").iterdir()
    assert run_cli("jobs", "delete", first["id"])[0] == 0
    assert upload.is_dir(), "the clone still reads it"
    assert run_cli("jobs", "delete", second["id"])[0] == 0
    assert not upload.exists()
