"""The whole default path in a real Chromium, as a person would click it:
New dataset (pre-filled demo folder) -> Create -> the dataset's summary ->
"Train a model on this dataset" -> 1 epoch -> Train -> the model page, Done,
with its Loss chart -> classify the validation split -> click a cell of the
confusion matrix and see its images.

Runs `streamlit run app/main.py` as a subprocess on a free loopback port,
with a private jobs directory and a generated demo image tree. Needs the
Debian chromium (`/usr/bin/chromium`); without it the test is skipped, except
under CI=true, where it fails.
"""
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
COLOURS = {"circle": (220, 40, 40), "square": (40, 200, 40), "triangle": (40, 60, 230)}
NOT_RUNNING = '[data-testid="stApp"][data-test-script-state="notRunning"]'
EXCEPTION = '[data-testid="stException"]'

pytestmark = pytest.mark.browser


def make_demo_tree(demo: Path, per_class: int = 30, size: int = 32) -> Path:
    """demo/train/<class>/<n>.png: each class a noisy image of its own colour."""
    rng = np.random.default_rng(1)
    for name, colour in COLOURS.items():
        folder = demo / "train" / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            noise = rng.integers(-30, 30, (size, size, 3), dtype=np.int16)
            Image.fromarray(np.clip(np.array(colour, np.int16) + noise, 0, 255).astype(np.uint8)).save(
                folder / f"{i:03d}.png")
    return demo


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"streamlit exited with {proc.returncode} before it was healthy:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    pytest.fail(f"streamlit was not healthy after {timeout} s:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group, then SIGKILL what is left."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # anything the server left in its group
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


def skip_unless_ci(reason: str) -> None:
    """Skip here; under CI=true a missing browser is a failure, not a skip."""
    print(reason)
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def chromium() -> str:
    if not os.path.exists(CHROMIUM):
        skip_unless_ci(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium) "
                       "to run the browser test")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        skip_unless_ci("playwright is not installed: pip install -r requirements-test.txt")
    return CHROMIUM


def start_server(jobs_dir: Path, log: Path, options=(), port: int | None = None,
                 **settings) -> tuple[subprocess.Popen, str]:
    """`streamlit run app/main.py` on `port` (default: a free loopback port), in its own process group
    (`options`: more command-line options, `settings`: more environment variables), once healthy:
    (process, base URL)."""
    port = port or free_port()
    env = dict(os.environ, DIGITS_JOBS_DIR=str(jobs_dir), TF_CPP_MIN_LOG_LEVEL="2",
               STREAMLIT_BROWSER_GATHER_USAGE_STATS="false", **settings)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app/main.py", "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false", *options],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, log)
    except BaseException:
        stop(proc)
        raise
    return proc, url


@contextlib.contextmanager
def streamlit_server(jobs_dir: Path, demo: Path, log: Path, options=(), port: int | None = None, **settings):
    """start_server with the demo folder `demo`; yields its base URL, stops it after."""
    proc, url = start_server(jobs_dir, log, options, port, DIGITS_DEMO_DIR=str(demo), **settings)
    try:
        yield url
    finally:
        stop(proc)


@pytest.fixture
def server(jobs_dir, tmp_path):
    with streamlit_server(jobs_dir, make_demo_tree(tmp_path / "demo"), tmp_path / "streamlit.log") as url:
        yield url


