"""Training data options with real workers on tiny datasets: validation and
snapshot intervals (fractions of an epoch too, and resuming from one), shuffle,
mean subtraction, random crop (and classifying with the cropped model), and
augmentation, for classification and segmentation. Plus the epoch plan's
arithmetic and the form's checks."""
import json

import numpy as np
import pytest

from digits_engine.training.epoch_plan import EpochPlan
from test_jobs_integration import WAIT, create_dataset, run_cli, status, wait_for

pytestmark = pytest.mark.timeout(300)
ALL_AUGMENTATION = ("--aug-flip", "both", "--aug-rot90", "--aug-rotation", 20, "--aug-scale", 0.1, "--aug-noise", 0.02,
                    "--aug-hue", 0.1, "--aug-saturation", 0.2, "--aug-value", 0.2, "--aug-contrast", 0.2)


def train(dataset: str, *extra, epochs: int = 1) -> dict:
    code, out, err = run_cli("model", "train", "--dataset", dataset, "--batch-size", 8, "--name", "m",
                             "--epochs", epochs, "--seed", 2, *extra, "--wait", "--json")
    assert code == 0, err + out
    model = json.loads(out)
    assert model["status"] == "Done", model.get("error")
    return model


def records(jobs_dir, model_id: str) -> list[dict]:
    return [json.loads(line) for line in (jobs_dir / model_id / "progress.jsonl").read_text().splitlines()]


def validated_at(jobs_dir, model_id: str) -> list:
    return [r["epoch"] for r in records(jobs_dir, model_id) if "val/loss" in r]


def snapshot_names(jobs_dir, model_id: str) -> list[str]:
    from digits_engine import snapshots
    from digits_engine.job_store import JobStore
    return [p.name for _, p in snapshots.list_snapshots(JobStore(jobs_dir).get(model_id))]


# ------------------------------------------------------------------ the epoch plan (no worker)

def test_whole_epoch_intervals_keep_keras_epochs_as_they_are():
    plan = EpochPlan.for_job({"epochs": 4, "snapshot_interval": 2}, steps=5)
    assert not plan.sub_epochs and plan.keras_epochs == 4 and plan.validation_freq() == 1
    assert [plan.end_epoch(k) for k in range(4) if plan.snapshots(k)] == [2, 4]


def test_fractional_intervals_cut_epochs_into_sub_epochs():
    plan = EpochPlan.for_job({"epochs": 2, "validation_interval": 0.5, "snapshot_interval": 0.25}, steps=8)
    assert plan.chunk == 2 and plan.keras_epochs == 8
    assert [plan.end_epoch(k) for k in range(8) if plan.validates(k)] == [0.5, 1, 1.5, 2]
    assert plan.validation_freq() == [2, 4, 6, 8]
    assert [plan.end_epoch(k) for k in range(8) if plan.snapshots(k)] == [0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2]
    assert plan.keras_epoch_of(1.5) == 6 and plan.validations_in(3) == 6


def test_an_epoch_that_does_not_divide_validates_at_the_next_batch_and_on_whole_epochs():
    plan = EpochPlan.for_job({"epochs": 2, "validation_interval": 0.5}, steps=7)
    assert [plan.end_epoch(k) for k in range(plan.keras_epochs) if plan.validates(k)] == [0.5714, 1, 1.5714, 2]


def test_the_last_epoch_always_validates_and_snapshots():
    plan = EpochPlan.for_job({"epochs": 3, "validation_interval": 2, "snapshot_interval": 2}, steps=4)
    assert [k + 1 for k in range(3) if plan.validates(k)] == [2, 3] == [k + 1 for k in range(3) if plan.snapshots(k)]


def test_a_chart_window_can_span_sub_epochs():
    from digits_engine.training.callbacks import WindowMeans
    window = WindowMeans()
    window.add(2, {"loss": 3.0})  # a sub-epoch of losses 4, 2 ends without a point
    window.reset()
    assert window.take(1, {"loss": 6.0}) == {"loss": pytest.approx(4.0)}  # 4, 2, then 6


# ------------------------------------------------------------------ the form

