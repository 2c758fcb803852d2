"""The New model form's live parts, rendered by AppTest over a real Done dataset and model:
the learning-rate curve, the augmentation preview, and the fields each network source needs."""
import json
import shutil

import pytest

from digits_engine import model_spec
from digits_engine.job_store import JobStore
from test_pages import (assert_fine, chart_titles, demo_dir, done_jobs, engine_env, open_page, texts,  # noqa: F401
                        with_jobs)

CURVE = "Learning rate over training"


def curve_traces(at) -> list[dict]:
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        if spec["layout"]["title"]["text"] == CURVE:
            return spec["data"]
    return []


def images(at) -> int:
    return sum(len(element.proto.imgs) for element in at.get("image"))


def test_the_learning_rate_curve_follows_the_policy_as_it_is_edited(with_jobs):
    at = open_page("new_model")
    assert_fine(at)
    [fixed] = curve_traces(at)
    assert set(fixed["y"]) == {0.01}
    at.selectbox(key="new_model.lr_policy").set_value("step").run()
    [step] = curve_traces(at)
    assert step["y"][0] == pytest.approx(0.01) and step["y"][-1] == pytest.approx(0.01 * 0.1 ** 3)
    at.text_input(key="new_model.lr").set_value("0.01, 0.05").run()  # a sweep: one curve per rate
    assert [t["name"] for t in curve_traces(at)] == ["lr 0.01", "lr 0.05"]
    at.text_input(key="new_model.lr_gamma").set_value("2").run()
    assert CURVE not in chart_titles(at)
    assert "Gamma must be between 0 and 1" in texts(at)


def test_the_augmentation_preview_shows_what_training_will_see(with_jobs):
    at = open_page("new_model")
    assert "No augmentation" in texts(at)
    assert not images(at)
    at.selectbox(key="new_model.aug_flip").set_value("horizontal").run()
    assert_fine(at)
    assert "First row: images from the dataset" in texts(at)
    assert images(at) == 6 * 4  # six samples: the originals, then three augmented rows


def test_custom_network_prefills_the_example_and_submits_the_code(with_jobs):
    before = {j.id for j in JobStore(with_jobs.root).list("model")}
    at = open_page("new_model")
    at.selectbox(key="new_model.network").set_value("custom").run()
    code = at.text_area(key="new_model.custom_code")
    assert "def build_model(input_shape, num_classes)" in code.value
    at.text_input(key="new_model.name").set_value("custom net").run()
    at.button(key="new_model.train").click().run()
    assert_fine(at)
    [new] = [j for j in JobStore(with_jobs.root).list("model") if j.id not in before]
    assert new.params["network"] == "custom" and "def build_model" in new.params["custom_code"]
    from digits_engine import job_actions
    job_actions.abort(new)  # the page test needs the job, not its training


def test_custom_network_is_hidden_when_switched_off(with_jobs, monkeypatch):
    monkeypatch.setenv("DIGITS_ALLOW_CUSTOM_CODE", "0")
    at = open_page("new_model")
    assert "custom" not in at.selectbox(key="new_model.network").options


def test_pretrained_offline_without_a_file_says_why(with_jobs, monkeypatch, tmp_path):
    monkeypatch.setenv("DIGITS_OFFLINE", "1")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    at = open_page("new_model")
    assert not at.get("checkbox") or "new_model.pretrained" not in [c.key for c in at.checkbox]
    at.selectbox(key="new_model.network").set_value("mobilenetv2").run()
    at.checkbox(key="new_model.pretrained").check().run()
    at.button(key="new_model.train").click().run()
    assert_fine(at)
    [message, *_] = [e.value for e in at.error]  # under the checkbox, before the form's summary
    assert "DIGITS_OFFLINE=1" in message and 'point "Weights file" to it' in message
    assert at.text_input(key="new_model.weights_file")


def test_previous_network_lists_models_and_their_snapshots(with_jobs):
    at = open_page("new_model")
    at.selectbox(key="new_model.network").set_value("previous").run()
    models = at.selectbox(key="new_model.previous_model")
    assert "m" in models.options  # labels: the model names
    models.set_value(with_jobs.model.id).run()
    assert_fine(at)
    assert at.selectbox(key="new_model.previous_epoch").options == ["Its last snapshot", "Epoch 1"]


def test_devices_say_cpu_without_a_gpu_and_list_gpus_with_them(with_jobs, monkeypatch):
    at = open_page("new_model")
    assert "no GPU that TensorFlow can use" in texts(at)
    monkeypatch.setenv("DIGITS_GPUS", "0,1")
    at = open_page("new_model")
    gpus = at.multiselect(key="new_model.gpu_choice")
    assert gpus.options == ["GPU 0", "GPU 1"]
    gpus.set_value(["1"]).run()
    assert at.session_state["new_model.gpus"] == "1"


def test_a_detection_dataset_brings_its_own_defaults(done_jobs, tmp_path, monkeypatch):
    from test_detection_training import detection_dataset
    engine_env(monkeypatch, tmp_path)
    shutil.copytree(done_jobs.dataset.dir, tmp_path / done_jobs.dataset.id)
    boxes = detection_dataset(tmp_path)
    at = open_page("new_model", dataset=boxes)
    assert_fine(at)
    detection = model_spec.task_defaults("detection")
    shown = {name: at.session_state[f"new_model.{name}"] for name in detection}
    assert shown == {name: value if isinstance(value, str) else str(value) for name, value in detection.items()}
    at.selectbox(key="new_model.dataset").set_value(done_jobs.dataset.id).run()
    assert_fine(at)
    assert (at.session_state["new_model.solver"], at.session_state["new_model.lr"]) == ("sgd", "0.01")
    # the engine applies them to blank fields only: the CLI and the API get them too
    assert model_spec.check({"dataset": boxes, "name": "b"}, JobStore())["solver"] == "adam"
    assert model_spec.check({"dataset": boxes, "name": "b", "solver": "sgd"}, JobStore())["solver"] == "sgd"
