"""Detection datasets end to end: KITTI folders -> the image-object-detection
plugin -> a real dataset job (detached worker, real LMDB) -> records with boxes,
stats.json objects and dontcare counts, and every odd label file reported."""
import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digits_engine import cli, lmdb_store, record_index
from digits_engine.image_records import make_record, read_record
from digits_engine.job_store import JobStore
from digits_engine.plugins import registry
from digits_engine.plugins.interfaces import TASKS
from digits_engine.plugins.views.boxes import class_colour
from digits_engine.shapes_detection import make_shapes_detection
from test_pages import ROOT, assert_fine, chart_titles, open_page, texts

PLUGIN = "image-object-detection"
ZEROS = " ".join(["0.00"] * 7)


def line(name, left, top, right, bottom):
    return f"{name} 0.00 0 0.00 {left} {top} {right} {bottom} {ZEROS}\n"


def kitti_set(root: Path, n: int = 6) -> Path:
    """n 40x30 images with labels; plus odd files: an image without labels, labels without an image,
    an unknown class, a dontcare box, a malformed line and a box reaching outside the image."""
    images, labels = root / "images", root / "labels"
    images.mkdir(parents=True)
    labels.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(images / f"{i:03d}.png")
        (labels / f"{i:03d}.txt").write_text(line("circle", 5, 5, 15, 15) + line("Square", 20, 10, 30, 20))
    (labels / "000.txt").write_text(line("circle", 5, 5, 15, 15) + line("blob", 1, 1, 9, 9)
                                    + line("DontCare", 0, 0, 4, 4) + "circle 1 2 3\n"
                                    + line("square", 30, 20, 45, 35))
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(images / "bg.png")
    (labels / "orphan.txt").write_text(line("circle", 1, 1, 5, 5))
    return root


def run_cli(*args):
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def create(name, **options):
    args = ["dataset", "create", "--name", name, "--plugin", PLUGIN, "--wait", "--json"]
    for key, value in options.items():
        args += ["--option", f"{key}={value}"]
    return run_cli(*args)


def records_by_name(job_dir: Path, split: str) -> dict:
    n = lmdb_store.count(job_dir / split)
    rows = record_index.read_page(job_dir, split, 0, n)
    return {Path(row["name"]).stem: (read_record(rec), row)
            for rec, row in zip(lmdb_store.read_range(job_dir / split, 0, n), rows)}


def test_records_round_trip_boxes_including_none():
    pixels = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    label = {"boxes": np.array([[0, 1, 2.5, 3], [1, 1, 4, 4]], np.float32), "classes": np.array([2, 0])}
    out, got = read_record(make_record(pixels, label, "png"))
    np.testing.assert_array_equal(out, pixels)
    np.testing.assert_array_equal(got["boxes"], label["boxes"])
    assert got["boxes"].dtype == np.float32 and got["classes"].dtype == np.int64
    assert got["classes"].tolist() == [2, 0]
    _, empty = read_record(make_record(pixels, {"boxes": np.zeros((0, 4)), "classes": []}, "none"))
    assert empty["boxes"].shape == (0, 4) and empty["classes"].shape == (0,)
    assert read_record(make_record(pixels, 3, "png"))[1] == 3  # classification unchanged


def test_plugin_is_registered_for_detection():
    plugin = registry.get("data", PLUGIN)
    assert (plugin.get_title(), plugin.task) == ("Object detection (KITTI)", "detection")
    assert "detection" in TASKS
    assert plugin().class_labels()[:3] == ["car", "van", "truck"] and "dontcare" not in plugin().class_labels()
    with pytest.raises(ValueError, match="dontcare is not a class"):
        plugin(custom_classes="car,dontcare")


