"""Detection training: the tf.data batches (padded boxes, flips that move the
boxes, CenterNet targets), the CenterNet loss, and a real worker that trains
on a tiny set of coloured squares, logs val/mAP and resumes from a snapshot.

The detection records follow the shared record contract (image_records.make_record
with {"boxes", "classes"}); the dataset job is written directly (stats.json and
LMDB splits) so that these tests do not depend on the dataset builder."""
import json

import numpy as np
import pytest

from digits_engine import lmdb_store
from digits_engine.detection_boxes import MAX_BOXES, encode_batch
from digits_engine.detection_decode import DECODING, decode
from digits_engine.fields import FormErrors
from digits_engine.image_records import make_record
from digits_engine.job_state import JobState
from digits_engine.job_store import JobStore
from digits_engine.model_spec import check
from test_jobs_integration import WAIT, run_cli, submit_model, wait_for
from test_pages import assert_fine, chart_titles, open_page

pytestmark = pytest.mark.timeout(300)
SIZE = 48
EPOCHS = 12  # long enough that the abort lands well before the end
LABELS = ["red", "blue"]
COLOURS = np.array([(230, 30, 30), (30, 30, 230)], np.uint8)


def scene(rng, n_boxes: int) -> tuple[np.ndarray, dict]:
    """A noisy grey image with n_boxes filled squares (side 10-16) of the class colours."""
    pixels = rng.integers(90, 140, (SIZE, SIZE, 3)).astype(np.uint8)
    boxes, classes = [], []
    for _ in range(n_boxes):
        side, c = int(rng.integers(10, 17)), int(rng.integers(0, len(LABELS)))
        left, top = (int(v) for v in rng.integers(0, SIZE - side, 2))
        pixels[top:top + side, left:left + side] = COLOURS[c]
        boxes.append((left, top, left + side, top + side))
        classes.append(c)
    return pixels, {"boxes": np.array(boxes, np.float32).reshape(-1, 4), "classes": np.array(classes, np.int64)}


def write_split(path, samples) -> None:
    writer = lmdb_store.Writer(path)
    for pixels, truth in samples:
        writer.append(make_record(pixels, truth, "png"))
    writer.close()


def detection_dataset(root, n_train: int = 32, n_val: int = 8) -> str:
    """A Done detection dataset job: 1-2 squares per image (a few images empty), pixel-mean stats."""
    rng = np.random.default_rng(0)
    store = JobStore(root)
    job = store.create("dataset", "squares", {}, task="detection")
    splits = {"train": [scene(rng, int(rng.integers(0, 3))) for _ in range(n_train)],
              "val": [scene(rng, 1 + i % 2) for i in range(n_val)]}
    for split, samples in splits.items():
        write_split(job.dir / split, samples)
    pixels = np.stack([p for p, _ in splits["train"]]).reshape(-1, 3).astype(np.float64)
    (job.dir / "stats.json").write_text(json.dumps({
        "task": "detection", "labels": LABELS, "counts": {s: len(v) for s, v in splits.items()},
        "image": {"width": SIZE, "height": SIZE, "channels": 3, "resize_mode": "squash", "encoding": "png"},
        "pixel_mean": pixels.mean(0).tolist(), "pixel_std": pixels.std(0).tolist()}))
    job.set_state(JobState.DONE, progress=1.0)
    return job.id


def pipeline_batches(path, **kwargs):
    from digits_engine.training.input_pipeline import make_dataset
    return list(make_dataset(path, (SIZE, SIZE, 3), "png", 4, shuffle=False, task="detection", n_classes=2,
                             **kwargs))


