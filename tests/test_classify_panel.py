"""The single-image panel of the model page (app/classify_widget.py), rendered by
AppTest against a real model: a dataset and a 2-epoch model made once per
module with the engine's CLI and real workers. Classifying runs
`digits classify --details` in a child process, as on a live page.
"""
import io
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from conftest import COLOURS, make_images
from digits_engine import cli
from digits_engine.job_store import JobStore
from test_pages import chart_titles, engine_env

MAIN = str(Path(__file__).resolve().parent.parent / "app" / "main.py")
CLASSIFY_S = 150  # the child process imports TensorFlow


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A jobs directory with a Done 2-epoch model `m` on 3 colour classes of 16x16 images."""
    root = tmp_path_factory.mktemp("jobs")
    images = make_images(tmp_path_factory.mktemp("images"), per_class=10)
    with pytest.MonkeyPatch.context() as mp:  # workers inherit this environment
        engine_env(mp, root)
        assert cli.main(["dataset", "create", "--folder", str(images), "--name", "d", "--wait"]) == 0
        dataset = JobStore(root).list("dataset")[0]
        assert cli.main(["model", "train", "--dataset", dataset.id, "--name", "m", "--epochs", "2",
                         "--batch-size", "8", "--wait"]) == 0
    return SimpleNamespace(root=root, images=images, model=JobStore(root).list("model")[0])


@pytest.fixture
def page(trained, monkeypatch):
    """The model page of `m`, with the classify panel (call it to run the app)."""
    engine_env(monkeypatch, trained.root)

    def open_page() -> AppTest:
        at = AppTest.from_file(MAIN, default_timeout=30)
        at.switch_page("../pages/model.py")
        at.query_params["job"] = trained.model.id
        return at.run()
    return open_page


def png_bytes(colour, size: int = 16) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def captions(at: AppTest) -> list[str]:
    return [caption for image in at.image for caption in image.captions]


def assert_fine(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def test_upload_shows_what_the_network_saw_the_top_classes_gradcam_and_layers(page, trained):
    at = page()
    key = trained.model.id
    assert at.radio(key=f"classify-source-{key}").value == "Upload"
    assert at.selectbox(key=f"classify-epoch-{key}").options == ["Latest", "Epoch 2", "Epoch 1"]
    at.file_uploader(key=f"classify-{key}").set_value(("big-red.png", png_bytes(COLOURS["circle"], 40), "image/png"))
    at.run(timeout=CLASSIFY_S)
    assert_fine(at)
    shown = captions(at)
    assert "Your image: 40x40" in shown
    assert any(c.startswith("As the network saw it: ") and "colour" in c for c in shown), shown
    top = [t for t in chart_titles(at) if t and t.startswith("Top ")]
    assert len(top) == 1 and top[0].startswith("Top 3: "), chart_titles(at)

    at.checkbox(key=f"classify-gradcam-{key}").check().run()  # from the session's result: no new run
    assert_fine(at)
    best = top[0].removeprefix("Top 3: ").split(" (")[0]
    assert f"Grad-CAM of {best}: red where the evidence is strongest" in captions(at), captions(at)

    at.checkbox(key=f"classify-layers-{key}").check().run()
    assert_fine(at)
    table = at.dataframe[-1].value
    assert list(table["layer"])[0] == "normalize" and list(table["layer"])[-1] == "logits"
    assert table.loc[table["layer"] == "logits", "output"].item() == "3"
    assert (table["parameters"] > 0).any() and table["activations max"].notna().all()
    layer = at.selectbox(key=f"classify-layer-{key}")
    assert layer.value == "normalize"
    tiles = [image for image in at.image if any(c.startswith("channel ") for c in image.captions)]
    assert len(tiles) == 1 and tiles[0].captions == ["channel 0", "channel 1", "channel 2"]  # the 3 colour planes
    layer.set_value("logits").run()
    assert_fine(at)
    assert "Activations (3 of 3 values)" in chart_titles(at)
    assert "Activations on this image" in chart_titles(at) and any(t.startswith("Weights [") for t in chart_titles(at))


def test_a_server_path_outside_the_data_roots_is_refused_with_the_roots(page, trained, monkeypatch, tmp_path):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    monkeypatch.setenv("DIGITS_DATA_ROOTS", str(allowed))
    at = page()
    key = trained.model.id
    at.radio(key=f"classify-source-{key}").set_value("Path on the server").run()
    assert not [u for u in at.file_uploader if u.key == f"classify-{key}"]
    at.text_input(key=f"classify-path-{key}").set_value(str(trained.images / "circle" / "000.png")).run()
    assert not at.exception
    assert len(at.error) == 1
    assert "outside the folders this server may read" in at.error[0].value
    assert str(allowed.resolve()) in at.error[0].value
    assert not [t for t in chart_titles(at) if t and t.startswith("Top ")]  # nothing was classified


def test_a_server_path_inside_the_roots_with_an_earlier_snapshot(page, trained, monkeypatch):
    monkeypatch.setenv("DIGITS_DATA_ROOTS", str(trained.images))
    at = page()
    key = trained.model.id
    at.radio(key=f"classify-source-{key}").set_value("Path on the server").run()
    at.text_input(key=f"classify-path-{key}").set_value("relative/cat.png").run()
    assert "is relative" in at.error[0].value
    at.text_input(key=f"classify-path-{key}").set_value(str(trained.images / "square" / "001.png"))
    at.selectbox(key=f"classify-epoch-{key}").set_value(1)
    at.run(timeout=CLASSIFY_S)
    assert_fine(at)
    assert "Your image: 16x16" in captions(at)
    assert [t for t in chart_titles(at) if t and t.startswith("Top 3: ")]
