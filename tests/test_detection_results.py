"""A detection model's results for one image and its exports: `digits classify`
(JSON and text) finds boxes in the pixels of the image given (here twice the
dataset's size, so the pad mode's scale is undone), --details is refused, the
model page's panel draws the boxes; export in every format compares the raw
output maps, the archive's README example runs without DIGITS, and an imported
archive detects the same boxes (and is not fine-tuned).

One tiny dataset (coloured squares, 48x48, pad) and one CenterNet trained by a
real worker serve the module.
"""
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from digits_engine import cli, export_check
from digits_engine.atomic_json import read_json
from digits_engine.detection_decode import DECODING, decode
from digits_engine.inference import MIN_SCORE, detect, load_model, prepare_detection
from digits_engine.job_store import JobStore
from test_detection_training import COLOURS, SIZE, detection_dataset
from test_jobs_integration import run_cli
from test_pages import chart_titles, engine_env

pytestmark = pytest.mark.timeout(300)
MAIN = str(Path(__file__).resolve().parent.parent / "app" / "main.py")
EPOCHS = 10
TRUE_BOX = np.array([20, 28, 52, 60], np.float64)  # the red square of the test image, in its own pixels


def iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    area = lambda box: (box[2] - box[0]) * (box[3] - box[1])  # noqa: E731
    return w * h / (area(a) + area(b) - w * h)