def test_dataset_job_through_the_cli(jobs_dir, tmp_path):
    root = kitti_set(tmp_path / "kitti")
    code, out, err = create("det", train_image_folder=root / "images", train_label_folder=root / "labels",
                            custom_classes="circle,square", width=32, height=32, val_pct=0, seed=1)
    assert code == 0, out + err
    job_dir = jobs_dir / json.loads(out)["id"]
    stats = json.loads((job_dir / "stats.json").read_text())
    assert stats["task"] == "detection" and stats["labels"] == ["circle", "square"]
    assert stats["image"]["resize_mode"] == "pad"  # what models trained on it prepare new images with
    assert stats["totals"] == {"train": 7}  # 6 labelled + 1 background image
    # 000: circle kept, blob dropped, dontcare counted, bad line skipped, square clipped to the image
    assert stats["objects"] == {"train": {"circle": 6, "square": 6}}
    assert stats["dontcare"] == {"train": 1}
    reasons = "\n".join(f"{s['path']}: {s['reason']}" for s in stats["skipped_files"])
    assert "labels/000.txt, line 2: class 'blob' is not in the class list" in reasons
    assert "labels/000.txt, line 4: expected 15 or 16 fields, found 4" in reasons
    assert "labels/000.txt: 1 box(es) reached outside the image; clipped" in reasons
    assert "orphan.txt: no image orphan.* in" in reasons
    assert (job_dir / "labels.txt").read_text() == "circle\nsquare\n"

    records = records_by_name(job_dir, "train")
    (pixels, label), row = records["001"]
    assert pixels.shape == (32, 32, 3)
    assert not pixels[24:].any()  # pad: 40x30 scaled by 0.8 to 32x24, black below
    np.testing.assert_allclose(label["boxes"], [[4, 4, 12, 12], [16, 8, 24, 16]])  # x 0.8
    assert label["classes"].tolist() == [0, 1] and row["label"] == -1 and row["classes"] == [0, 1]
    assert (row["width"], row["height"]) == (40, 30)  # the source file's size, for the page's size chart
    np.testing.assert_allclose(records["000"][0][1]["boxes"], [[4, 4, 12, 12], [24, 16, 32, 24]])
    (_, background), row = records["bg"]
    assert background["boxes"].shape == (0, 4) and row["classes"] == []


def test_shapes_demo_set_with_val_folders(jobs_dir, tmp_path):
    root = make_shapes_detection(tmp_path / "shapes", n_train=10, n_val=4, seed=3)
    lines = {split: [ln.split()[0] for f in sorted((root / split / "labels").glob("*.txt"))
                     for ln in f.read_text().splitlines()] for split in ("train", "val")}
    code, out, err = create("shapes", train_image_folder=root / "train" / "images",
                            train_label_folder=root / "train" / "labels",
                            val_image_folder=root / "val" / "images", val_label_folder=root / "val" / "labels",
                            custom_classes=(root / "classes.txt").read_text().replace("\n", ","),
                            width=64, height=64, resize_mode="squash")
    assert code == 0, out + err
    stats = json.loads((jobs_dir / json.loads(out)["id"] / "stats.json").read_text())
    assert stats["totals"] == {"train": 10, "val": 4} and not stats["skipped_files"]
    for split, names in lines.items():
        assert stats["objects"][split] == {c: names.count(c) for c in sorted(set(names), key=stats["labels"].index)}


@pytest.mark.parametrize("options, message", [
    ({"train_image_folder": "/no/such/folder"}, "train_image_folder: The folder /no/such/folder does not exist"),
    ({"val_image_folder": "VAL"}, "val_label_folder is empty"),
])
def test_bad_folders_fail_with_the_reason(jobs_dir, tmp_path, options, message):
    root = kitti_set(tmp_path / "kitti", n=2)
    values = {"train_image_folder": root / "images", "train_label_folder": root / "labels", **options}
    values = {k: (root / "images" if v == "VAL" else v) for k, v in values.items()}
    code, out, err = create("bad", **values)
    assert code != 0
    log = (jobs_dir / json.loads(out)["id"] / "status.json").read_text() if out.strip().startswith("{") else ""
    assert message in out + err + log