@contextlib.contextmanager
def browser_page(chromium: str, height: int = 1000):
    """A Chromium page 1400 px wide, actions timing out after 30 s; the browser closed after."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": height})
            page.set_default_timeout(30_000)
            yield page
        finally:
            browser.close()


def settle(page, timeout: float = 30_000) -> None:
    """Wait until the app has finished its run, and check it raised nothing."""
    page.wait_for_selector(NOT_RUNNING, timeout=timeout)
    assert page.locator(EXCEPTION).count() == 0, page.locator(EXCEPTION).first.inner_text()


def test_create_dataset_train_model_and_see_its_charts(chromium, server, jobs_dir, tmp_path):
    from playwright.sync_api import expect

    with browser_page(chromium, 1000) as page:
        # New dataset: the demo folder is already filled in; one click.
        page.goto(server + "/new_dataset")
        settle(page)
        folder = page.get_by_role("textbox", name="Training images folder *", exact=True)
        expect(folder).to_have_value(str(tmp_path / "demo" / "train"))
        # Another tab and back: the values the tabs share are still there.
        for tab in ("Upload an archive", "Use folder"):
            page.get_by_role("tab", name=tab).click()
            settle(page)
            expect(page.get_by_role("textbox", name="Dataset name *", exact=True)).to_have_value("shapes demo")
            expect(page.get_by_role("textbox", name="% for validation", exact=True)).to_have_value("25")
        page.screenshot(path=str(tmp_path / "new_dataset.png"))
        page.get_by_role("button", name="Create").click()

        # The dataset page, then its summary when the build is done.
        page.wait_for_url("**/dataset?job=*")
        expect(page.get_by_text("Train images")).to_be_visible(timeout=60_000)
        settle(page)
        expect(page.get_by_text("circle, square, triangle")).to_be_visible()
        expect(page.locator(".js-plotly-plot .gtitle", has_text="Images per class and split")).to_be_visible()
        page.screenshot(path=str(tmp_path / "dataset.png"))

        # Train a model on it: the form knows the dataset; 1 epoch.
        page.get_by_role("link", name="Train a model on this dataset").click()
        page.wait_for_url("**/new_model?dataset=*")
        settle(page)
        epochs = page.get_by_role("textbox", name="Training epochs", exact=True)
        epochs.fill("1")
        epochs.press("Tab")
        settle(page)  # no st.form: the value is sent on blur, before the button is pressed
        page.screenshot(path=str(tmp_path / "new_model.png"))
        page.get_by_role("button", name="Train").click()

        # The model page: Done, with the Loss chart.
        page.wait_for_url("**/model?job=*", timeout=30_000)
        badge = page.locator('[data-testid="stMarkdownContainer"] span', has_text="Done").first
        expect(badge).to_be_visible(timeout=120_000)
        chart = page.locator('[data-testid="stPlotlyChart"]').first
        expect(chart).to_be_visible(timeout=30_000)
        expect(page.locator(".js-plotly-plot .gtitle", has_text="Loss").first).to_be_visible()
        settle(page)
        expect(page.get_by_text("Classify an image")).to_be_visible()
        page.set_viewport_size({"width": 1400, "height": 1600})  # the app scrolls inside its own container
        settle(page)
        page.screenshot(path=str(tmp_path / "model.png"))

        # Classify the validation split in the background, then open a cell of the confusion matrix.
        page.get_by_role("tab", name="A dataset split").click()
        page.get_by_role("button", name="Classify the split").click()
        page.wait_for_url("**/inference?job=*", timeout=30_000)
        expect(page.get_by_text("Confusion matrix", exact=True)).to_be_visible(timeout=120_000)
        settle(page)
        expect(page.get_by_text(re.compile(r"image\(s\) of circle predicted as circle"))).to_be_visible()
        matrix = page.locator('[data-testid="stPlotlyChart"] .nsewdrag').first
        box = matrix.bounding_box()
        page.mouse.click(box["x"] + box["width"] * 5 / 6, box["y"] + box["height"] * 5 / 6)  # triangle, triangle
        settle(page)
        expect(page.get_by_text(re.compile(r"image\(s\) of triangle predicted as triangle"))).to_be_visible()
        page.screenshot(path=str(tmp_path / "inference.png"), full_page=True)
        print(f"screenshots in {tmp_path}: new_dataset.png dataset.png new_model.png model.png inference.png")
        assert page.locator(EXCEPTION).count() == 0

    from digits_engine.job_store import JobStore
    store = JobStore(jobs_dir)
    assert [j.state.value for j in store.list("dataset")] == ["Done"]
    assert [(j.state.value, j.params["epochs"]) for j in store.list("model")] == [("Done", 1)]


def test_training_survives_a_server_restart(chromium, jobs_dir, tmp_path):
    """Stop the server while a model trains, start it again: the job kept running
    in its own process and its page shows the whole curve."""
    from playwright.sync_api import expect

    from digits_engine import cli, job_actions, liveness
    from digits_engine.job_store import JobStore

    demo = make_demo_tree(tmp_path / "demo")
    assert cli.main(["dataset", "create", "--folder", str(demo / "train"), "--name", "d", "--wait"]) == 0
    store = JobStore(jobs_dir)
    [dataset] = store.list("dataset")
    with browser_page(chromium, 1000) as page:
        with streamlit_server(jobs_dir, demo, tmp_path / "first.log") as url:
            page.goto(f"{url}/new_model?dataset={dataset.id}")
            settle(page)
            epochs = page.get_by_role("textbox", name="Training epochs", exact=True)
            epochs.fill("1000")
            epochs.press("Tab")
            settle(page)
            page.get_by_role("button", name="Train").click()
            page.wait_for_url("**/model?job=*")
            expect(page.locator(".js-plotly-plot .gtitle", has_text="Loss").first).to_be_visible(timeout=90_000)
            job_id = page.url.split("job=")[1]
        model = store.get(job_id)
        before = len(model.metrics())
        assert model.state.value == "Running" and liveness.lock_is_held(model.lock_path)
        deadline = time.monotonic() + 60
        while len(model.metrics()) <= before and time.monotonic() < deadline:
            time.sleep(0.5)
        assert len(model.metrics()) > before, "training stopped with the server"

        with streamlit_server(jobs_dir, demo, tmp_path / "second.log") as url:
            page.goto(f"{url}/model?job={job_id}")
            settle(page)
            expect(page.locator('[data-testid="stMarkdownContainer"] span', has_text="Running").first).to_be_visible()
            # the chart is redrawn every 2 s while the job runs: give a loaded machine time to show it
            expect(page.locator(".js-plotly-plot .gtitle", has_text="Loss").first).to_be_visible(timeout=30_000)
            # the chart holds the points written before the restart (the fragment redraws it as it polls)
            page.wait_for_function("""min => {
                const plot = document.querySelector('.js-plotly-plot');
                const trace = plot && plot._fullData && plot._fullData.find(t => t.name === 'train/loss');
                return trace && trace.x.length >= min;
            }""", arg=before, timeout=30_000)
    job_actions.abort(model)
    assert job_actions.wait(model, timeout=60).value == "Aborted"


def test_detection_dataset_model_and_boxes(chromium, jobs_dir, tmp_path):
    """Object detection as a person does it: the demo set in the Object detection form -> its boxes and
    object counts -> train CenterNet with the detection defaults (2 epochs) -> the mAP chart -> boxes
    found in one image -> an inference job on the validation split with its mAP."""
    from playwright.sync_api import expect

    from digits_engine.shapes_detection import make_shapes_detection

    demo = make_shapes_detection(tmp_path / "detection", n_train=40, n_val=10, seed=4)
    server = streamlit_server(jobs_dir, tmp_path / "no-demo", tmp_path / "streamlit.log",
                              DIGITS_DETECTION_DEMO_DIR=str(demo))
    with browser_page(chromium, 1600) as page, server as url:
        page.goto(url + "/new_dataset")
        settle(page)
        page.locator('[data-testid="stSelectbox"]').first.click()
        page.get_by_role("option", name="Images › Object detection (KITTI)").click()
        settle(page)
        expect(page.get_by_role("textbox", name="Dataset name *", exact=True)).to_have_value(
            "shapes-detection demo")
        page.get_by_role("button", name="Create").click()

        page.wait_for_url("**/dataset?job=*")
        expect(page.get_by_text("Samples with their boxes")).to_be_visible(timeout=60_000)
        settle(page)
        expect(page.locator(".js-plotly-plot .gtitle", has_text="Objects (boxes) per class and split")
               ).to_be_visible()
        page.screenshot(path=str(tmp_path / "dataset.png"), full_page=True)

        page.get_by_role("link", name="Train a model on this dataset").click()
        page.wait_for_url("**/new_model?dataset=*")
        settle(page)
        epochs = page.get_by_role("textbox", name="Training epochs", exact=True)
        expect(epochs).to_have_value("15")  # the detection defaults
        epochs.fill("2")
        epochs.press("Tab")
        settle(page)
        page.get_by_role("button", name="Train").click()

        page.wait_for_url("**/model?job=*", timeout=30_000)
        badge = page.locator('[data-testid="stMarkdownContainer"] span', has_text="Done").first
        expect(badge).to_be_visible(timeout=240_000)
        expect(page.locator(".js-plotly-plot .gtitle", has_text="mAP@0.5 (validation)").first).to_be_visible()
        settle(page)

        # One image of the demo, at its own 128x128 size: the boxes view draws what was found.
        expect(page.get_by_text("Find objects in an image")).to_be_visible()
        page.locator('input[type="file"]').first.set_input_files(str(next((demo / "val" / "images").iterdir())))
        expect(page.get_by_text(re.compile(r"Your image: 128x128"))).to_be_visible(timeout=120_000)
        settle(page)
        page.screenshot(path=str(tmp_path / "model.png"), full_page=True)

        # The validation split in an inference job: mAP, AP per class, the worst misses.
        page.get_by_role("tab", name="A dataset split").click()
        page.get_by_role("button", name="Detect objects in the split").click()
        page.wait_for_url("**/inference?job=*", timeout=30_000)
        expect(page.get_by_text("Average precision per class")).to_be_visible(timeout=120_000)
        settle(page)
        expect(page.get_by_text("mAP@0.5", exact=True)).to_be_visible()
        page.screenshot(path=str(tmp_path / "inference.png"), full_page=True)
        print(f"screenshots in {tmp_path}: dataset.png model.png inference.png")
        assert page.locator(EXCEPTION).count() == 0
