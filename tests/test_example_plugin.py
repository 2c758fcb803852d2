"""The example data plugin (plugins/example_gradients), installed into the test
environment (`make test` does `pip install -e plugins/example_gradients`), and
plugin discovery with a broken one, a flaky one and a blocked one.

Datasets and models go through the real job system: detached workers, LMDB.
Temporary plugins are real distributions (a module plus a `*.dist-info`
folder with entry_points.txt) on sys.path, and on PYTHONPATH when a worker
process must load them too.
"""
import io
import json
import subprocess
import sys
import tomllib
from collections import Counter
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digits_engine import cli, image_records, lmdb_store
from digits_engine.errors import PluginError
from digits_engine.plugins import registry

pytestmark = pytest.mark.timeout(300)

PLUGIN_DIR = Path(__file__).resolve().parents[1] / "plugins" / "example_gradients"
CLASSES = ["left-to-right", "top-to-bottom", "diagonal"]


@pytest.fixture(autouse=True)
def fresh_registry():
    """Every test sees the plugins installed when it runs, and leaves no cached ones behind."""
    registry.refresh()
    yield
    registry.refresh()


def run_cli(*args) -> tuple[int, str, str]:
    """`digits ARGS` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def gradients():
    return registry.get("data", "image-gradients")


def make_distribution(root: Path, name: str, version: str, module: str, code: str, entry_points: str) -> Path:
    """An installed-looking distribution in `root`: `<module>.py` and `<name>-<version>.dist-info/`."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{module}.py").write_text(code)
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(entry_points)
    return root


# ------------------------------------------------------------------ the package

def test_package_metadata_is_static_and_needs_only_numpy():
    project = tomllib.loads((PLUGIN_DIR / "pyproject.toml").read_text())
    assert project["project"]["name"] == "digits-example-gradients"
    assert [d.split(">")[0] for d in project["project"]["dependencies"]] == ["numpy"]
    assert project["project"]["entry-points"]["digits.plugins.data"] == {
        "image-gradients": "digits_example_gradients.data:DataIngestion"}
    assert "dynamic" not in project["project"]  # building never imports the package (nor digits_engine)
    assert (PLUGIN_DIR / "README.md").exists()


def test_the_tutorial_shows_the_example_as_it_is():
    """docs/plugins.md walks through the plugin's code: it must be the code that ships."""
    doc = (PLUGIN_DIR.parents[1] / "docs" / "plugins.md").read_text()
    code = (PLUGIN_DIR / "digits_example_gradients" / "data.py").read_text()
    assert f"```python\n{code.rstrip()}\n```" in doc
    toml_block = doc.split("```toml\n", 1)[1].split("```", 1)[0]
    assert tomllib.loads(toml_block) == tomllib.loads((PLUGIN_DIR / "pyproject.toml").read_text())


def test_entry_point_is_discovered_with_package_and_version():
    infos = {info.name: info for info in registry.discover("data")}
    assert "image-gradients" in infos, "install it: .venv/bin/pip install -e plugins/example_gradients"
    info = infos["image-gradients"]
    assert info.error is None, info.details
    assert (info.package, info.version) == ("digits-example-gradients", "0.1.0")
    assert (info.id, info.title) == ("image-gradients", "Gradients (example)")
    assert info.plugin.get_category() == "Examples"
    assert registry.working("data")["image-gradients"] is info.plugin


def test_form_fields_and_labels():
    plugin = gradients()
    fields = {f.name: f for f in plugin.dataset_fields()}
    assert {name: (f.kind, f.default) for name, f in fields.items()} == {
        "train_count": ("int", 300), "val_count": ("int", 60), "size": ("int", 32),
        "noise": ("float", 0.05), "seed": ("int", 0)}
    assert plugin.inference_fields() is None
    assert plugin.task == "classification"
    assert plugin().class_labels() == CLASSES


