"""Segmentation end to end with the Sunnybrook DICOM plugin and real workers:
plugin dataset -> U-Net training (pixel accuracy, mean IoU) -> inference
through the plugin's form -> the segmentation view; and the pages for it."""
import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from digits_engine import cli, job_actions, lmdb_store
from digits_engine.image_records import read_record
from digits_engine.job_store import JobStore
from digits_engine.plugins import registry

pytest.importorskip("digits_sunnybrook")
from test_sunnybrook_plugin import write_contour, write_dicom  # noqa: E402

MAIN = str(Path(__file__).resolve().parent.parent / "app" / "main.py")
pytestmark = pytest.mark.timeout(300)


def make_study(root: Path, n: int = 24, size: int = 32) -> tuple[Path, Path]:
    """DICOM images with one bright disc each, and its contour: the disc is the left ventricle."""
    rng = np.random.default_rng(0)
    angles = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    for i in range(1, n + 1):
        pixels = rng.normal(300, 20, (size, size)).clip(0, 4000).astype(np.uint16)
        cx, cy, r = rng.integers(10, size - 10), rng.integers(10, size - 10), rng.integers(4, 7)
        yy, xx = np.mgrid[0:size, 0:size]
        pixels[(xx - cx) ** 2 + (yy - cy) ** 2 <= r * r] += 700
        write_dicom(root / "dicom" / f"IM-0001-{i:04d}.dcm", pixels)
        write_contour(root / "contours" / f"IM-0001-{i:04d}-icontour-manual.txt",
                      list(zip(cx + r * np.cos(angles), cy + r * np.sin(angles))))
    return root / "dicom", root / "contours"


