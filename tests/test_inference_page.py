"""The "classify many" UI, rendered by Streamlit's AppTest against real
inference jobs: the model page's form that creates them
(app/classify_many_widget.py) and the inference page that shows their
progress, then their results (pages/inference.py,
app/inference_results_view.py), with the clickable confusion matrix
(app/confusion_chart.py).

One Done dataset and 1-epoch model per module, made with the engine's CLI;
two inference jobs (a dataset split, and a labelled list with an unreadable
image) start as soon as the model is done and run in real workers while the
form tests run. AppTest never fires `st.fragment(run_every=...)` timers, so a
test that waits for a job calls `.run()` again.
"""
import base64
import importlib.util
import io
import json
import re
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.testing.v1 import AppTest

from conftest import COLOURS, make_images, stop_workers
from digits_engine import cli, inference_results, inference_spec, job_actions
from digits_engine.job_state import JobState
from digits_engine.job_store import JobStore
from test_pages import engine_env

pytestmark = pytest.mark.timeout(300)
APP = Path(__file__).resolve().parent.parent / "app"
MAIN = str(APP / "main.py")  # AppTest resolves relative paths against this file, not the cwd
PAGES = {"model": "../pages/model.py", "inference": "../pages/inference.py"}
LABELS = ["circle", "square", "triangle"]
NO_LABELS = ("No true labels were given, so there is no accuracy: give a text list with labels, "
             "or a dataset split, to measure it.")


# --------------------------------------------------------------------------- helpers