def test_itemize_counts_per_stage():
    plugin = gradients()(train_count=7, val_count=4)
    train, val, test = (plugin.itemize_entries(stage) for stage in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (7, 4, 0)
    assert all(isinstance(entry, int) for entry in train + val)
    assert not set(train) & set(val)  # a validation sample is never a training sample
    assert len(gradients()().itemize_entries("train")) == 300  # the defaults, when no option is given


def test_encode_is_deterministic_with_shape_dtype_and_class():
    plugin = gradients()(size=16, noise=0.1, seed=3)
    entries = plugin.itemize_entries("train")[:20] + plugin.itemize_entries("val")[:5]
    for entry in entries:
        image, label = plugin.encode_entry(entry)
        assert image.shape == (16, 16, 1) and image.dtype == np.uint8
        assert isinstance(label, int) and 0 <= label < 3
        again, same_label = gradients()(size=16, noise=0.1, seed=3).encode_entry(entry)  # another process's copy
        assert np.array_equal(image, again) and label == same_label
    labels = {plugin.encode_entry(entry)[1] for entry in entries}
    assert labels == {0, 1, 2}
    other_seed = gradients()(size=16, noise=0.1, seed=4)
    assert any(not np.array_equal(plugin.encode_entry(e)[0], other_seed.encode_entry(e)[0]) for e in entries)
    train0, val0 = plugin.itemize_entries("train")[0], plugin.itemize_entries("val")[0]
    assert not np.array_equal(plugin.encode_entry(train0)[0], plugin.encode_entry(val0)[0])


def test_the_class_is_the_gradient_direction():
    plugin = gradients()(size=12, noise=0.0)
    for entry in plugin.itemize_entries("train")[:30]:
        image, label = plugin.encode_entry(entry)
        pixels = image[:, :, 0].astype(int)
        assert pixels.max() - pixels.min() > 200  # a full ramp
        if CLASSES[label] == "left-to-right":
            assert (np.ptp(pixels, axis=0) == 0).all()  # every column is constant
        elif CLASSES[label] == "top-to-bottom":
            assert (np.ptp(pixels, axis=1) == 0).all()  # every row is constant
        else:
            assert np.array_equal(pixels, pixels.T) and pixels[0, 0] != pixels[-1, -1]


# ------------------------------------------------------------------ through the job system

def test_dataset_then_model_through_the_job_system(jobs_dir):
    code, out, err = run_cli("dataset", "create", "--plugin", "image-gradients", "--option", "train_count=30",
                             "--option", "val_count=9", "--option", "size=16", "--name", "g", "--wait", "--json")
    summary = json.loads(out)
    dataset = jobs_dir / summary["id"]
    assert code == 0 and summary["status"] == "Done", err + (dataset / "log.txt").read_text()
    assert summary["params"]["options"] == {"train_count": 30, "val_count": 9, "size": 16, "noise": 0.05, "seed": 0}

    stats = json.loads((dataset / "stats.json").read_text())
    assert stats["totals"] == {"train": 30, "val": 9}
    assert stats["labels"] == CLASSES and stats["task"] == "classification"
    assert sum(stats["counts"]["train"].values()) == 30 and stats["skipped_files"] == []
    assert stats["image"]["width"] == stats["image"]["height"] == 16 and stats["image"]["channels"] == 1
    assert (dataset / "labels.txt").read_text().split("\n")[:3] == CLASSES

    for split, count in (("train", 30), ("val", 9)):
        records = lmdb_store.read_range(dataset / split, 0, count)
        assert len(records) == count
        for record in records:
            pixels, label = image_records.read_record(record)
            assert pixels.shape == (16, 16, 1) and pixels.dtype == np.uint8
            assert label in (0, 1, 2)

    code, out, err = run_cli("model", "train", "--dataset", summary["id"], "--name", "gradients-lenet",
                             "--epochs", 1, "--batch-size", 8, "--wait", "--json")
    model = json.loads(out)
    assert code == 0 and model["status"] == "Done", err + (jobs_dir / model["id"] / "log.txt").read_text()

    # No inference form (inference_fields() is None): the ordinary image classification applies.
    image, _ = gradients()(size=16).encode_entry(0)
    Image.fromarray(image[:, :, 0]).save(jobs_dir.parent / "sample.png")
    proc = subprocess.run([sys.executable, "-m", "digits_engine", "classify", model["id"], jobs_dir.parent / "sample.png",
                           "--json"], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    predictions = json.loads(proc.stdout)["predictions"]  # one image: one result
    assert sorted(p["label"] for p in predictions) == sorted(CLASSES)


def test_bad_option_is_reported_with_its_field(jobs_dir):
    code, out, err = run_cli("dataset", "create", "--plugin", "image-gradients", "--option", "size=big",
                             "--option", "noise=2", "--name", "g", "--json")
    assert code == 2
    fields = json.loads(out or err)["fields"]
    assert set(fields) == {"size", "noise"} and "whole number" in fields["size"] and "at most 1" in fields["noise"]
    assert not any(jobs_dir.iterdir())  # nothing was submitted


FLAKY = '''
from digits_example_gradients.data import DataIngestion as Gradients


class DataIngestion(Gradients):
    @staticmethod
    def get_id():
        return "flaky-gradients"

    @staticmethod
    def get_title():
        return "Flaky gradients"

    def itemize_entries(self, stage):
        self.problems = [("contours/orphan.txt", "no image for this contour")]
        return super().itemize_entries(stage)

    def encode_entry(self, entry):
        if entry % 10 == 3:
            raise ValueError(f"sample {entry} is unreadable")
        return super().encode_entry(entry)
'''


def test_value_error_skips_the_entry_and_problems_are_reported(jobs_dir, tmp_path, monkeypatch):
    """300 samples: encoded in pool processes, each making its own plugin from the form's values."""
    root = make_distribution(tmp_path / "site", "flaky-plugin", "0.2", "flaky_plugin", FLAKY,
                             "[digits.plugins.data]\nflaky-gradients = flaky_plugin:DataIngestion\n")
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setenv("PYTHONPATH", str(root))  # the worker and its pool processes load the plugin too
    registry.refresh()
    code, out, err = run_cli("dataset", "create", "--plugin", "flaky-gradients", "--option", "train_count=300",
                             "--option", "val_count=9", "--option", "size=8", "--name", "f", "--wait", "--json")
    summary = json.loads(out)
    dataset = jobs_dir / summary["id"]
    assert code == 0 and summary["status"] == "Done", err + (dataset / "log.txt").read_text()
    stats = json.loads((dataset / "stats.json").read_text())
    assert stats["totals"] == {"train": 270, "val": 8}  # ids ending in 3 skipped: 30 training, 1 validation
    skipped = {s["path"]: s["reason"] for s in stats["skipped_files"]}
    assert skipped["3"] == "sample 3 is unreadable" and len(skipped) == 32
    assert skipped["contours/orphan.txt"] == "no image for this contour"
    assert "sample 13 is unreadable" in (dataset / "log.txt").read_text()

    plugin = registry.get("data", "flaky-gradients")(size=8)
    expected = Counter(CLASSES[plugin.encode_entry(e)[1]] for e in plugin.itemize_entries("train") if e % 10 != 3)
    assert stats["counts"]["train"] == dict(expected)  # the pool made the very samples this process makes


# ------------------------------------------------------------------ broken and blocked plugins

BROKEN = 'raise ImportError("needs the frobnicate library, which is not installed")\n'


def test_a_broken_plugin_is_listed_with_its_error_and_the_rest_works(jobs_dir, tmp_path, monkeypatch):
    root = make_distribution(tmp_path / "site", "broken-plugin", "0.1", "broken_plugin", BROKEN,
                             "[digits.plugins.data]\nbroken = broken_plugin:DataIngestion\n")
    monkeypatch.syspath_prepend(str(root))
    registry.refresh()

    infos = {info.name: info for info in registry.discover("data")}
    broken = infos["broken"]
    assert broken.plugin is None and (broken.package, broken.version) == ("broken-plugin", "0.1")
    assert broken.error == "ImportError: needs the frobnicate library, which is not installed"
    assert "Traceback" in broken.details
    assert "broken" not in registry.working("data") and "image-gradients" in registry.working("data")
    with pytest.raises(PluginError, match="frobnicate"):
        registry.get("data", "broken")

    code, out, _ = run_cli("plugins", "list", "--json")
    rows = {row["id"]: row for row in json.loads(out)}
    assert code == 0 and "frobnicate" in rows["broken"]["error"] and rows["broken"]["version"] == "0.1"
    assert rows["image-gradients"]["error"] is None and rows["image-gradients"]["version"] == "0.1.0"
    code, out, _ = run_cli("plugins", "list")
    assert "FAILED: ImportError: needs the frobnicate library" in out

    code, out, err = run_cli("dataset", "create", "--plugin", "broken", "--name", "b", "--json")
    assert code == 2 and "frobnicate" in out + err
    code, out, err = run_cli("dataset", "create", "--plugin", "image-gradients", "--option", "train_count=6",
                             "--option", "val_count=0", "--option", "size=8", "--name", "g", "--wait", "--json")
    assert code == 0 and json.loads(out)["status"] == "Done", err

    from test_pages import open_page  # the pages: listed on System, and New dataset still works
    at = open_page("system")
    assert not at.exception
    plugins = at.dataframe[1].value.set_index("id")
    assert plugins.loc["broken", "status"].startswith("failed: ImportError: needs the frobnicate")
    assert any("broken" in e.label for e in at.expander)
    at = open_page("new_dataset")
    assert not at.exception and "Examples › Gradients (example)" in at.selectbox(key="new_dataset.type").options

    sys.path.remove(str(root))  # uninstalled: gone after a refresh
    registry.refresh()
    assert "broken" not in {info.name for info in registry.discover("data")}


def test_a_blocked_plugin_is_hidden(jobs_dir, monkeypatch):
    monkeypatch.setenv("DIGITS_BLOCKED_PLUGINS", "image-sunnybrook, image-gradients")
    registry.refresh()
    assert "image-gradients" not in {info.id for info in registry.discover("data")}
    assert "image-gradients" not in registry.working("data")
    code, out, err = run_cli("dataset", "create", "--plugin", "image-gradients", "--name", "g", "--json")
    assert code == 2 and "No data plugin 'image-gradients'" in out + err

    monkeypatch.delenv("DIGITS_BLOCKED_PLUGINS")
    registry.refresh()
    assert "image-gradients" in registry.working("data")


# ------------------------------------------------------------------ in the app

def open_page(page: str):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app" / "main.py"), default_timeout=30)
    at.switch_page(f"../pages/{page}.py")
    return at.run()


def test_new_dataset_page_offers_the_plugin_under_its_category_and_submits(jobs_dir):
    at = open_page("new_dataset")
    assert "Examples › Gradients (example)" in at.selectbox(key="new_dataset.type").options
    at.selectbox(key="new_dataset.type").select("Examples › Gradients (example)").run()
    assert not at.exception, [e.value for e in at.exception]
    prefix = "new_dataset.image-gradients."
    assert at.text_input(key=prefix + "train_count").value == "300"  # the field's default
    for name, value in {"name": "from the form", "train_count": "12", "val_count": "3", "size": "8"}.items():
        at.text_input(key=prefix + name).set_value(value)
    at.get("form_submit_button")[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    jobs = [json.loads((d / "job.json").read_text()) for d in jobs_dir.iterdir() if (d / "job.json").exists()]
    assert [(j["name"], j["params"]["plugin"]) for j in jobs] == [("from the form", "image-gradients")]
    assert jobs[0]["params"]["options"] == {"train_count": 12, "val_count": 3, "size": 8, "noise": 0.05, "seed": 0}


def test_system_page_lists_the_plugin_with_its_version(jobs_dir):
    at = open_page("system")
    assert not at.exception, [e.value for e in at.exception]
    tables = [df.value for df in at.dataframe]
    rows = [row for table in tables if "package" in table for row in table.to_dict("records")]
    assert {"id": "image-gradients", "package": "digits-example-gradients", "version": "0.1.0",
            "status": "loaded"}.items() <= next(r for r in rows if r["id"] == "image-gradients").items()