def run_cli(capsys, *args) -> dict:
    assert cli.main([*args, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def study(tmp_path):
    return make_study(tmp_path / "study")


def create_dataset(capsys, images, contours, *extra) -> dict:
    return run_cli(capsys, "dataset", "create", "--plugin", "image-sunnybrook", "--option", f"image_folder={images}",
                   "--option", f"contour_folder={contours}", "--option", "size=32", "--option", "val_pct=25",
                   "--option", "seed=0", "--name", "lv", "--wait", *extra)


def test_dicom_dataset_train_and_infer(jobs_dir, study, tmp_path, capsys):
    images, contours = study
    (contours / "IM-0001-0999-icontour-manual.txt").write_text("1 1\n5 1\n5 5\n")  # points to no image
    (images / "IM-0001-0500.dcm").write_bytes(b"not a dicom file at all")
    write_contour(contours / "IM-0001-0500-icontour-manual.txt", [(1, 1), (5, 1), (5, 5)])
    dataset = create_dataset(capsys, images, contours)
    assert dataset["status"] == "Done" and dataset["task"] == "segmentation"
    job_dir = jobs_dir / dataset["id"]
    stats = json.loads((job_dir / "stats.json").read_text())
    assert stats["labels"] == ["background", "left ventricle"]
    assert stats["totals"] == {"train": 18, "val": 6}
    assert stats["image"]["width"] == stats["image"]["height"] == 32
    reasons = {Path(s["path"]).name: s["reason"] for s in stats["skipped_files"]}
    assert "IM-0001-0999-icontour-manual.txt" in reasons and "IM-0001-0500.dcm" in reasons
    pixels, mask = read_record(lmdb_store.read_range(job_dir / "train", 0, 1)[0])
    assert pixels.shape == (32, 32, 1) and mask.shape == (32, 32, 1) and set(np.unique(mask)) == {0, 1}

    model = run_cli(capsys, "model", "train", "--dataset", dataset["id"], "--epochs", "2", "--batch-size", "6",
                    "--solver", "adam", "--lr", "0.003", "--seed", "0", "--name", "unet", "--wait")
    assert model["status"] == "Done" and model["params"]["network"] == "unet"
    assert {"train/loss", "val/loss", "val/pixel_accuracy", "val/mean_iou"} <= set(model["metrics"])
    assert 0 <= model["metrics"]["val/mean_iou"] <= 1 and model["best_metric"] == "val/mean_iou"

    out = tmp_path / "result.npz"
    answer = run_cli(capsys, "infer", model["id"], "--option", f"dicom_file={images / 'IM-0001-0003.dcm'}",
                     "--output", str(out))
    assert answer["count"] == 1 and answer["ids"] == ["IM-0001-0003.dcm"] and answer["task"] == "segmentation"
    with np.load(out) as result:
        inputs, outputs = result["inputs"], result["outputs"]
    assert inputs.shape == (1, 32, 32, 1) and outputs.shape == (1, 32, 32, 2)
    assert np.allclose(outputs.sum(-1), 1, atol=1e-5)

    view = registry.get("view", "image-segmentation")(labels=stats["labels"])
    data = view.process_data("IM-0001-0003.dcm", inputs[0], outputs[0])
    assert data["classes"].shape == (32, 32) and data["overlay"].shape == (32, 32, 3)


def test_a_classification_network_is_refused_for_segmentation(jobs_dir, study, capsys):
    dataset = create_dataset(capsys, *study)
    assert cli.main(["model", "train", "--dataset", dataset["id"], "--network", "lenet", "--epochs", "1"]) == 2
    assert "segmentation dataset needs one of: unet" in capsys.readouterr().err


def test_an_empty_folder_is_a_clear_error(jobs_dir, tmp_path, capsys):
    (tmp_path / "dicom").mkdir()
    (tmp_path / "contours").mkdir()
    assert cli.main(["dataset", "create", "--plugin", "image-sunnybrook", "--option", f"image_folder={tmp_path / 'dicom'}",
                     "--option", f"contour_folder={tmp_path / 'contours'}", "--name", "empty", "--wait"]) == 1
    [job] = JobStore(jobs_dir).list()
    assert job.state.value == "Error" and "DICOM" in job.status()["error"]
    assert not (job.dir / "train").exists()


def open_page(page: str, **query) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=60)
    at.switch_page(f"../pages/{page}.py")
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def test_the_plugin_form_renders_and_submits(jobs_dir, study):
    images, contours = study
    at = open_page("new_dataset")
    at.selectbox(key="new_dataset.type").set_value("Images › Sunnybrook LV segmentation (DICOM)").run()
    assert not at.exception
    prefix = "new_dataset.image-sunnybrook."
    at.text_input(key=prefix + "name").set_value("lv")
    at.text_input(key=prefix + "image_folder").set_value(str(images))
    at.text_input(key=prefix + "contour_folder").set_value(str(contours))
    at.text_input(key=prefix + "size").set_value("32")
    at.button(key="FormSubmitter:new_dataset_image-sunnybrook-Create").click().run()
    assert not at.exception
    [job] = JobStore(jobs_dir).list("dataset")
    assert job.params["plugin"] == "image-sunnybrook" and job.spec["task"] == "segmentation"
    assert job_actions.wait(job, timeout=120).value == "Done"
    page = open_page("dataset", job=job.id)
    assert not page.exception
    assert "**Samples with their masks**" in [m.value for m in page.markdown]
    assert len(page.image) >= 2  # the mean image and the samples


def test_the_model_page_offers_the_inference_form_and_view(jobs_dir, study, capsys):
    dataset = create_dataset(capsys, *study)
    model = run_cli(capsys, "model", "train", "--dataset", dataset["id"], "--epochs", "1", "--batch-size", "6",
                    "--name", "unet", "--wait")
    at = open_page("model", job=model["id"])
    assert not at.exception
    assert "Visualization options" in [s.value for s in at.subheader]
    assert at.selectbox(key=f"infer.{model['id']}.view").value == "image-segmentation"
    images, _ = study
    dicom = images / "IM-0001-0002.dcm"
    at.file_uploader(key=f"infer.{model['id']}.dicom_file").set_value((dicom.name, dicom.read_bytes(), "application/dicom"))
    at.run()
    at.button(key=f"infer.{model['id']}.run").click().run(timeout=150)  # `digits infer` imports TensorFlow
    assert not at.exception and not [e.value for e in at.error]
    assert len(at.image) == 2  # the input and the predicted mask over it
    assert [s.label for s in at.slider] == ["Opacity"]
    assert any("background" in m.value for m in at.markdown)  # the legend
