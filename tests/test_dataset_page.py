"""The dataset page's explorer, source-size chart and health report, rendered
by AppTest over a dataset built by a real worker."""
import html
import json
import re
import shutil
from pathlib import Path

import pytest

from conftest import make_images, stop_workers
from digits_engine import lmdb_store, record_index
from test_jobs_integration import run_cli
from test_pages import ENGINE_SETTINGS, assert_fine, chart_titles, open_page, texts

pytestmark = pytest.mark.timeout(300)
TITLE = re.compile(r'title="([^"]*)"')


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """3 classes x 12 images and a copy of one of them (28 train, 9 val); the job directory."""
    root = tmp_path_factory.mktemp("page")
    folder = make_images(root / "images")
    shutil.copy(folder / "square" / "000.png", folder / "square" / "again.png")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DIGITS_JOBS_DIR", str(root / "jobs"))
        for name in ENGINE_SETTINGS:
            mp.delenv(name, raising=False)
        code, out, err = run_cli("dataset", "create", "--name", "explored", "--folder", folder, "--width", 16,
                                 "--height", 16, "--seed", 1, "--wait", "--json")
        stop_workers(root / "jobs")
    assert code == 0, err + out
    return root / "jobs" / json.loads(out)["id"]


@pytest.fixture
def page(dataset, monkeypatch):
    monkeypatch.setenv("DIGITS_JOBS_DIR", str(dataset.parent))
    for name in ENGINE_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    at = open_page("dataset", job=dataset.name)
    assert_fine(at)
    return at


def shown(at) -> list[tuple[str, str]]:
    """(file name, class) of each thumbnail on the page, from its hover text."""
    [grid] = at.html
    return [tuple(html.unescape(title).split("\n")) for title in TITLE.findall(grid.value)]


def names(job_dir: Path, split: str, label=None) -> list[str]:
    return [r["name"] for r in record_index.read_page(job_dir, split, 0, 1000, label)]


def test_the_page_shows_sizes_health_and_the_explorer(page):
    assert [h.value for h in page.subheader] == ["Health", "Explore the database"]
    assert chart_titles(page) == ["Images per class and split", "Source image sizes"]
    words = texts(page)
    assert "No image shared between splits." in words or "val/test image(s) identical" in words
    assert "image(s) with the same pixels as another of their split" in words \
        or "identical to an image of an earlier split" in words
    [button] = page.download_button
    assert button.label.startswith("Download the") and button.label.endswith("issue(s) as CSV")
    issues = page.dataframe[-1].value
    assert list(issues.columns) == ["split", "file", "issue", "detail"]
    assert {"000.png", "again.png"} & {Path(f).name for f in issues["file"]}


def test_the_explorer_pages_through_the_training_records(page, dataset):
    train = names(dataset, "train")
    assert len(train) == 28
    first = shown(page)
    assert [name for name, _ in first] == train[:24]
    assert "Records 1–24 of 28" in texts(page)
    page.button(key="explore.next").click().run()
    assert_fine(page)
    assert [name for name, _ in shown(page)] == train[24:]
    assert page.number_input(key="explore.page").value == 2


def test_the_explorer_filters_by_split_and_class(page, dataset):
    page.selectbox(key="explore.split").set_value("val").run()
    assert_fine(page)
    assert [name for name, _ in shown(page)] == names(dataset, "val")
    page.selectbox(key="explore.class").set_value(1).run()
    assert_fine(page)
    cells = shown(page)
    assert cells and {label for _, label in cells} == {"square"}
    assert [name for name, _ in cells] == names(dataset, "val", 1)
    assert all("/square/" in name for name, _ in cells)


def test_changing_the_filter_goes_back_to_the_first_page(page):
    page.button(key="explore.next").click().run()
    assert page.number_input(key="explore.page").value == 2
    page.selectbox(key="explore.class").set_value(0).run()
    assert_fine(page)
    assert page.number_input(key="explore.page").value == 1


def test_a_page_reads_only_its_own_records(page, dataset, monkeypatch):
    asked = []
    original = lmdb_store.read_indices

    def spy(path, indices):
        asked.append((Path(path).name, list(indices)))
        return original(path, indices)

    monkeypatch.setattr(lmdb_store, "read_indices", spy)
    page.button(key="explore.next").click().run()
    assert_fine(page)
    assert asked == [("train", [24, 25, 26, 27])]


def test_the_threshold_flags_small_classes(page):
    page.number_input(key="health.threshold").set_value(20).run()
    assert_fine(page)
    issues = page.dataframe[-1].value
    assert len(issues[issues["issue"] == "few images"]) == 3
    assert "class(es) with fewer than 20 training images" in texts(page)


def test_a_segmentation_plugin_dataset_is_explored_by_the_classes_its_masks_hold(jobs_dir, tmp_path, monkeypatch):
    pytest.importorskip("digits_sunnybrook")
    from test_segmentation import make_study
    images, contours = make_study(tmp_path / "study", n=8)
    code, out, err = run_cli("dataset", "create", "--plugin", "image-sunnybrook", "--option", f"image_folder={images}",
                             "--option", f"contour_folder={contours}", "--option", "size=32", "--option",
                             "val_pct=25", "--option", "seed=0", "--name", "lv", "--wait", "--json")
    assert code == 0, err + out
    job_dir = jobs_dir / json.loads(out)["id"]
    at = open_page("dataset", job=job_dir.name)
    assert_fine(at)
    cells = shown(at)
    assert [Path(name).name for name, _ in cells] == [Path(n).name for n in names(job_dir, "train")]
    assert all(name.endswith(".dcm") for name, _ in cells)
    labels = json.loads((job_dir / "stats.json").read_text())["labels"]
    at.selectbox(key="explore.class").set_value(1).run()
    assert_fine(at)
    assert {label for _, label in shown(at)} == {f"{labels[0]}, {labels[1]}"}  # each mask: background and ventricle
    assert "Source image sizes" in chart_titles(at)
    assert at.download_button or "No issue found." in texts(at)
