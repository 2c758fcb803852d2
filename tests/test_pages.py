"""Every page of the app, rendered by Streamlit's AppTest against real jobs.

The jobs are made by the engine's CLI with real worker processes on a tiny
generated image tree: one Done dataset and one Done model per module. Each
test points DIGITS_JOBS_DIR at either that directory or a fresh empty one.
AppTest runs the page scripts in this process; it never fires
`st.fragment(run_every=...)` timers, so a test that waits for a job calls
`.run()` again.
"""
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from digits_engine import cli, job_actions, model_spec
from digits_engine.job_state import JobState
from digits_engine.job_store import JobStore

ROOT = Path(__file__).resolve().parent.parent
MAIN = str(ROOT / "app" / "main.py")  # AppTest resolves relative paths against this file, not the cwd
PAGES = {name: f"../pages/{name}.py" for name in ("home", "new_dataset", "dataset", "new_model", "model", "system")}
CLASSES = ("circle", "square", "triangle")
COLOURS = {"circle": (220, 40, 40), "square": (40, 200, 40), "triangle": (40, 60, 230)}
ENGINE_SETTINGS = ("DIGITS_DATA_ROOTS", "DIGITS_TRAIN_SLOTS", "DIGITS_DATASET_SLOTS")


# --------------------------------------------------------------------------- helpers