def test_the_form_refuses_a_crop_larger_than_the_images_and_a_zero_interval(jobs_dir, image_folder):
    ds = create_dataset(image_folder)
    code, _, err = run_cli("model", "train", "--dataset", ds, "--name", "m", "--crop-size", 20)
    assert code == 2 and "--crop-size" in err and "(20x20) must fit in the dataset's 16x16 images" in err
    code, _, err = run_cli("model", "train", "--dataset", ds, "--name", "m", "--validation-interval", 0)
    assert code == 2 and "--validation-interval" in err and "more than 0" in err
    code, _, err = run_cli("model", "train", "--dataset", ds, "--name", "m", "--mean-subtraction", "median")
    assert code == 2 and "--mean-subtraction" in err


# ------------------------------------------------------------------ the input pipeline (in this process)

def test_the_pipeline_crops_and_augments_training_batches_reproducibly(jobs_dir, image_folder):
    from digits_engine.training.input_pipeline import make_dataset
    ds = jobs_dir / create_dataset(image_folder)
    encoding = json.loads((ds / "stats.json").read_text())["image"]["encoding"]

    def batches(split, seed, changes):
        pipeline = make_dataset(ds / split, (16, 16, 3), encoding, 8, shuffle=False, seed=seed, crop=12,
                                train_changes=changes)
        return [x.numpy() for x, _ in pipeline]
    options = {"aug_flip": "horizontal", "aug_noise": 0.05}
    first, again, other = batches("train", 1, options), batches("train", 1, options), batches("train", 2, options)
    assert first[0].shape == (8, 12, 12, 3) and len(first) == 4
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], other[0])
    plain = batches("train", 1, {})  # random crops only: whole pixel values, no noise
    assert np.array_equal(plain[0], np.rint(plain[0])) and not np.array_equal(plain[0], first[0])
    val = batches("val", 1, None)
    whole = make_dataset(ds / "val", (16, 16, 3), encoding, 8, shuffle=False)
    assert np.array_equal(val[0], next(iter(whole))[0].numpy()[:, 2:14, 2:14])  # the centre


# ------------------------------------------------------------------ real workers

def test_snapshot_interval_2_over_4_epochs_keeps_2_snapshots(jobs_dir, image_folder):
    ds = create_dataset(image_folder)
    model = train(ds, "--snapshot-interval", 2, epochs=4)
    assert snapshot_names(jobs_dir, model["id"]) == ["epoch_2.keras", "epoch_4.keras"]
    assert validated_at(jobs_dir, model["id"]) == [1, 2, 3, 4]


def test_validation_every_half_epoch(jobs_dir, image_folder):
    ds = create_dataset(image_folder)  # 27 training images, batches of 8: 4 steps an epoch
    model = train(ds, "--validation-interval", 0.5, "--snapshot-interval", 0.5, epochs=2)
    assert validated_at(jobs_dir, model["id"]) == [0.5, 1, 1.5, 2]
    assert snapshot_names(jobs_dir, model["id"]) == ["epoch_0.5.keras", "epoch_1.keras", "epoch_1.5.keras",
                                                    "epoch_2.keras"]
    whole = [r for r in records(jobs_dir, model["id"]) if "time/epoch_seconds" in r]
    assert [r["epoch"] for r in whole] == [1, 2]
    epochs = [r["epoch"] for r in records(jobs_dir, model["id"])]
    assert epochs == sorted(set(epochs)) and epochs[-1] == 2
    code, out, err = run_cli("classify", model["id"], image_folder / "circle" / "000.png", "--epoch", "1.5", "--json")
    assert code == 0, err


