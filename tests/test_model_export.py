"""Shipping a model and bringing one in: `digits export` in every format (each
reloaded and compared with the source model), the archive's README example run
as written, a mismatching export refused, `digits import` of an archive or a
.keras file that then classifies and fine-tunes, bad files refused, and the
download widget and import page in AppTest.

One dataset and one model (a real worker, 1 epoch on 16x16 images) serve the
module; exports run in this process, the widget and page run the CLI in child
processes as the app does.
"""
import json
import re
import shutil
import subprocess
import sys
import tarfile
import warnings
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from conftest import make_images
from digits_engine import cli, export_check, model_export, snapshots
from digits_engine.atomic_json import read_json
from digits_engine.inference import classify, prepare
from digits_engine.job_state import JobState
from digits_engine.job_store import JobStore
from test_pages import engine_env

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- fixtures and helpers

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A jobs directory with a Done dataset and a Done 1-epoch model, and the images they came from."""
    root = tmp_path_factory.mktemp("jobs")
    images = make_images(tmp_path_factory.mktemp("images"))
    with pytest.MonkeyPatch.context() as mp:
        engine_env(mp, root)
        assert cli.main(["dataset", "create", "--folder", str(images), "--name", "d", "--wait"]) == 0
        dataset = JobStore(root).list("dataset")[0]
        assert cli.main(["model", "train", "--dataset", dataset.id, "--name", "shapes net", "--epochs", "1",
                         "--batch-size", "8", "--wait"]) == 0
    model = JobStore(root).list("model")[0]
    samples = [images / c / "000.png" for c in ("circle", "square", "triangle")]
    return SimpleNamespace(root=root, dataset=dataset, model=model, images=images, samples=samples)


@pytest.fixture
def jobs(trained, monkeypatch):
    engine_env(monkeypatch, trained.root)
    return trained


@pytest.fixture(scope="module")
def zip_export(trained, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "shapes.zip"
    with pytest.MonkeyPatch.context() as mp:
        engine_env(mp, trained.root)
        assert cli.main(["export", trained.model.id, "--format", "archive", "-o", str(out)]) == 0
    return out


def probabilities(results: list[dict], labels: list[str]) -> np.ndarray:
    """classify()'s results as an images x classes array in label order."""
    return np.array([[{p["label"]: p["probability"] for p in r["predictions"]}[label] for label in labels]
                     for r in results])


def source_probabilities(trained) -> np.ndarray:
    labels = read_json(trained.model.dir / "model.json")["labels"]
    return probabilities(classify(trained.model, trained.samples, top=len(labels)), labels)


def prepared(trained) -> np.ndarray:
    info = read_json(trained.model.dir / "model.json")
    return np.stack([prepare(p, info["image"], info.get("crop")) for p in trained.samples])


def unpacked(archive: Path, dest: Path) -> Path:
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(dest)
    else:
        with tarfile.open(archive) as tf:
            tf.extractall(dest, filter="data")
    return dest