def test_batches_pad_the_boxes_and_carry_their_targets(tmp_path):
    boxes = np.array([[8, 12, 20, 28], [30, 30, 46, 40]], np.float32)
    samples = [(np.full((SIZE, SIZE, 3), 100, np.uint8), {"boxes": boxes, "classes": np.array([1, 0])}),
               (np.full((SIZE, SIZE, 3), 50, np.uint8), {"boxes": np.zeros((0, 4)), "classes": np.zeros(0, int)})]
    write_split(tmp_path / "db", samples)
    images, truth = pipeline_batches(tmp_path / "db")[0]
    assert images.shape == (2, SIZE, SIZE, 3) and truth["boxes"].shape == (2, MAX_BOXES, 4)
    np.testing.assert_array_equal(truth["boxes"][0, :2], boxes)
    assert truth["classes"][0, :3].numpy().tolist() == [1, 0, -1] and (truth["classes"][1] == -1).numpy().all()
    heat = truth["heatmaps"].numpy()
    assert heat.shape == (2, SIZE // 4, SIZE // 4, 2 + 5)
    # box 0: centre (14, 20) px = (3.5, 5.0) cells -> cell (3, 5), class 1; size 3 x 4 cells, offset (0.5, 0)
    assert heat[0, 5, 3, 1] == 1.0 and heat[0, 5, 3, -1] == 1.0  # peak and mask
    np.testing.assert_allclose(heat[0, 5, 3, 2:6], [3, 4, 0.5, 0])
    assert heat[0, ..., -1].sum() == 2 and heat[1].max() == 0  # the empty image: no target anywhere
    np.testing.assert_array_equal(heat, encode_batch(truth["boxes"].numpy(), truth["classes"].numpy(), 2, (SIZE, SIZE)))
    # the targets read as network output (peaks as large logits) decode to the boxes
    logits = np.concatenate([np.where(heat[..., :2] == 1, 10.0, -10.0), heat[..., 2:6]], axis=-1)
    found = decode(logits)[0]
    np.testing.assert_allclose(found["boxes"][np.argsort(found["classes"])], boxes[::-1], atol=1e-5)


def test_a_horizontal_flip_moves_image_boxes_and_targets_together(tmp_path):
    pixels = np.zeros((SIZE, SIZE, 3), np.uint8)
    pixels[4:12, 0:8] = 255  # a white square at the left edge
    truth = {"boxes": np.array([[0, 4, 8, 12]], np.float32), "classes": np.array([0])}
    write_split(tmp_path / "db", [(pixels, truth)] * 16)
    images, labels = pipeline_batches(tmp_path / "db", train_changes={"aug_flip": "horizontal"}, seed=1)[0]
    flipped = images.numpy()[:, 4:12, SIZE - 8:].min(axis=(1, 2, 3)) == 255
    assert 0 < flipped.sum() < 4, flipped  # seed 1 flips some of the first 4, not all
    for image_flipped, box, heat in zip(flipped, labels["boxes"].numpy()[:, 0], labels["heatmaps"].numpy()):
        expected = [SIZE - 8, 4, SIZE, 12] if image_flipped else [0, 4, 8, 12]
        np.testing.assert_array_equal(box, expected)
        assert heat[2, (expected[0] + 4) // 4, 0] == 1.0  # the peak followed the box


def test_the_loss_prefers_the_right_heatmap():
    import keras
    from digits_engine.training import centernet
    targets = np.zeros((1, 4, 4, 1 + 5), np.float32)
    targets[0, 1, 2] = (1.0, 3, 2, 0.5, 0.25, 1.0)
    right = np.full((1, 4, 4, 5), -8.0, np.float32)
    right[0, 1, 2] = (8.0, 3, 2, 0.5, 0.25)
    wrong = right.copy()
    wrong[0, 1, 2, 0], wrong[0, 3, 3, 0] = -8.0, 8.0
    model = centernet.build((16, 16, 3), 1, lambda x: keras.layers.Rescaling(1 / 255)(x))
    loss_right = float(model.compute_loss(y={"heatmaps": targets}, y_pred=right))
    loss_wrong = float(model.compute_loss(y={"heatmaps": targets}, y_pred=wrong))
    assert loss_right < 0.01 < 5 < loss_wrong
    assert model.output_shape == (None, 4, 4, 1 + 4)


def test_the_form_defaults_and_refusals_for_detection(jobs_dir):
    dataset = detection_dataset(jobs_dir, n_train=4, n_val=2)
    params = check({"dataset": dataset, "name": "boxes"}, JobStore())
    assert params["network"] == "centernet" and params["watch_metric"] == "val/mAP"
    with pytest.raises(FormErrors) as error:
        check({"dataset": dataset, "name": "b", "network": "lenet", "aug_rotation": "10", "crop_size": "32",
               "watch_metric": "val/accuracy", "workers": "2"}, JobStore())
    assert set(error.value.errors) == {"network", "aug_rotation", "crop_size", "watch_metric", "workers"}
    assert "boxes would not follow" in error.value.errors["crop_size"]
    with pytest.raises(FormErrors) as error:
        check({"dataset": dataset, "name": "b", "network": "custom", "custom_code": "x = 1"}, JobStore())
    assert "choose centernet" in error.value.errors["network"]


def test_a_worker_trains_logs_map_and_resumes(jobs_dir):
    dataset = detection_dataset(jobs_dir)
    model = submit_model(dataset, EPOCHS, "centernet", "--solver", "adam", "--lr", "0.003", "--seed", 1,
                         "--aug-flip", "horizontal")["id"]
    wait_for(lambda: (jobs_dir / model / "snapshots" / "epoch_3.keras").exists(), WAIT, "epoch 3's snapshot")
    code, _, err = run_cli("jobs", "abort", model)
    assert code == 0, err
    records = progress(jobs_dir, model)
    validated = [r for r in records if "val/loss" in r]
    assert [r["epoch"] for r in validated][:3] == [1, 2, 3]
    assert all(0 <= r["val/mAP"] <= 1 and "val/AP_red" in r and "val/AP_blue" in r for r in validated)
    assert "train/heatmap_loss" in records[-1] and "val/size_loss" in validated[-1]
    info = json.loads((jobs_dir / model / "model.json").read_text())
    assert info["task"] == "detection" and info["box_decoding"] == DECODING and info["labels"] == LABELS
    assert json.loads((jobs_dir / model / "snapshots" / "best.json").read_text())["metric"] == "val/mAP"
    # a snapshot loads where the CenterNet class is registered (importing its module) and gives decodable output
    import keras
    import digits_engine.training.centernet  # noqa: F401
    snapshot = keras.models.load_model(jobs_dir / model / "snapshots" / "epoch_3.keras")
    out = snapshot.predict(np.zeros((1, SIZE, SIZE, 3), np.float32), verbose=0)
    assert out.shape == (1, SIZE // 4, SIZE // 4, 6) and isinstance(decode(out)[0]["scores"], np.ndarray)
    # resume: every epoch logged once, the loss fell and the squares are found
    code, out, err = run_cli("jobs", "resume", model, "--wait", "--json")
    assert code == 0, err + out
    assert json.loads(out)["status"] == "Done", (jobs_dir / model / "log.txt").read_text()[-3000:]
    records = progress(jobs_dir, model)
    validated = [r for r in records if "val/mAP" in r]
    assert [r["epoch"] for r in validated] == list(range(1, EPOCHS + 1))
    assert "resuming from the snapshot of epoch" in (jobs_dir / model / "log.txt").read_text()
    losses = [r["train/loss"] for r in records if "train/loss" in r]
    assert losses[-1] < losses[0] / 2, losses
    assert max(r["val/mAP"] for r in validated[-3:]) > 0.3, [r["val/mAP"] for r in validated]  # ~0.6 seen
    # the model page charts the losses, mAP and one AP chart with a line per class
    at = open_page("model", job=model)
    assert_fine(at)
    titles = chart_titles(at)
    assert {"Loss", "mAP@0.5 (validation)", "AP@0.5 per class (validation)", "Heatmap loss"} <= set(titles)
    [per_class] = [json.loads(c.proto.spec) for c in at.get("plotly_chart")
                   if json.loads(c.proto.spec)["layout"]["title"]["text"] == "AP@0.5 per class (validation)"]
    assert [trace["name"] for trace in per_class["data"]] == ["val/AP_blue", "val/AP_red"]


def progress(jobs_dir, model: str) -> list[dict]:
    return [json.loads(line) for line in (jobs_dir / model / "progress.jsonl").read_text().splitlines()]