def app_module(name: str):
    """A module of app/ (which the app, not the tests, has on sys.path), loaded from its file."""
    spec = importlib.util.spec_from_file_location(f"app.{name}", APP / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


confusion_chart = app_module("confusion_chart")


def png(colour, size: int = 16) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def open_page(page: str, **query) -> AppTest:
    """Run the app (app/main.py, with its navigation) on `page`, with ?key=value query parameters."""
    at = AppTest.from_file(MAIN, default_timeout=30)
    at.switch_page(PAGES[page])
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def assert_fine(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def walk(node):
    """Every element under `node`, depth first, in page order."""
    for child in getattr(node, "children", {}).values():
        yield child
        yield from walk(child)


def next_to(at: AppTest, kind: str, value: str):
    """The element that directly follows the `kind` element whose value (or key) is `value`, or None."""
    for element in [at.main, *walk(at.main)]:
        siblings = list(getattr(element, "children", {}).values())
        for node, after in zip(siblings, siblings[1:] + [None]):
            if node.type == kind and value in (getattr(node, "key", None), getattr(node, "value", None)):
                return after
    raise AssertionError(f"no {kind} {value!r} on the page")


def images_after(at: AppTest, kind: str, value: str) -> int | None:
    """How many images the st.html grid right after that element shows; None when no grid follows."""
    after = next_to(at, kind, value)
    return after.value.count("<img") if after is not None and after.type == "html" else None


def metrics(at: AppTest) -> dict:
    return {m.label: m.value for m in at.metric}


def plotly_array(value) -> np.ndarray:
    """An array of a plotly JSON spec: a list, or plotly 6's typed array {dtype, bdata, shape}."""
    if isinstance(value, dict) and "bdata" in value:
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        shape = [int(n) for n in str(value.get("shape", len(flat))).split(",")]
        return flat.reshape(shape)
    return np.asarray(value)


def inference_jobs(root: Path) -> dict:
    return {job.id: job for job in JobStore(root).list("inference")}


def done(job) -> None:
    assert job_actions.wait(job, timeout=150) is JobState.DONE, job.log_tail()


def click_cell(at: AppTest, true: str, predicted: str) -> AppTest:
    """What the browser sends when a person clicks a cell: the chart's selection, with the other widgets'
    values (AppTest has no plotly widget, so the chart's WidgetState is added by hand)."""
    [chart] = at.get("plotly_chart")
    states = at.main.root.get_widget_states()
    click = WidgetState(id=chart.proto.id)
    click.string_value = json.dumps({"selection": {  # st.plotly_chart's value is a JSON string
        "points": [{"x": predicted, "y": true, "curve_number": 1}], "point_indices": [0], "box": [], "lasso": []}})
    states.widgets.append(click)
    return at._run(states)  # AppTest's own rerun, with these widget states


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A Done dataset `d` (3 classes x 12 images, 16x16), a Done 1-epoch model `m`, and two inference jobs
    started (not awaited): the val split, and a labelled list of 3 images plus a corrupt .png."""
    root = tmp_path_factory.mktemp("inference_page")
    jobs = root / "jobs"
    with pytest.MonkeyPatch.context() as mp:  # workers inherit this environment
        engine_env(mp, jobs)
        images = make_images(root / "images")
        assert cli.main(["dataset", "create", "--folder", str(images), "--name", "d", "--wait"]) == 0
        store = JobStore()
        dataset = store.list("dataset")[0]
        assert cli.main(["model", "train", "--dataset", dataset.id, "--name", "m", "--epochs", "1",
                         "--batch-size", "8", "--wait"]) == 0
        model = store.list("model")[0]
        split = inference_spec.create({"model": model.id, "dataset": dataset.id, "split": "val"}, store)
        broken = root / "broken.png"
        broken.write_bytes(png((1, 2, 3))[:40])  # a PNG header and then nothing
        listed = root / "list.txt"
        listed.write_text("".join(f"{images / name / '000.png'} {name}\n" for name in LABELS) + f"{broken} circle\n")
        from_list = inference_spec.create({"model": model.id, "list_file": str(listed)}, store)
        yield SimpleNamespace(root=root, jobs=jobs, images=images, store=store, dataset=dataset, model=model,
                              split=split, from_list=from_list, broken=broken)
        stop_workers(jobs)


@pytest.fixture
def env(trained, monkeypatch):
    """This test's environment (and its workers'): the module's jobs directory."""
    engine_env(monkeypatch, trained.jobs)
    return trained


# --------------------------------------------------------------------------- the chart, without a page

def test_figure_is_a_heatmap_of_row_shares_under_clickable_cells():
    counts = [[3, 1, 0], [0, 0, 0], [1, 0, 4]]  # nothing of class "square" was seen
    fig = json.loads(confusion_chart.figure(counts, LABELS).to_json())
    heatmap, cells = fig["data"]
    assert (heatmap["type"], cells["type"]) == ("heatmap", "scatter")
    assert plotly_array(heatmap["text"]).tolist() == counts
    assert np.allclose(plotly_array(heatmap["z"]), [[0.75, 0.25, 0], [0, 0, 0], [0.2, 0, 0.8]])
    assert heatmap["x"] == heatmap["y"] == LABELS
    # one invisible marker per cell, x the prediction and y the true class, carrying its count
    assert list(zip(cells["y"], cells["x"])) == [(t, p) for t in LABELS for p in LABELS]
    assert plotly_array(cells["customdata"]).tolist() == [n for row in counts for n in row]
    assert cells["marker"]["opacity"] == 0 and cells["mode"] == "markers"
    layout = fig["layout"]
    assert layout["yaxis"]["autorange"] == "reversed"  # the first class on the top row, as in a table
    assert layout["xaxis"]["side"] == "top" and layout["clickmode"] == "event+select"
    assert layout["height"] == confusion_chart.size_px(3) and layout["width"] > layout["height"]


@pytest.mark.parametrize("event, cell", [
    ({"selection": {"points": [{"x": "square", "y": "circle", "curve_number": 1}]}}, ("circle", "square")),
    ({"selection": {"points": [{"x": 7, "y": 2}, {"x": "a", "y": "b"}]}}, ("2", "7")),  # the first point, as text
    ({"selection": {"points": [], "box": [], "lasso": []}}, None),
    ({}, None),
    (None, None),
])
def test_clicked_cell_reads_the_selection(event, cell):
    assert confusion_chart.clicked_cell(event) == cell


# --------------------------------------------------------------------------- the inference page, no job named

def test_inference_page_without_jobs_points_to_the_model_page(jobs_dir):
    at = open_page("inference")
    assert_fine(at)
    assert at.title[0].value == "Inference"
    assert [i.value for i in at.info] == ["No inference jobs yet."]
    link = at.page_link[-1]
    assert link.value == "Classify many images from a model's page" and link.proto.page == "model"


# --------------------------------------------------------------------------- the model page's form

def test_model_page_classifies_a_split_and_opens_the_job(env):
    before = inference_jobs(env.jobs)
    at = open_page("model", job=env.model.id)
    assert_fine(at)
    assert "Classify many images" in [s.value for s in at.subheader]
    assert [t.label for t in at.tabs] == ["A dataset split", "A text list on the server", "Upload images"]
    snapshot = at.selectbox(key="classify_many.epoch")
    assert snapshot.value is None and snapshot.options == ["Latest", "Epoch 1"]
    assert at.selectbox(key="classify_many.dataset").value == env.dataset.id  # the model's own dataset
    snapshot.set_value(1)
    at.selectbox(key="classify_many.split").set_value("train")
    at.button(key="classify_many.run_dataset").click().run()
    assert_fine(at)
    [job] = [job for job_id, job in inference_jobs(env.jobs).items() if job_id not in before]
    assert job.parents == [env.model.id]
    assert job.params == {"model": env.model.id, "epoch": 1, "source": "dataset", "list_file": None,
                          "dataset": env.dataset.id, "split": "train", "batch_size": 64, "top": 5,
                          "images": [], "uploads": []}
    assert at.query_params["job"] in (job.id, [job.id])  # the app switched to the job's page
    assert at.title[0].value == job.name == "m on d (train)"
    done(job)
    at.switch_page(PAGES["inference"]).run()  # AppTest reruns the page it was switched to: follow the app
    assert_fine(at)
    assert metrics(at)["Images"] == str(inference_results.load(job)["count"])
    assert [link.proto.query_string for link in at.page_link if link.value == "Model: m"] == [f"job={env.model.id}"]
    # back on the model page, the run is among the earlier ones
    at = open_page("model", job=env.model.id)
    [runs] = [e for e in at.expander if e.label.startswith("Earlier runs")]
    links = [link for link in runs.get("page_link") if link.proto.query_string == f"job={job.id}"]
    assert len(links) == 1 and links[0].proto.page == "inference" and "[Done]" in links[0].value


def test_list_tab_refuses_a_bad_list_and_creates_nothing(env, tmp_path):
    before = set(inference_jobs(env.jobs))
    elephants = tmp_path / "elephants.txt"
    elephants.write_text(f"{env.images / 'circle' / '000.png'} elephant\n")
    at = open_page("model", job=env.model.id)
    cases = [("", "Give the list file: one `path [label]` line per image."),
             ("list.txt", "Give an absolute path on the server; 'list.txt' is relative."),
             ("/no/such/list.txt", "The file /no/such/list.txt does not exist on the server."),
             (str(tmp_path), f"{tmp_path} is a folder, not a file."),
             (str(elephants), "line 1: 'elephant' is neither a class of the model (circle, square, triangle)")]
    for path, message in cases:
        at.text_input(key="classify_many.list_file").set_value(path)
        at.button(key="classify_many.run_list").click().run()
        assert not at.exception, [e.value for e in at.exception]
        assert len(at.error) == 1 and message in at.error[0].value, (path, [e.value for e in at.error])
        assert at.title[0].value == "m"  # still the model page
    assert set(inference_jobs(env.jobs)) == before


def test_uploads_tab_creates_a_job_with_its_files_and_shows_no_accuracy(env):
    before = inference_jobs(env.jobs)
    at = open_page("model", job=env.model.id)
    assert at.button(key="classify_many.run_uploads").disabled  # nothing uploaded yet
    red, blue = png(COLOURS["circle"]), png(COLOURS["triangle"])
    at.file_uploader(key="classify_many.uploads").set_value([("red.png", red, "image/png"),
                                                             ("blue.png", blue, "image/png")]).run()
    at.button(key="classify_many.run_uploads").click().run()
    assert_fine(at)
    [job] = [job for job_id, job in inference_jobs(env.jobs).items() if job_id not in before]
    assert job.params["source"] == "images" and job.params["uploads"] == ["red.png", "blue.png"]
    assert (job.dir / "uploads" / "red.png").read_bytes() == red
    assert (job.dir / "uploads" / "blue.png").read_bytes() == blue
    assert at.title[0].value == job.name == "m on 2 images"
    done(job)
    at.switch_page(PAGES["inference"]).run()
    assert_fine(at)
    shown = metrics(at)
    assert shown["Images"] == "2" and not [label for label in shown if "accuracy" in label]
    assert NO_LABELS in [c.value for c in at.caption]
    assert not at.get("plotly_chart")
    headings = [s.value for s in at.subheader]
    assert "Confusion matrix" not in headings and "Per class" not in headings and not at.dataframe
    assert headings[-1] == "Most confident per class"
    top = inference_results.load(job)["top_per_class"]
    label = at.selectbox(key="results.top_class").value
    assert images_after(at, "selectbox", "results.top_class") == len(top[label]) > 0
    assert [b.label for b in at.download_button] == ["Download the predictions (CSV)"]  # no confusion.csv


# --------------------------------------------------------------------------- results of a dataset split

def test_results_of_a_dataset_split(env):
    job = env.split
    done(job)
    results = inference_results.load(job)
    confusion = np.array(results["confusion"])
    at = open_page("inference", job=job.id)
    assert_fine(at)
    assert at.title[0].value == job.name == "m on d (val)"
    shown = metrics(at)
    assert shown["Images"] == str(results["count"]) == str(confusion.sum())
    assert shown["Top-1 accuracy"] == f"{results['top1']:.1%}"
    assert shown["Top-3 accuracy"] == "100.0%"  # three classes: the true one is always among them
    table = at.dataframe[0].value
    assert list(table.columns) == ["Label", "Precision", "Recall", "F1", "Support"]
    assert table["Label"].tolist() == LABELS and table["Support"].tolist() == confusion.sum(1).tolist()
    assert np.allclose(table["Recall"], [row["recall"] for row in results["per_class"]])
    # the matrix: counts as text, shares of the row as colour, a clickable marker per cell
    [chart] = at.get("plotly_chart")
    heatmap, cells = json.loads(chart.proto.spec)["data"]
    assert (heatmap["type"], cells["type"]) == ("heatmap", "scatter")
    assert plotly_array(heatmap["text"]).tolist() == results["confusion"]
    assert np.allclose(plotly_array(heatmap["z"]), confusion / confusion.sum(1, keepdims=True))
    assert chart.proto.selection_mode  # a click selects a point
    # a cell picked by hand: its count and that many images
    true, predicted = np.unravel_index(confusion.argmax(), confusion.shape)
    at.selectbox(key="results.cell_true").set_value(LABELS[true])
    at.selectbox(key="results.cell_predicted").set_value(LABELS[predicted]).run()
    assert_fine(at)
    count = int(confusion[true, predicted])
    caption = f"{count} image(s) of {LABELS[true]} predicted as {LABELS[predicted]}"
    assert images_after(at, "caption", caption) == count > 0
    # an empty cell says 0 and shows none
    empty = np.argwhere(confusion == 0)
    if len(empty):
        at.selectbox(key="results.cell_true").set_value(LABELS[empty[0][0]])
        at.selectbox(key="results.cell_predicted").set_value(LABELS[empty[0][1]]).run()
        assert images_after(at, "caption", f"0 image(s) of {LABELS[empty[0][0]]} predicted as "
                                           f"{LABELS[empty[0][1]]}") is None
    # the mistakes, most confident first
    mistakes = results["mistakes"]
    assert len(mistakes) == confusion.sum() - np.trace(confusion)
    if mistakes:
        assert images_after(at, "subheader", "Misclassified, most confident first") == len(mistakes)
    else:
        assert next_to(at, "subheader", "Misclassified, most confident first").value == "No mistakes."
    # the most confident images of a class
    top_class = at.selectbox(key="results.top_class")
    assert top_class.options == [label for label in LABELS if results["top_per_class"][label]]
    last = top_class.options[-1]
    top_class.set_value(last).run()
    assert images_after(at, "selectbox", "results.top_class") == len(results["top_per_class"][last])
    assert [b.label for b in at.download_button] == ["Download the predictions (CSV)",
                                                     "Download the confusion matrix (CSV)"]
    assert not [e for e in at.expander if "could not be read" in e.label]


def test_clicking_a_confusion_cell_selects_it(env):
    job = env.split
    done(job)
    confusion = np.array(inference_results.load(job)["confusion"])
    at = open_page("inference", job=job.id)
    assert (at.selectbox(key="results.cell_true").value, at.selectbox(key="results.cell_predicted").value) == (
        "circle", "circle")  # before any click: the first cell
    at = click_cell(at, "triangle", "square")
    assert_fine(at)
    assert at.selectbox(key="results.cell_true").value == "triangle"
    assert at.selectbox(key="results.cell_predicted").value == "square"
    count = int(confusion[2, 1])
    assert images_after(at, "caption", f"{count} image(s) of triangle predicted as square") == (count or None)
    # a selectbox changed by hand afterwards wins until the next click
    at.selectbox(key="results.cell_predicted").set_value("triangle").run()
    assert at.selectbox(key="results.cell_predicted").value == "triangle"
    assert images_after(at, "caption", f"{confusion[2, 2]} image(s) of triangle predicted as triangle") == (
        confusion[2, 2] or None)


def test_unreadable_images_are_listed_in_the_errors_expander(env):
    job = env.from_list
    done(job)
    at = open_page("inference", job=job.id)
    assert_fine(at)
    shown = metrics(at)
    assert shown["Images"] == "3" and "Top-1 accuracy" in shown
    [expander] = [e for e in at.expander if "could not be read" in e.label]
    assert expander.label == "1 image(s) could not be read and were skipped"
    errors = expander.dataframe[0].value
    assert errors["image"].tolist() == [str(env.broken)] and errors["error"][0]


# --------------------------------------------------------------------------- while it runs

def test_a_running_job_shows_its_progress_then_its_results(env, tmp_path):
    listed = tmp_path / "long.txt"
    listed.write_text(f"{env.images / 'square' / '003.png'} square\n" * 50_000)  # far more than the page takes
    job = inference_spec.create({"model": env.model.id, "list_file": str(listed), "batch_size": 16}, env.store)
    deadline = time.monotonic() + 120
    while not (job.state is JobState.RUNNING and job.status().get("progress", 0) >= 0.02):  # the bar shows 2%
        assert job.state.is_active and time.monotonic() < deadline, job.log_tail()
        time.sleep(0.05)
    try:
        at = open_page("inference", job=job.id)
        assert_fine(at)
        assert any(m.value.startswith(":blue-badge[Running]") for m in at.markdown)
        [bar] = at.get("progress")
        assert re.fullmatch(r"\d+% of the images( · about .* left)?", bar.proto.text), bar.proto.text
        assert 0 < bar.proto.value < 100
        assert "Images" not in metrics(at) and not at.get("plotly_chart")  # no results yet
        assert not at.button(key="abort").disabled
    finally:
        job_actions.abort(job, env.store)
    assert job_actions.wait(job, timeout=60) is JobState.ABORTED
    at.run()
    assert not at.exception
    results = inference_results.load(job)
    assert results["complete"] is False and metrics(at)["Images"] == f"{results['count']:,}"
    assert not at.get("progress")


def test_inference_page_without_a_job_lists_them(env):
    at = open_page("inference")
    assert_fine(at)
    links = {link.proto.query_string: link.value for link in at.page_link}
    for job in (env.split, env.from_list):
        assert links[f"job={job.id}"] == f"{job.name} · Done"