def reloaded_outputs(kind: str, path: Path, x: np.ndarray) -> np.ndarray:
    """What an export predicts, loaded the way its users would load it (not through export_check)."""
    if kind == "keras":
        import keras
        return keras.models.load_model(path, compile=False).predict(x, verbose=0)
    if kind == "savedmodel":
        import tensorflow as tf
        serve = tf.saved_model.load(str(path)).signatures["serving_default"]
        return list(serve(tf.constant(x)).values())[0].numpy()
    import tensorflow as tf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        interpreter = tf.lite.Interpreter(model_path=str(path))
    interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], list(x.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def new_job_dirs(root: Path, before: set) -> set:
    return {d.name for d in root.iterdir()} - before


# --------------------------------------------------------------------------- export

@pytest.mark.parametrize("fmt, name, loads", [
    ("archive", "m.zip", [("keras", "model.keras"), ("savedmodel", "saved_model")]),
    ("archive", "m.tar.gz", [("keras", "model.keras"), ("savedmodel", "saved_model")]),
    ("savedmodel", "sm", [("savedmodel", ".")]),
    ("savedmodel", "sm.zip", [("savedmodel", ".")]),
    ("tflite", "m.tflite", [("tflite", None)]),
])
def test_every_format_round_trips(jobs, tmp_path, capsys, fmt, name, loads):
    out = tmp_path / "out" / name
    assert cli.main(["export", jobs.model.id, "--format", fmt, "-o", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["path"] == str(out) and report["epoch"] == 1 and report["samples"] == 8  # 6 dataset + 2 random
    assert all(diff <= export_check.TOLERANCE[what] for what, diff in report["checked"].items())
    folder = out if out.is_dir() else unpacked(out, tmp_path / "x") if name.endswith(("zip", "gz")) else None
    expected = source_probabilities(jobs)
    for kind, where in loads:
        got = export_check.softmax(reloaded_outputs(kind, folder / where if folder else out, prepared(jobs)))
        assert np.abs(got - expected).max() < (1e-3 if kind == "tflite" else 1e-4), kind
    assert [p.name for p in out.parent.iterdir()] == [name]  # no partial folder left


def test_archive_holds_labels_info_and_a_readme_that_runs(jobs, zip_export, tmp_path):
    folder = unpacked(zip_export, tmp_path / "archive")
    labels = read_json(jobs.model.dir / "model.json")["labels"]
    assert (folder / "labels.txt").read_text().splitlines() == labels
    info = json.loads((folder / "info.json").read_text())
    assert info["preprocessing"] | {"mean": None, "steps": None} == {
        "height": 32, "width": 32, "channels": 3, "resize_mode": "squash", "crop": None, "color": "RGB",
        "mean": None, "steps": None}
    assert info["preprocessing"]["mean"]["built_into_model"] is True
    assert info["preprocessing"]["mean"]["subtraction"] == "pixel"
    assert info["input"] == {"shape": [32, 32, 3], "dtype": "float32", "range": [0, 255], "layout": "NHWC"}
    assert info["output"]["kind"] == "logits" and "softmax" in info["output"]["probabilities"]
    assert info["source_model"] == {"id": jobs.model.id, "name": "shapes net"}
    assert (info["task"], info["network"], info["epoch"], info["box_decoding"]) == ("classification", "lenet", 1, None)
    code = re.search(r"```python\n(.*?)```", (folder / "README.md").read_text(), re.S).group(1)
    assert len(code.strip().splitlines()) == 12  # no crop: no crop lines
    for task, crop in (("classification", 24), ("segmentation", None)):  # the variants other models get
        compile(model_export.readme_code(task, crop), f"README of a {task} model", "exec")
    (folder / "classify.py").write_text(code)
    shutil.copy(jobs.samples[1], folder / "image.png")
    done = subprocess.run([sys.executable, "classify.py", "image.png"], cwd=folder, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    printed = [line.split(None, 1) for line in done.stdout.strip().splitlines()]
    top = classify(jobs.model, [jobs.samples[1]])[0]["predictions"][0]
    assert printed[0][1] == top["label"] and abs(float(printed[0][0]) - top["probability"]) < 1e-3
    assert len(printed) == len(labels)


@pytest.mark.parametrize("fmt, name, reload", [("archive", "m.zip", "predict_savedmodel"),
                                               ("tflite", "m.tflite", "predict_tflite")])
def test_a_mismatching_export_is_refused_and_leaves_nothing(jobs, tmp_path, monkeypatch, fmt, name, reload):
    real = getattr(export_check, reload)
    monkeypatch.setattr(export_check, reload, lambda path, x: real(path, x) + np.array([2.0, 0.0, 0.0], np.float32))
    out = tmp_path / "out" / name
    with pytest.raises(export_check.ExportMismatch) as caught:
        model_export.export(jobs.model, fmt, out)
    message = str(caught.value)
    assert "does not predict like the source model" in message and "tolerance" in message
    assert re.search(r"differ by up to 0\.\d+", message), message
    assert list(out.parent.iterdir()) == []


def test_export_refuses_bad_requests(jobs, tmp_path, capsys):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    cases = [(["export", jobs.model.id, "--format", "savedmodel", "-o", str(tmp_path / "full")], "already exists"),
             (["export", jobs.model.id, "--format", "tflite", "-o", str(tmp_path / "m.zip")], "model.tflite"),
             (["export", jobs.model.id, "-o", str(tmp_path / "m.rar")], "a .zip or .tar.gz file; name it like"),
             (["export", jobs.dataset.id, "-o", str(tmp_path / "m.zip")], "is a dataset"),
             (["export", jobs.model.id, "--epoch", "7", "-o", str(tmp_path / "m.zip")], "epochs with one: 1")]
    for argv, words in cases:
        assert cli.main(argv) == 2
        assert words in capsys.readouterr().err
    assert [p.name for p in tmp_path.rglob("*")] == ["full", "keep.txt"]


def test_export_without_a_suffix_makes_a_zip(jobs, tmp_path):
    assert model_export.export(jobs.model, "archive", tmp_path / "shapes") == tmp_path / "shapes.zip"
    assert zipfile.is_zipfile(tmp_path / "shapes.zip")


# --------------------------------------------------------------------------- import

def imported_job(capsys, argv) -> dict:
    assert cli.main(["import", *argv, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_import_an_archive_then_classify_gives_the_same_answers(jobs, zip_export, capsys):
    summary = imported_job(capsys, [str(zip_export)])
    job = JobStore(jobs.root).get(summary["id"])
    assert (summary["name"], summary["status"], summary["dataset"]) == ("shapes net (imported)", "Done", None)
    assert job.parents == [] and job.params["network"] == "imported" and job.params["epochs"] == 1
    assert snapshots.latest(job) == snapshots.path_for(job, 1)
    source_info, info = read_json(jobs.model.dir / "model.json"), read_json(job.dir / "model.json")
    assert info["image"] == {k: source_info["image"][k] for k in ("height", "width", "channels", "resize_mode")}
    assert info["labels"] == source_info["labels"] and info["imported"]["assumed"] == {}
    assert info["imported"]["source_model"]["id"] == jobs.model.id
    labels = info["labels"]
    got = probabilities(classify(job, jobs.samples, top=3), labels)
    assert np.abs(got - source_probabilities(jobs)).max() < 1e-4
    assert list(got.argmax(axis=1)) == [0, 1, 2]  # circle, square, triangle: the model learnt the colours
    assert cli.main(["classify", job.id, str(jobs.samples[2]), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["predictions"][0]["label"] == "triangle"


def test_import_a_keras_file_with_labels(jobs, tmp_path, capsys):
    labels = tmp_path / "classes.txt"
    labels.write_text("red\ngreen\n\nblue\n")
    keras_file = shutil.copy(snapshots.path_for(jobs.model, 1), tmp_path / "colours.keras")
    summary = imported_job(capsys, [str(keras_file), "--labels", str(labels), "--name", "colours"])
    assert summary["name"] == "colours" and "resize_mode: squash" in summary["note"]
    job = JobStore(jobs.root).get(summary["id"])
    info = read_json(job.dir / "model.json")
    assert info["image"] == {"height": 32, "width": 32, "channels": 3, "resize_mode": "squash"}
    assert info["labels"] == ["red", "green", "blue"] and "resize_mode" in info["imported"]["assumed"]
    assert "assumed resize_mode" in job.log_path.read_text()
    assert classify(job, jobs.samples[:1])[0]["predictions"][0]["label"] == "red"
    labels.write_text("red\ngreen\n")
    assert cli.main(["import", str(keras_file), "--labels", str(labels)]) == 2
    assert "2 classes" in capsys.readouterr().err
    assert cli.main(["import", str(keras_file)]) == 2
    assert "give a labels file (--labels FILE)" in capsys.readouterr().err


def test_fine_tune_an_imported_model(jobs, zip_export, capsys):
    imported = imported_job(capsys, [str(zip_export), "--name", "to tune"])["id"]
    assert cli.main(["model", "train", "--dataset", jobs.dataset.id, "--name", "tuned", "--network", "previous",
                     "--previous-model", imported, "--epochs", "1", "--batch-size", "8", "--wait", "--json"]) == 0
    tuned = JobStore(jobs.root).get(json.loads(capsys.readouterr().out)["id"])
    assert tuned.state is JobState.DONE
    started = read_json(tuned.dir / "model.json")["started_from"]
    assert (started["kind"], started["model"], started["epoch"]) == ("previous", imported, 1)
    assert snapshots.latest(tuned) is not None


def _zip(path: Path, files: dict) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def _file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case, words", [
    ("not an archive", "model.zip is not a .zip, .tar, .tar.gz or .tgz archive"),
    ("no model", "holds no model.keras (it holds: notes.txt)"),
    ("savedmodel", "holds a TensorFlow SavedModel but no model.keras"),
    ("escape", "points outside the archive"),
    ("not a model", "could not be loaded as a Keras 3 model"),
    ("wrong labels", "the labels name 2 classes"),
    ("text file", "neither an archive"),
])
def test_bad_archives_are_refused_with_a_reason(jobs, zip_export, tmp_path, capsys, case, words):
    with zipfile.ZipFile(zip_export) as exported:
        members = {n: exported.read(n) for n in ("model.keras", "info.json")}
    path = {
        "not an archive": lambda: _file(tmp_path / "model.zip", b"this is not a zip"),
        "no model": lambda: _zip(tmp_path / "a.zip", {"notes.txt": "hello"}),
        "savedmodel": lambda: _zip(tmp_path / "a.zip", {"saved_model.pb": b"x", "variables/v": b"x"}),
        "escape": lambda: _zip(tmp_path / "a.zip", {"../model.keras": b"x"}),
        "not a model": lambda: _zip(tmp_path / "a.zip", {"model.keras": b"junk", "labels.txt": "a\n"}),
        "wrong labels": lambda: _zip(tmp_path / "a.zip", {**members, "labels.txt": "a\nb\n"}),
        "text file": lambda: _file(tmp_path / "m.txt", b"x"),
    }[case]()
    before = {d.name for d in jobs.root.iterdir()}
    assert cli.main(["import", str(path)]) == 2
    assert words in capsys.readouterr().err
    assert new_job_dirs(jobs.root, before) == set()  # no job, no temporary folder


# --------------------------------------------------------------------------- pages

def _download_script(app_dir: str, job_id: str) -> None:
    import sys
    sys.path.insert(0, app_dir)
    import model_download
    from digits_engine.job_store import JobStore
    model_download.download_ui(JobStore().get(job_id))


def download_app(job_id: str) -> AppTest:
    return AppTest.from_function(_download_script, args=(str(ROOT / "app"), job_id), default_timeout=180).run()


def test_download_widget_makes_the_export_once(jobs):
    shutil.rmtree(jobs.model.dir / "exports", ignore_errors=True)
    at = download_app(jobs.model.id)
    assert not at.exception and not at.get("download_button")
    at.selectbox(key=f"download.{jobs.model.id}.format").set_value("TFLite (.tflite)").run()
    at.button(key=f"download.{jobs.model.id}.make").click().run()
    assert not at.exception and not at.error
    made = jobs.model.dir / "exports" / "shapes_net_epoch1_tflite.tflite"
    assert made.stat().st_size > 0
    assert "shapes_net_epoch1_tflite.tflite" in at.get("download_button")[0].proto.label
    again = download_app(jobs.model.id)
    again.selectbox(key=f"download.{jobs.model.id}.format").set_value("TFLite (.tflite)").run()
    assert again.get("download_button") and not again.button  # offered at once: the file is kept


def test_download_widget_shows_why_an_export_failed(jobs):
    store = JobStore(jobs.root)
    broken = store.create("model", "broken", {"network": "lenet", "epochs": 1})  # a snapshot, but no model.json
    snapshots.path_for(broken, 1).parent.mkdir()
    shutil.copy(snapshots.path_for(jobs.model, 1), snapshots.path_for(broken, 1))
    broken.set_state(JobState.DONE)
    at = download_app(broken.id)
    at.button(key=f"download.{broken.id}.make").click().run()
    assert not at.exception and not at.get("download_button")
    assert "has no model.json" in at.error[0].value
    assert not (broken.dir / "exports").exists() or not any((broken.dir / "exports").iterdir())
    store.remove(broken)


@pytest.fixture
def import_page(tmp_path):
    """The import page in an app of its own (app/main.py registers it once the lead adds it)."""
    (tmp_path / "app").mkdir()
    (tmp_path / "pages").symlink_to(ROOT / "pages")
    entry = tmp_path / "app" / "main.py"
    entry.write_text(f"import sys\nsys.path.insert(0, {str(ROOT / 'app')!r})\nimport streamlit as st\n"
                     "st.navigation([st.Page('../pages/import_model.py'), st.Page('../pages/model.py')]).run()\n")
    return lambda: AppTest.from_file(str(entry), default_timeout=180).run()


def test_import_page_imports_an_archive_and_links_to_it(jobs, zip_export, import_page, monkeypatch):
    from digits_engine import ownership
    monkeypatch.setattr(ownership, "_owner_source", lambda: "signed-in importer")  # as app/main.py sets it
    at = import_page()
    assert not at.exception and at.title[0].value == "Import a model"
    assert at.button(key="import_model.import").disabled and not at.success
    at.file_uploader(key="import_model.file").set_value(("shapes.zip", zip_export.read_bytes(), "application/zip"))
    at.run()
    at.text_input(key="import_model.name").set_value("from the page")
    at.button(key="import_model.import").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "from the page" in at.success[0].value
    job = next(j for j in JobStore(jobs.root).list("model") if j.name == "from the page")
    assert at.page_link[0].proto.page == "model" and job.state is JobState.DONE
    assert job.spec["owner"] == "signed-in importer"  # the import ran in a child process
    assert not [p for p in jobs.root.iterdir() if p.name.startswith(".upload-import-")]


def test_import_page_says_what_was_wrong(jobs, import_page):
    at = import_page()
    at.file_uploader(key="import_model.file").set_value(("weights.keras", b"junk", "application/octet-stream"))
    at.run()
    assert at.file_uploader(key="import_model.labels")  # a .keras file asks for its labels
    at.button(key="import_model.import").click().run()
    assert not at.exception and not at.success
    assert "give a labels file" in at.error[0].value