def test_resume_from_a_half_epoch_snapshot(jobs_dir, image_folder):
    ds = create_dataset(image_folder)
    code, out, err = run_cli("model", "train", "--dataset", ds, "--batch-size", 8, "--name", "m", "--epochs", 12,
                             "--seed", 3, "--validation-interval", 0.5, "--snapshot-interval", 0.5, "--json")
    assert code == 0, err
    model = json.loads(out)["id"]
    folder = jobs_dir / model / "snapshots"
    wait_for(lambda: (folder / "epoch_1.5.keras").exists(), WAIT, "the snapshot of epoch 1.5")
    assert run_cli("jobs", "abort", model)[0] == 0
    wait_for(lambda: status(jobs_dir, model)["state"] == "Aborted", WAIT, "the abort")
    for path in folder.glob("epoch_*.keras"):  # as if the abort had come right after epoch 1.5
        if float(path.name[6:-6]) > 1.5:
            path.unlink()
    code, out, err = run_cli("jobs", "resume", model, "--wait", "--json")
    assert code == 0, err + out
    assert json.loads(out)["status"] == "Done"
    assert "resuming from the snapshot of epoch 1.5" in (jobs_dir / model / "log.txt").read_text()
    assert validated_at(jobs_dir, model) == [k / 2 if k % 2 else k // 2 for k in range(1, 25)]  # no gap, no repeat
    assert snapshot_names(jobs_dir, model)[-1] == "epoch_12.keras"


def test_no_shuffle_trains(jobs_dir, image_folder):
    ds = create_dataset(image_folder)
    model = train(ds, "--no-shuffle")
    assert model["params"]["shuffle"] is False


@pytest.mark.parametrize("mode", ["image", "pixel", "none"])
def test_each_mean_subtraction_trains_and_classifies(jobs_dir, image_folder, mode):
    ds = create_dataset(image_folder)
    model = train(ds, "--mean-subtraction", mode, "--crop-size", 12 if mode == "image" else "")
    assert model["params"]["mean_subtraction"] == mode
    code, out, err = run_cli("classify", model["id"], image_folder / "square" / "001.png", "--json")
    assert code == 0, err  # the snapshot reloads without custom objects
    assert len(json.loads(out)["predictions"]) == 3


def test_random_crop_trains_and_classify_gives_the_network_the_centre(jobs_dir, image_folder):
    ds = create_dataset(image_folder)
    model = train(ds, "--crop-size", 12, "--seed", 4, epochs=2)
    info = json.loads((jobs_dir / model["id"] / "model.json").read_text())
    assert info["crop"] == 12 and info["image"]["width"] == 16
    code, out, err = run_cli("classify", model["id"], image_folder / "triangle" / "002.png", "--json")
    assert code == 0, err
    assert json.loads(out)["predictions"][0]["label"] in ("circle", "square", "triangle")


def test_augmentation_on_trains(jobs_dir, image_folder):
    ds = create_dataset(image_folder)
    model = train(ds, *ALL_AUGMENTATION, "--crop-size", 14, epochs=2)
    assert model["params"]["aug_flip"] == "both" and model["params"]["aug_rot90"] is True
    assert np.isfinite(model["metrics"]["train/loss"])


def test_segmentation_crops_and_augments_masks_alike_and_infers_on_the_centre(jobs_dir, tmp_path, capsys):
    pytest.importorskip("digits_sunnybrook")
    from test_segmentation import create_dataset as create_lv_dataset, make_study
    images, contours = make_study(tmp_path / "study", n=16)
    dataset = create_lv_dataset(capsys, images, contours)
    code, _, err = run_cli("model", "train", "--dataset", dataset["id"], "--name", "u", "--crop-size", 30)
    assert code == 2 and "divisible by 4" in err
    code, out, err = run_cli("model", "train", "--dataset", dataset["id"], "--name", "u", "--epochs", 1,
                             "--batch-size", 6, "--crop-size", 24, "--aug-flip", "both", "--aug-rot90",
                             "--aug-rotation", 15, "--aug-scale", 0.1, "--aug-contrast", 0.2, "--wait", "--json")
    assert code == 0, err + out
    model = json.loads(out)
    assert model["status"] == "Done" and 0 <= model["metrics"]["val/mean_iou"] <= 1
    result = tmp_path / "result.npz"
    code, out, err = run_cli("infer", model["id"], "--option", f"dicom_file={images / 'IM-0001-0003.dcm'}",
                             "--output", result, "--json")
    assert code == 0, err
    with np.load(result) as answer:
        assert answer["inputs"].shape == (1, 24, 24, 1) and answer["outputs"].shape == (1, 24, 24, 2)