def make_demo_tree(demo: Path, per_class: int = 10, size: int = 16) -> Path:
    """demo/train/<class>/<n>.png, each class a noisy image of its own colour."""
    rng = np.random.default_rng(0)
    for name in CLASSES:
        folder = demo / "train" / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            noise = rng.integers(-30, 30, (size, size, 3), dtype=np.int16)
            pixels = np.clip(np.array(COLOURS[name], np.int16) + noise, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{i:03d}.png")
    return demo


def png_bytes(colour=(220, 40, 40), size: int = 16) -> bytes:
    import io
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def open_page(page: str, **query) -> AppTest:
    """Run the app (app/main.py, with its navigation) on `page`, with ?key=value query parameters."""
    at = AppTest.from_file(MAIN, default_timeout=30)
    if page != "home":
        at.switch_page(PAGES[page])
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def walk(node):
    """Every element under `node`, depth first, in page order."""
    for child in getattr(node, "children", {}).values():
        yield child
        yield from walk(child)


def texts(at: AppTest) -> str:
    """All the words a person sees on the page (markdown, titles, alerts, metric and link labels), one a line."""
    out = []
    for element in walk(at.main):
        for attr in ("value", "label"):
            value = getattr(element, attr, None) if element.type not in ("text_input", "selectbox") else None
            if isinstance(value, str):
                out.append(value)
    return "\n".join(out)


def assert_fine(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def error_under(at: AppTest, key: str) -> str | None:
    """The text of the st.error that directly follows the widget `key` (the field's own message), or None."""
    for element in walk(at.main):
        siblings = list(getattr(element, "children", {}).values())
        for widget, after in zip(siblings, siblings[1:] + [None]):
            if getattr(widget, "key", None) == key:
                return after.value if after is not None and after.type == "error" else None
    raise AssertionError(f"no widget with key {key!r} on the page")


def chart_titles(at: AppTest) -> list[str]:
    titles = []
    for chart in at.get("plotly_chart"):
        title = json.loads(chart.proto.spec).get("layout", {}).get("title", {})
        titles.append(title.get("text") if isinstance(title, dict) else title)
    return titles


def engine_env(mp, root: Path) -> None:
    """Point the engine, and the workers it starts, at jobs directory `root`: scheduling settings at their
    defaults, CPU training, no internet."""
    mp.setenv("DIGITS_JOBS_DIR", str(root))
    mp.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    for name in ENGINE_SETTINGS:
        mp.delenv(name, raising=False)
    mp.setenv("DIGITS_GPUS", "none")
    mp.setenv("DIGITS_OFFLINE", "1")


def job_dirs(root: Path) -> list[Path]:
    return [d for d in root.iterdir() if (d / "job.json").exists()]


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    return make_demo_tree(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def done_jobs(tmp_path_factory, demo_dir):
    """A jobs directory holding a Done dataset `d` and a Done model `m`, made with the engine's CLI."""
    root = tmp_path_factory.mktemp("done_jobs")
    with pytest.MonkeyPatch.context() as mp:  # workers inherit this environment
        engine_env(mp, root)
        assert cli.main(["dataset", "create", "--folder", str(demo_dir / "train"), "--name", "d", "--wait"]) == 0
        dataset = JobStore(root).list("dataset")[0]
        assert cli.main(["model", "train", "--dataset", dataset.id, "--name", "m", "--epochs", "1",
                         "--batch-size", "8", "--wait"]) == 0
        model = JobStore(root).list("model")[0]
    return SimpleNamespace(root=root, dataset=dataset, model=model)


@pytest.fixture
def with_jobs(monkeypatch, done_jobs, demo_dir):
    engine_env(monkeypatch, done_jobs.root)
    monkeypatch.setenv("DIGITS_DEMO_DIR", str(demo_dir))
    return done_jobs


@pytest.fixture
def empty(jobs_dir, monkeypatch, demo_dir) -> Path:
    """A fresh, empty jobs directory (conftest's `jobs_dir` stops any worker left when the test ends)."""
    monkeypatch.setenv("DIGITS_DEMO_DIR", str(demo_dir))
    return jobs_dir


# --------------------------------------------------------------------------- no jobs yet

def test_home_without_jobs(empty):
    at = open_page("home")
    assert_fine(at)
    assert at.title[0].value == "DIGITS"
    assert [s.value for s in at.subheader] == ["Datasets", "Models"]
    assert [c.value for c in at.caption].count("None yet.") == 2
    assert {link.value for link in at.page_link} >= {"New dataset", "New model"}


def test_new_dataset_is_prefilled_with_the_demo_folder(empty, demo_dir):
    at = open_page("new_dataset")
    assert_fine(at)
    assert at.title[0].value == "New dataset"
    assert at.text_input(key="new_dataset.folder").value == str(demo_dir / "train")
    assert at.text_input(key="new_dataset.name").value == "shapes demo"
    assert not at.error
    assert job_dirs(empty) == []


def test_new_dataset_without_demo_data_starts_blank(empty, monkeypatch, tmp_path):
    monkeypatch.setenv("DIGITS_DEMO_DIR", str(tmp_path / "no-demo-here"))
    at = open_page("new_dataset")
    assert_fine(at)
    assert at.text_input(key="new_dataset.folder").value == ""
    assert at.text_input(key="new_dataset.name").value == ""


@pytest.mark.parametrize("page, words", [("dataset", "No datasets yet."), ("model", "No models yet.")])
def test_job_pages_without_jobs_point_to_the_form(empty, page, words):
    at = open_page(page)
    assert_fine(at)
    assert words in [i.value for i in at.info]
    link = at.page_link[-1]
    assert link.value == f"Create a {page}" and link.proto.page == f"new_{page}"


def test_new_model_without_datasets_says_to_make_one(empty):
    at = open_page("new_model")
    assert_fine(at)
    assert "there is none yet" in at.info[0].value
    assert not at.get("form")
    assert at.page_link[-1].value == "Create a dataset first"


def test_system_page(empty):
    at = open_page("system")
    assert_fine(at)
    assert [s.value for s in at.subheader] == ["Settings", "Plugins", "Devices", "Jobs directory", "Slots in use",
                                                     "Running and waiting jobs", "Versions"]
    plugins = at.dataframe[1].value
    assert {"image-classification", "image-segmentation", "all-raw-data"} <= set(plugins["id"])
    assert set(plugins[plugins["kind"] == "view"]["status"]) == {"loaded"}
    settings = dict(at.dataframe[0].value.itertuples(index=False))
    assert settings["DIGITS_JOBS_DIR"] == str(empty)
    assert settings["DIGITS_GPUS"] == "none (training on the CPU)"
    assert "Nothing is running." in [c.value for c in at.caption]
    versions = dict(at.dataframe[-1].value.itertuples(index=False))
    assert versions["streamlit"] != "not installed"


def test_system_page_with_a_bad_setting_says_which(empty, monkeypatch):
    monkeypatch.setenv("DIGITS_TRAIN_SLOTS", "many")
    at = open_page("system")
    assert_fine(at)
    assert "DIGITS_TRAIN_SLOTS" in at.error[0].value


# --------------------------------------------------------------------------- a Done dataset and a Done model

def test_home_lists_the_jobs(with_jobs):
    at = open_page("home")
    assert_fine(at)
    links = {link.value: link for link in at.page_link}
    for job, page in ((with_jobs.dataset, "dataset"), (with_jobs.model, "model")):
        assert links[job.name].proto.page == page
        assert links[job.name].proto.query_string == f"job={job.id}"
    badges = [m.value for m in at.markdown if "-badge[" in m.value]
    assert badges == [":green-badge[Done]"] * 2
    assert "Best val" in [c.value for c in at.caption]
    assert not at.get("progress")


def test_dataset_page_shows_the_summary(with_jobs):
    dataset = with_jobs.dataset
    at = open_page("dataset", job=dataset.id)
    assert_fine(at)
    assert at.title[0].value == "d"
    words = texts(at)
    assert dataset.id in words
    assert ":green-badge[Done]" in words
    assert "circle, square, triangle" in words
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Classes"] == "3"
    assert sum(int(metrics[f"{s} images"]) for s in ("Train", "Val", "Test")) == 30
    assert int(metrics["Train images"]) > 0
    assert chart_titles(at) == ["Images per class and split", "Source image sizes"]
    assert len(at.image) == 1  # the mean image
    table = at.dataframe[0].value  # images per class and split, with totals
    assert list(table.index) == ["circle", "square", "triangle", "all classes"]
    assert table.loc["all classes", "all splits"] == 30
    assert (table.loc["circle"] == table.loc["square"]).all()  # 10 of each, split alike
    link = next(link for link in at.page_link if link.value == "Train a model on this dataset")
    assert link.proto.page == "new_model" and link.proto.query_string == f"dataset={dataset.id}"
    assert at.button(key="abort").proto.disabled  # nothing to abort on a Done job


def test_model_page_shows_charts_and_classify(with_jobs):
    model = with_jobs.model
    at = open_page("model", job=model.id)
    assert_fine(at)
    assert at.title[0].value == "m"
    words = texts(at)
    assert ":green-badge[Done]" in words
    assert "Best val accuracy" in words
    assert "Dataset: d" in words
    titles = chart_titles(at)
    assert titles[0] == "Loss" and "Accuracy" in titles
    assert "Classify an image" in [s.value for s in at.subheader]
    assert at.file_uploader[0].label == "Image"
    assert at.button(key="abort").proto.disabled


def test_model_page_classifies_an_uploaded_image(with_jobs):
    at = open_page("model", job=with_jobs.model.id)
    at.file_uploader[0].set_value(("red.png", png_bytes(COLOURS["circle"]), "image/png"))
    at.run(timeout=150)  # the engine classifies in a child process that imports TensorFlow
    assert_fine(at)
    assert not [e.value for e in at.error]
    result_titles = [t for t in chart_titles(at) if t and t.startswith("Top ")]
    assert len(result_titles) == 1, chart_titles(at)
    assert any(name in result_titles[0] for name in CLASSES)


def test_dataset_link_opens_the_model_form_on_that_dataset(with_jobs):
    dataset = with_jobs.dataset
    at = open_page("new_model", dataset=dataset.id)
    assert_fine(at)
    assert at.title[0].value == "New model"
    assert at.selectbox(key="new_model.dataset").value == dataset.id
    assert at.text_input(key="new_model.name").value == "d model"
    assert at.text_input(key="new_model.epochs").value == "10"


@pytest.mark.parametrize("page", ["dataset", "model"])
def test_job_pages_without_an_id_list_the_jobs(with_jobs, page):
    at = open_page(page)
    assert_fine(at)
    job = getattr(with_jobs, page)
    links = [link for link in at.page_link if link.proto.query_string == f"job={job.id}"]
    assert [link.value for link in links] == [f"{job.name} · Done"]


@pytest.mark.parametrize("page, other", [("model", "dataset"), ("dataset", "model")])
def test_job_page_of_the_wrong_kind_switches_to_the_right_one(with_jobs, page, other):
    job = getattr(with_jobs, other)
    at = open_page(page, job=job.id)
    assert_fine(at)
    assert at.title[0].value == job.name
    assert at.query_params["job"] == [job.id] or at.query_params["job"] == job.id
    if other == "model":
        assert "Classify an image" in [s.value for s in at.subheader]
    else:
        assert "Train images" in [m.label for m in at.metric]


@pytest.mark.parametrize("page", ["dataset", "model"])
@pytest.mark.parametrize("bad_id", ["20990101-000000-000-dead", "../../etc", " "])
def test_job_page_with_a_bad_id_says_so(with_jobs, page, bad_id):
    at = open_page(page, job=bad_id)
    assert_fine(at)
    assert len(at.error) == 1 and "No job with id" in at.error[0].value
    assert [link.value for link in at.page_link][-1] == "Back to all jobs"
    assert not at.title


def test_system_page_with_jobs(with_jobs):
    at = open_page("system")
    assert_fine(at)
    settings = dict(at.dataframe[0].value.itertuples(index=False))
    assert settings["DIGITS_JOBS_DIR"] == str(with_jobs.root)
    assert "Nothing is running." in [c.value for c in at.caption]  # both jobs are Done


# --------------------------------------------------------------------------- forms

def test_new_dataset_with_empty_name_and_missing_folder_creates_nothing(empty):
    at = open_page("new_dataset")
    at.text_input(key="new_dataset.name").set_value("")
    at.text_input(key="new_dataset.folder").set_value("/no/such/folder")
    at.button(key="FormSubmitter:new_dataset-Create").click().run()
    assert_fine(at)
    assert error_under(at, "new_dataset.name") == "Dataset name is required."
    assert "not created" in at.error[-1].value
    assert at.title[0].value == "New dataset"
    assert job_dirs(empty) == []


def test_new_dataset_with_missing_folder_says_so_under_the_folder(empty):
    at = open_page("new_dataset")
    at.text_input(key="new_dataset.folder").set_value("/no/such/folder")
    at.button(key="FormSubmitter:new_dataset-Create").click().run()
    assert_fine(at)
    message = error_under(at, "new_dataset.folder")
    assert message and "/no/such/folder" in message and "does not exist" in message
    assert error_under(at, "new_dataset.name") is None
    assert job_dirs(empty) == []


def test_new_dataset_reports_every_bad_field_at_once(empty):
    at = open_page("new_dataset")
    at.text_input(key="new_dataset.name").set_value("")
    at.text_input(key="new_dataset.folder").set_value("/no/such/folder")
    at.button(key="FormSubmitter:new_dataset-Create").click().run()
    assert error_under(at, "new_dataset.name")
    assert error_under(at, "new_dataset.folder")


def test_new_dataset_advanced_error_opens_its_section(empty):
    at = open_page("new_dataset")
    at.text_input(key="new_dataset.width").set_value("wide")
    at.button(key="FormSubmitter:new_dataset-Create").click().run()
    assert_fine(at)
    assert "whole number" in error_under(at, "new_dataset.width")
    assert at.expander[0].proto.expanded
    assert job_dirs(empty) == []


def test_new_dataset_errors_clear_after_a_fix_and_the_app_opens_the_dataset(empty, demo_dir):
    at = open_page("new_dataset")
    at.text_input(key="new_dataset.name").set_value(" ")
    at.button(key="FormSubmitter:new_dataset-Create").click().run()
    assert error_under(at, "new_dataset.name")
    at.text_input(key="new_dataset.name").set_value("shapes demo")
    at.button(key="FormSubmitter:new_dataset-Create").click().run()
    assert_fine(at)
    [job_dir] = job_dirs(empty)
    assert json.loads((job_dir / "job.json").read_text())["params"]["folder"] == str(demo_dir / "train")
    assert at.query_params["job"] in (job_dir.name, [job_dir.name])
    assert at.title[0].value == "shapes demo"  # the dataset page
    assert not at.error


def test_new_dataset_valid_submit_builds_the_dataset(empty, demo_dir):
    at = open_page("new_dataset")  # the demo folder and name are pre-filled: one click
    at.button(key="FormSubmitter:new_dataset-Create").click().run()
    assert_fine(at)
    [job] = JobStore(empty).list()
    assert job.kind == "dataset" and job.name == "shapes demo"
    assert at.title[0].value == "shapes demo"
    assert job_actions.wait(job, timeout=120) is JobState.DONE
    # AppTest reruns the page it was last switched to, not the one the app switched to: follow the app.
    at.switch_page(PAGES["dataset"]).run()  # ?job= is kept from the app's switch
    assert_fine(at)
    assert ":green-badge[Done]" in texts(at)
    assert "Train images" in [m.label for m in at.metric]


def test_new_model_bad_epochs_and_batch_size(with_jobs):
    before = len(job_dirs(with_jobs.root))
    at = open_page("new_model")
    at.text_input(key="new_model.epochs").set_value("0")
    at.text_input(key="new_model.batch_size").set_value("abc")
    at.button(key="new_model.train").click().run()
    assert_fine(at)
    assert error_under(at, "new_model.epochs") == "Training epochs must be at least 1, got 0."
    assert error_under(at, "new_model.batch_size") == "Batch size must be a whole number, got 'abc'."
    assert at.expander[0].proto.expanded  # batch size is an advanced field: its section opens
    assert "not created" in at.error[-1].value
    assert at.title[0].value == "New model"
    assert len(job_dirs(with_jobs.root)) == before


def test_new_model_valid_submit_trains_and_opens_the_model(empty, demo_dir):
    assert cli.main(["dataset", "create", "--folder", str(demo_dir / "train"), "--name", "d", "--wait"]) == 0
    at = open_page("new_model")
    assert at.selectbox(key="new_model.dataset").value == JobStore(empty).list("dataset")[0].id
    at.text_input(key="new_model.epochs").set_value("1")
    at.text_input(key="new_model.batch_size").set_value("8")
    at.button(key="new_model.train").click().run()
    assert_fine(at)
    [model] = JobStore(empty).list("model")
    assert model.name == "d model" and model.params["epochs"] == 1
    assert at.title[0].value == "d model"
    assert job_actions.wait(model, timeout=150) is JobState.DONE
    at.switch_page(PAGES["model"]).run()  # see test_new_dataset_valid_submit_builds_the_dataset
    assert_fine(at)
    assert at.title[0].value == "d model"
    assert "Loss" in chart_titles(at)


# --------------------------------------------------------------------------- abort

def test_abort_a_waiting_model(empty):
    store = JobStore(empty)
    pending = store.create("dataset", "never submitted", {})  # stays Initialized: its model waits for ever
    model = model_spec.create({"dataset": pending.id, "name": "waiter", "epochs": "1"}, store)
    at = open_page("model", job=model.id)
    assert_fine(at)
    assert ":orange-badge[Waiting]" in texts(at)
    assert any(i.value.startswith("Waiting") for i in at.info)
    abort = at.button(key="abort")
    assert not abort.proto.disabled
    abort.click().run()
    assert_fine(at)
    assert model.state is JobState.ABORTED
    assert ":gray-badge[Aborted]" in texts(at)
    assert at.button(key="abort").proto.disabled


def test_abort_a_running_model(empty, demo_dir):
    assert cli.main(["dataset", "create", "--folder", str(demo_dir / "train"), "--name", "d", "--wait"]) == 0
    dataset = JobStore(empty).list("dataset")[0]
    model = model_spec.create({"dataset": dataset.id, "name": "long", "epochs": "100000", "batch_size": "8"})
    assert model.state is JobState.RUNNING
    at = open_page("model", job=model.id)
    assert_fine(at)
    assert ":blue-badge[Running]" in texts(at)
    at.button(key="abort").click().run()
    assert_fine(at)
    assert job_actions.wait(model, timeout=120) is JobState.ABORTED
    at.run()
    assert_fine(at)
    assert ":gray-badge[Aborted]" in texts(at)
    assert "Last lines of the job's log" in [e.label for e in at.expander]


def test_dataset_page_lists_skipped_files_with_their_reason(jobs_dir, image_folder):
    (image_folder / "circle" / "broken.png").write_text("text, not a PNG")
    (image_folder / "square" / "notes.txt").write_text("not an image")
    assert cli.main(["dataset", "create", "--folder", str(image_folder), "--name", "with junk", "--wait"]) == 0
    [dataset] = JobStore(jobs_dir).list("dataset")
    at = open_page("dataset", job=dataset.id)
    assert_fine(at)
    assert "2 file(s) skipped: not images, or unreadable" in [e.label for e in at.expander]
    skipped = next(d.value for d in at.dataframe if "reason" in d.value.columns)
    reasons = dict(zip(skipped["path"].map(lambda p: Path(p).name), skipped["reason"]))
    assert set(reasons) == {"broken.png", "notes.txt"}
    assert "not an image" in reasons["broken.png"] and "(.txt)" in reasons["notes.txt"]