@pytest.mark.parametrize("label, message", [
    ({"boxes": [1, 2, 3], "classes": [0]}, "3 box values and 1 classes"),
    ({"boxes": [[4, 1, 1, 4]], "classes": [0]}, "left < right"),
    ({"boxes": [[1, 1, 9, 4]], "classes": [0]}, "inside the 8x8 image"),
])
def test_a_plugin_s_bad_boxes_are_explained(label, message):
    from digits_engine.image_source import checked_sample
    with pytest.raises(ValueError, match=message):
        checked_sample(np.zeros((8, 8, 3)), label)


def test_dataset_page_shows_boxes_and_object_counts(jobs_dir, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "app"))  # the app's own modules, as the app imports them
    from detection_samples import boxed
    from image_grid import thumbnail_png

    root = make_shapes_detection(tmp_path / "shapes", n_train=8, n_val=3, seed=5)
    code, out, err = create("shapes", train_image_folder=root / "train" / "images",
                            train_label_folder=root / "train" / "labels", val_pct=25,
                            custom_classes="circle,square,triangle", width=64, height=64)
    assert code == 0, out + err
    job_id = json.loads(out)["id"]
    stats = json.loads((jobs_dir / job_id / "stats.json").read_text())
    at = open_page("dataset", job=job_id)
    assert_fine(at)
    assert {"Images holding each class, per split", "Objects (boxes) per class and split"} <= set(chart_titles(at))
    objects = at.dataframe[1].value
    assert objects.loc["all classes", "all splits"] == sum(sum(c.values()) for c in stats["objects"].values())
    assert "Samples with their boxes" in texts(at) and "No *dontcare* box." in texts(at)
    captions = [img.caption for element in at.get("image") for img in element.proto.imgs]
    assert sum(c.endswith("object(s)") for c in captions) == min(6, stats["totals"]["train"])

    pixels = np.full((20, 20, 3), 128, np.uint8)
    truth = {"boxes": np.array([[2, 2, 12, 12]], np.float32), "classes": np.array([1])}
    drawn = boxed(pixels, truth, ["circle", "square"])
    scale = drawn.shape[0] // 20
    assert tuple(drawn[6 * scale, 2 * scale]) == class_colour(1)  # the left edge, in the square's colour
    thumb = np.asarray(Image.open(io.BytesIO(thumbnail_png(pixels, truth))))
    assert tuple(thumb[30, 2 * (thumb.shape[0] // 20)][:3]) == class_colour(1)


def test_the_form_offers_the_detection_demo_and_builds_it(jobs_dir, tmp_path, monkeypatch):
    demo = make_shapes_detection(tmp_path / "demo", n_train=6, n_val=2, seed=2)
    monkeypatch.setenv("DIGITS_DETECTION_DEMO_DIR", str(demo))
    at = open_page("new_dataset")
    at.selectbox(key="new_dataset.type").set_value("Images › Object detection (KITTI)").run()
    assert_fine(at)
    prefix = f"new_dataset.{PLUGIN}."
    assert at.text_input(key=prefix + "train_label_folder").value == str(demo / "train" / "labels")
    assert at.text_input(key=prefix + "custom_classes").value == "circle,square,triangle"
    at.button[0].click().run()  # Create
    assert_fine(at)
    [job] = JobStore(jobs_dir).list("dataset")
    assert job.name == "shapes-detection demo" and job.params["options"]["val_image_folder"] == str(
        demo / "val" / "images")
    monkeypatch.setenv("DIGITS_DETECTION_DEMO_DIR", str(tmp_path / "none"))
    at = open_page("new_dataset")
    at.selectbox(key="new_dataset.type").set_value("Images › Object detection (KITTI)").run()
    assert at.text_input(key=prefix + "train_image_folder").value == ""  # no demo: a blank form