def red_square_image(path: Path) -> Path:
    """A 48x48 scene with one red square, enlarged to 96x96: the model sees it at 48x48 (pad shrinks it)."""
    rng = np.random.default_rng(5)
    pixels = rng.integers(90, 140, (SIZE, SIZE, 3)).astype(np.uint8)
    left, top, right, bottom = (TRUE_BOX / 2).astype(int)
    pixels[top:bottom, left:right] = COLOURS[0]
    Image.fromarray(np.repeat(np.repeat(pixels, 2, axis=0), 2, axis=1)).save(path)
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A jobs directory with a Done pad-mode detection dataset and a Done CenterNet, and a 96x96 test image."""
    root = tmp_path_factory.mktemp("jobs")
    with pytest.MonkeyPatch.context() as mp:
        engine_env(mp, root)
        dataset = detection_dataset(root, n_train=40)
        stats = read_json(root / dataset / "stats.json")
        stats["image"]["resize_mode"] = "pad"
        (root / dataset / "stats.json").write_text(json.dumps(stats))
        assert cli.main(["model", "train", "--dataset", dataset, "--name", "boxes", "--epochs", str(EPOCHS),
                         "--batch-size", "8", "--solver", "adam", "--lr", "0.003", "--seed", "1",
                         "--aug-flip", "horizontal", "--wait"]) == 0
    model = JobStore(root).list("model")[0]
    return SimpleNamespace(root=root, model=model, image=red_square_image(tmp_path_factory.mktemp("in") / "red.png"))


@pytest.fixture
def jobs(trained, monkeypatch):
    engine_env(monkeypatch, trained.root)
    return trained


def test_one_image_gives_boxes_in_its_own_pixels(jobs):
    info = read_json(jobs.model.dir / "model.json")
    assert info["task"] == "detection" and info["image"]["resize_mode"] == "pad"
    (result,) = detect(jobs.model, [jobs.image])
    found = result["detections"]
    assert result["image"] == str(jobs.image) and 0 < len(found) <= DECODING["max_detections"]
    scores = [d["score"] for d in found]
    assert scores == sorted(scores, reverse=True) and min(scores) >= MIN_SCORE
    assert all(0 <= d["box"][0] <= d["box"][2] <= 96 and 0 <= d["box"][1] <= d["box"][3] <= 96 for d in found)
    assert found[0]["label"] == "red" and iou(found[0]["box"], TRUE_BOX) > 0.5, found[:3]  # the model learnt
    # the mapping by hand: the network's boxes at 48x48, doubled
    pixels, where, size = prepare_detection(jobs.image, info["image"], "pad")
    assert size == (96, 96) and (where.scale_x, where.scale_y) == (0.5, 0.5)
    raw = decode(load_model(jobs.model).predict(pixels[None], verbose=0), score_threshold=MIN_SCORE)[0]
    np.testing.assert_allclose([d["box"] for d in found], raw["boxes"] * 2, atol=0.01)
    assert [d["label"] for d in found] == [info["labels"][k] for k in raw["classes"]]


def test_the_cli_lists_the_boxes_and_refuses_details(jobs, tmp_path):
    code, out, err = run_cli("classify", jobs.model.id, jobs.image, "--json")
    assert code == 0, err
    assert json.loads(out) == detect(jobs.model, [jobs.image])[0]
    code, out, err = run_cli("classify", jobs.model.id, jobs.image, tmp_path / "missing.png")
    assert code == 1  # one image could not be read
    lines = out.splitlines()
    assert lines[0] == str(jobs.image) and re.fullmatch(r"\s+\d+\.\d\d%  red  box \([\d.]+, [\d.]+, [\d.]+, [\d.]+\)",
                                                        lines[1]), lines[:3]
    assert lines[-2] == str(tmp_path / "missing.png") and lines[-1].startswith("  error: ")
    code, out, err = run_cli("classify", jobs.model.id, jobs.image, "--details", tmp_path / "d.npz")
    assert code == 2 and "detection model" in err and "without --details" in err and not (tmp_path / "d.npz").exists()


def test_the_model_page_draws_the_boxes(jobs):
    at = AppTest.from_file(MAIN, default_timeout=30)
    at.switch_page("../pages/model.py")
    at.query_params["job"] = jobs.model.id
    at.run()
    key = jobs.model.id
    assert "Find objects in an image" in [s.value for s in at.subheader]
    at.file_uploader(key=f"classify-{key}").set_value(("red.png", jobs.image.read_bytes(), "image/png"))
    at.run(timeout=150)
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    assert "Your image: 96x96" in [c for image in at.image for c in image.captions]
    assert "Score threshold" in [s.label for s in at.slider]
    assert not [t for t in chart_titles(at) if t and t.startswith("Top ")]  # no top-5 bar
    assert not [c for c in at.checkbox if c.key == f"classify-layers-{key}"]  # no classifier's extras
    table = at.dataframe[-1].value
    assert list(table["class"])[0] == "red" and len(table) >= 1


def unpack(archive: Path, dest: Path) -> Path:
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(dest)
    return dest


@pytest.fixture(scope="module")
def archive(trained, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "boxes.zip"
    with pytest.MonkeyPatch.context() as mp:
        engine_env(mp, trained.root)
        assert cli.main(["export", trained.model.id, "-o", str(out)]) == 0
    return out


def test_exports_compare_raw_maps(jobs, archive, tmp_path):
    import keras
    folder = unpack(archive, tmp_path / "a")
    info = json.loads((folder / "info.json").read_text())
    assert (info["task"], info["box_decoding"], info["preprocessing"]["resize_mode"]) == ("detection", DECODING, "pad")
    assert info["output"]["shape"] == [SIZE // 4, SIZE // 4, 2 + 4] and "K class-heatmap logits" in info["output"]["layout"]
    assert (folder / "labels.txt").read_text().splitlines() == ["red", "blue"]
    assert '"class_name": "Functional"' in zipfile.ZipFile(folder / "model.keras").read("config.json").decode()
    x = prepare_detection(jobs.image, read_json(jobs.model.dir / "model.json")["image"], "pad")[0][None]
    source = load_model(jobs.model).predict(x, verbose=0)
    np.testing.assert_allclose(keras.models.load_model(folder / "model.keras").predict(x, verbose=0), source, atol=1e-4)
    np.testing.assert_allclose(export_check.predict_savedmodel(folder / "saved_model", x), source, atol=1e-4)
    code, out, err = run_cli("export", jobs.model.id, "--format", "tflite", "-o", tmp_path / "m.tflite", "--json")
    assert code == 0, err
    assert set(json.loads(out)["checked"]) == {"tflite"} and info["checked"]["samples"] == 8  # 6 val records + 2 random
    np.testing.assert_allclose(export_check.predict_tflite(tmp_path / "m.tflite", x), source, atol=1e-3)
    mismatch = export_check.Checker(export_check.comparable(source, raw=True), x, ["test image"], raw=True)
    with pytest.raises(export_check.ExportMismatch, match="raw outputs differ by up to 0.5"):
        mismatch.check("tflite", lambda path, samples: source + 0.5, tmp_path / "m.tflite")


def test_the_readme_example_runs_without_digits(jobs, archive, tmp_path):
    folder = unpack(archive, tmp_path / "a")
    code = re.search(r"```python\n(.*?)```", (folder / "README.md").read_text(), re.S).group(1)
    (folder / "detect.py").write_text(code)
    (folder / "image.png").write_bytes(jobs.image.read_bytes())
    no_digits = "import sys; sys.modules['digits_engine'] = None; sys.argv = ['detect.py', 'image.png']; " \
                "exec(open('detect.py').read())"
    done = subprocess.run([sys.executable, "-c", no_digits], cwd=folder, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    printed = [line.split() for line in done.stdout.strip().splitlines()]
    found = detect(jobs.model, [jobs.image])[0]["detections"]
    assert [p[1] for p in printed] == [d["label"] for d in found]
    np.testing.assert_allclose([float(p[0]) for p in printed], [d["score"] for d in found], atol=1e-3)
    np.testing.assert_allclose([[float(v) for v in p[2:]] for p in printed], [d["box"] for d in found], atol=0.1)


def test_import_detects_the_same_boxes_and_is_not_fine_tuned(jobs, archive):
    code, out, err = run_cli("import", archive, "--json")
    assert code == 0, err
    summary = json.loads(out)
    job = JobStore(jobs.root).get(summary["id"])
    assert (summary["status"], summary["task"]) == ("Done", "detection")
    info = read_json(job.dir / "model.json")
    assert (info["task"], info["box_decoding"], info["image"]["resize_mode"]) == ("detection", DECODING, "pad")
    assert detect(job, [jobs.image]) == detect(jobs.model, [jobs.image])
    dataset = read_json(jobs.model.dir / "model.json")["dataset"]
    code, out, err = run_cli("model", "train", "--dataset", dataset, "--name", "tuned",
                             "--network", "previous", "--previous-model", job.id, "--epochs", "1")
    assert code == 2 and "choose centernet" in err


def test_a_detection_archive_with_wrong_labels_or_decoding_is_refused(jobs, archive, tmp_path):
    before = len(JobStore(jobs.root).list("model"))
    labels = tmp_path / "three.txt"
    labels.write_text("a\nb\nc\n")
    code, _, err = run_cli("import", archive, "--labels", labels)
    assert code == 2 and "3 classes (+ 4 box channels)" in err
    folder = unpack(archive, tmp_path / "a")
    info = json.loads((folder / "info.json").read_text())
    info["box_decoding"] = {"type": "ssd"}
    (folder / "info.json").write_text(json.dumps(info))
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as zf:
        for path in folder.rglob("*"):
            zf.write(path, path.relative_to(folder).as_posix())
    code, _, err = run_cli("import", tmp_path / "bad.zip")
    assert code == 2 and "no usable box_decoding" in err
    assert len(JobStore(jobs.root).list("model")) == before
