"""Where a model's network comes from, with real workers through the CLI: pretrained
weights from a file (and the form's message when they cannot be had offline), fine-tuning
a previous model's snapshot on other classes, and custom network code (trained, broken,
switched off)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import make_images
from test_jobs_integration import WAIT, create_dataset, run_cli, status, wait_ended
from digits_engine import model_spec
from digits_engine.atomic_json import read_json
from digits_engine.fields import FormErrors
from digits_engine.job_store import JobStore

pytestmark = pytest.mark.timeout(400)

EXAMPLE = model_spec.CUSTOM_NETWORK_EXAMPLE


def train(dataset: str, *extra, wait: bool = True) -> dict:
    code, out, err = run_cli("model", "train", "--dataset", dataset, "--batch-size", 8, "--name", "m", "--epochs", 1,
                             *extra, *(["--wait"] if wait else []), "--json")
    assert code == 0 and out, err + out
    return json.loads(out)


def model_info(jobs_dir, model_id: str) -> dict:
    return json.loads((jobs_dir / model_id / "model.json").read_text())


def load_snapshot(jobs_dir, model_id: str, epoch: int):
    import keras
    return keras.models.load_model(jobs_dir / model_id / "snapshots" / f"epoch_{epoch}.keras", compile=False)


def first_conv_kernel(model) -> np.ndarray | None:
    """The kernel of the first Conv2D, looking into nested models (an application, a custom network)."""
    import keras
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            return layer.get_weights()[0]
        if isinstance(layer, keras.Model) and (kernel := first_conv_kernel(layer)) is not None:
            return kernel
    return None


def form(dataset: str, **fields) -> dict:
    return model_spec.check({"dataset": dataset, "name": "m", **fields}, JobStore())


def form_errors(dataset: str, **fields) -> dict:
    with pytest.raises(FormErrors) as caught:
        form(dataset, **fields)
    return caught.value.errors


# ------------------------------------------------------------------ pretrained

def test_pretrained_weights_from_a_file(jobs_dir, image_folder, tmp_path):
    import keras
    from digits_engine.training.model_source import new_model

    file_model = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3))
    weights = tmp_path / "mobilenet_notop.weights.h5"
    file_model.save_weights(weights)
    ds = create_dataset(image_folder)
    model = train(ds, "--network", "mobilenetv2", "--pretrained", "--weights-file", weights, "--lr", "1e-9")
    assert model["status"] == "Done"
    assert model_info(jobs_dir, model["id"])["started_from"] == {"kind": "pretrained", "weights": str(weights)}

    # the worker's model starts from exactly the file's weights, behind the ImageNet input layer
    built = new_model(JobStore().get(model["id"]), (16, 16, 3), read_json(jobs_dir / ds / "stats.json"))
    base = next(layer for layer in built.layers if isinstance(layer, keras.Model))
    for got, expected in zip(base.get_weights(), file_model.get_weights(), strict=True):
        np.testing.assert_array_equal(got, expected)
    assert built.get_layer("imagenet_input") and built.get_layer("upsample").output.shape[1:3] == (32, 32)
    trained = load_snapshot(jobs_dir, model["id"], 1)  # a learning rate of 1e-9 (the least the form takes) barely moves them
    np.testing.assert_allclose(first_conv_kernel(trained), first_conv_kernel(file_model), atol=1e-3)


def test_offline_without_a_weights_file_the_form_says_why(jobs_dir, image_folder, tmp_path, monkeypatch):
    keras_home = tmp_path / "keras"
    keras_home.mkdir()
    monkeypatch.setenv("KERAS_HOME", str(keras_home))  # an empty cache (DIGITS_OFFLINE=1 comes from jobs_dir)
    ds = create_dataset(image_folder)
    code, _, err = run_cli("model", "train", "--dataset", ds, "--name", "m", "--network", "resnet50", "--pretrained")
    name = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    assert code == 2 and "--pretrained" in err and "DIGITS_OFFLINE=1" in err and name in err, err
    assert '"Weights file"' in err and "from scratch" in err
    assert name in form_errors(ds, network="resnet50", pretrained=True)["pretrained"]

    (keras_home / "models").mkdir()
    (keras_home / "models" / name).write_bytes(b"weights")  # once in Keras' cache, offline is fine
    assert form(ds, network="resnet50", pretrained=True)["pretrained"] is True
    mobilenet = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"  # 16 px: upsampled, 224's
    assert mobilenet in form_errors(ds, network="mobilenetv2", pretrained=True)["pretrained"]

    assert "ResNet-50 and MobileNetV2" in form_errors(ds, network="resnet18", pretrained=True)["pretrained"]
    missing = form_errors(ds, network="resnet50", pretrained=True, weights_file=str(tmp_path / "none.h5"))
    assert "does not exist on the server" in missing["weights_file"]
    assert "tick" in form_errors(ds, network="resnet50", weights_file=str(tmp_path / "x.h5"))["weights_file"]


# ------------------------------------------------------------------ previous network

def test_fine_tune_a_previous_model_on_other_classes(jobs_dir, image_folder, tmp_path):
    from digits_engine.training import fine_tune

    three = create_dataset(image_folder, name="three")
    first = train(three, "--epochs", 2)
    two = create_dataset(make_images(tmp_path / "two", classes=("circle", "square")), name="two")
    tuned = train(two, "--network", "previous", "--previous-model", first["id"], "--previous-epoch", 1)
    assert tuned["status"] == "Done", tuned
    assert load_snapshot(jobs_dir, tuned["id"], 1).output_shape == (None, 2)
    started = model_info(jobs_dir, tuned["id"])["started_from"]
    assert started["kind"] == "previous" and started["model"] == first["id"] and started["epoch"] == 1
    assert started["head_replaced"] is True

    # at build time every weight but the head's is the snapshot's
    model, _ = fine_tune.load_previous(JobStore(), first["id"], 1, (16, 16, 3), 2)
    snapshot = load_snapshot(jobs_dir, first["id"], 1)
    np.testing.assert_array_equal(first_conv_kernel(model), first_conv_kernel(snapshot))
    assert model.get_layer("logits").get_weights()[0].shape[-1] == 2

    assert form(two, network="previous", previous_model=first["id"])["previous_epoch"] == 2  # blank: the last
    assert "epochs 1, 2" in form_errors(two, network="previous", previous_model=first["id"],
                                        previous_epoch=5)["previous_epoch"]
    assert "is a dataset" in form_errors(two, network="previous", previous_model=three)["previous_model"]
    code, out, _ = run_cli("dataset", "create", "--name", "big", "--folder", image_folder, "--width", 28,
                           "--height", 28, "--json")
    bigger = json.loads(out)["id"]  # still building: the size asked for is what the form checks
    message = form_errors(bigger, network="previous", previous_model=first["id"])["previous_model"]
    assert "16x16x3" in message and "28x28x3" in message
    wait_ended(jobs_dir, bigger)


# ------------------------------------------------------------------ custom network

def test_a_custom_network_trains(jobs_dir, image_folder, monkeypatch):
    monkeypatch.setenv("DIGITS_ALLOW_CUSTOM_CODE", "1")
    ds = create_dataset(image_folder)
    model = train(ds, "--network", "custom", "--custom-code", EXAMPLE, "--epochs", 2)
    assert model["status"] == "Done" and model["metrics"]["epoch"] == 2
    assert load_snapshot(jobs_dir, model["id"], 2).output_shape == (None, 3)
    assert JobStore().get(model["id"]).params["custom_code"] == EXAMPLE.strip()
    assert form(ds, network="lenet", custom_code=EXAMPLE)["custom_code"] is None  # the form's pre-fill is dropped


BROKEN = {
    "syntax": ("import keras\n\ndef build_model(input_shape, num_classes)\n    return None\n",
               "Custom network, line 3: expected ':'"),
    "exception": ("import keras\n\n\ndef build_model(input_shape, num_classes):\n    width = num_classes / 0\n",
                  "Custom network, line 5: build_model failed: ZeroDivisionError"),
    "shape": (EXAMPLE.replace("Dense(num_classes,", "Dense(num_classes + 1,"),
              "output shape is (None, 4); it must be (None, 3)"),
    "no function": ("import keras\n", "defines no function build_model(input_shape, num_classes)"),
}


def test_broken_custom_networks_end_with_what_and_where(jobs_dir, image_folder, monkeypatch):
    monkeypatch.setenv("DIGITS_ALLOW_CUSTOM_CODE", "1")
    ds = create_dataset(image_folder)
    assert EXAMPLE != BROKEN["shape"][0]
    jobs = {kind: train(ds, "--network", "custom", "--custom-code", code, wait=False)["id"]
            for kind, (code, _) in BROKEN.items()}
    for kind, job_id in jobs.items():
        assert wait_ended(jobs_dir, job_id) == "Error", kind
        assert BROKEN[kind][1] in status(jobs_dir, job_id)["error"], kind


def test_custom_code_switched_off(jobs_dir, image_folder, monkeypatch):
    ds = create_dataset(image_folder)
    monkeypatch.setenv("DIGITS_ALLOW_CUSTOM_CODE", "0")
    code, _, err = run_cli("model", "train", "--dataset", ds, "--name", "m", "--network", "custom",
                           "--custom-code", EXAMPLE)
    assert code == 2 and "--network" in err and "DIGITS_ALLOW_CUSTOM_CODE=0" in err, err
    assert model_spec.available_networks("classification")[-1] == "previous"

    monkeypatch.setenv("DIGITS_ALLOW_CUSTOM_CODE", "1")
    assert model_spec.available_networks("segmentation") == ("unet", "previous", "custom")
    store = JobStore()
    params = form(ds, network="custom", custom_code=EXAMPLE)
    params.pop("name"), params.pop("group"), params.pop("dataset")
    job = store.create("model", "made before the switch", params, parents=[ds])  # its worker runs after it
    env = {**os.environ, "DIGITS_ALLOW_CUSTOM_CODE": "0"}
    subprocess.run([sys.executable, "-m", "digits_engine.worker", job.id], env=env, timeout=WAIT, capture_output=True)
    ended = status(jobs_dir, job.id)
    assert ended["state"] == "Error" and "DIGITS_ALLOW_CUSTOM_CODE=0" in ended["error"]
    assert not (jobs_dir / job.id / "snapshots").exists()
