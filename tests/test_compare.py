"""Comparing models: model_compare on hand-written progress.jsonl files (no
training), the Compare page through Streamlit's AppTest in each of its
states, and a real two-model learning-rate sweep compared end to end."""
import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from digits_engine import cli, model_compare, progress_log
from digits_engine.job_state import JobState
from digits_engine.job_store import JobStore

ROOT = Path(__file__).resolve().parent.parent
BASE = {"network": "lenet", "epochs": 2, "batch_size": 8, "lr": 0.01, "solver": "sgd", "lr_policy": "fixed",
        "weight_decay": 0.0, "aug_flip": "none", "gpus": None, "workers": 1}


def model_job(store: JobStore, name: str, records=(), group: str = "", dataset: str = "ds", state=JobState.DONE,
              **params):
    """A model job folder with `records` in its progress.jsonl, without training."""
    job = store.create("model", name, {**BASE, **params}, parents=[dataset], group=group)
    for record in records:
        progress_log.append(job.progress_path, record)
    job.set_state(state)
    time.sleep(0.002)  # ids sort by the millisecond: keep creation order
    return job


def epochs(accuracies, losses, lr=0.01):
    """Two training points an epoch, the second with validation metrics, as the trainer writes them."""
    for epoch, (accuracy, loss) in enumerate(zip(accuracies, losses), start=1):
        yield {"epoch": epoch - 0.5, "train/loss": loss + 0.2, "lr": lr}
        yield {"epoch": epoch, "train/loss": loss + 0.1, "val/loss": loss, "val/accuracy": accuracy, "lr": lr,
               "time/epoch_seconds": 2.0}


# --------------------------------------------------------------------------- model_compare

def test_best_value_its_epoch_and_last_value_per_metric(jobs_dir):
    job = model_job(JobStore(jobs_dir), "a", epochs([0.5, 0.8, 0.8, 0.7], [0.9, 0.4, 0.6, 0.5]))
    result = model_compare.model_result(job)
    assert set(result.summaries) == {"train/loss", "val/loss", "val/accuracy"}  # not lr, not time/
    accuracy = result.summaries["val/accuracy"]
    assert (accuracy.best, accuracy.best_epoch, accuracy.last) == (0.8, 2, 0.7)  # the first of equal bests
    loss = result.summaries["val/loss"]
    assert (loss.best, loss.best_epoch, loss.last) == (0.4, 2, 0.5)  # a loss: lowest is best
    train = result.summaries["train/loss"]
    assert (train.best, train.best_epoch, train.last) == (pytest.approx(0.5), 2, pytest.approx(0.6))


def test_a_torn_last_line_and_a_model_without_records(jobs_dir):
    store = JobStore(jobs_dir)
    job = model_job(store, "torn", [{"epoch": 1, "val/accuracy": 0.6}])
    with open(job.progress_path, "a") as f:
        f.write('{"epoch": 2, "val/accur')  # a writer mid-append
    assert model_compare.model_result(job).summaries["val/accuracy"].last == 0.6
    silent = model_compare.model_result(model_job(store, "silent"))
    assert silent.summaries == {} and model_compare.metrics([silent]) == []
    assert model_compare.summarize_metric([], "val/loss") is None


@pytest.mark.parametrize("available, chosen", [
    (["train/loss", "val/accuracy", "val/loss"], "val/accuracy"),
    (["train/loss", "val/loss"], "val/loss"),
    (["train/accuracy", "train/loss"], "train/loss"),
    (["val/mean_iou"], "val/mean_iou"),
    ([], None),
])
def test_default_metric(available, chosen):
    assert model_compare.default_metric(available) == chosen


def test_hyperparameters_that_differ(jobs_dir):
    store = JobStore(jobs_dir)
    a = model_job(store, "a", lr=0.01, solver="sgd", gpus="0")
    b = model_job(store, "b", lr=0.02, solver="adam", gpus="1", dataset="other")
    c = model_job(store, "c", lr=0.02, solver="sgd", seed=3)  # a field the others lack reads as None
    models = model_compare.results([a, b, c])
    assert model_compare.differing(models) == ["dataset", "lr", "solver", "seed"]  # the form's order; not gpus
    assert model_compare.differing(models[:1]) == []
    assert model_compare.differing([models[0], model_compare.model_result(model_job(store, "a2"))]) == []


def test_table_marks_the_best_by_the_chosen_metric(jobs_dir):
    store = JobStore(jobs_dir)
    a = model_job(store, "a", epochs([0.5, 0.9], [0.9, 0.7]), lr=0.01)
    b = model_job(store, "b", epochs([0.6, 0.7], [0.5, 0.3]), lr=0.02)
    models = model_compare.results([a, b])
    frame = model_compare.table(models, "val/accuracy")
    assert list(frame.columns) == ["best", "model", "val/accuracy best", "val/accuracy epoch", "val/accuracy last",
                                   "lr", "train/loss best", "train/loss epoch", "train/loss last", "val/loss best",
                                   "val/loss epoch", "val/loss last", "state", "id"]
    assert list(frame["best"]) == ["★", ""] and list(frame["id"]) == [a.id, b.id]
    assert list(frame["val/accuracy best"]) == [0.9, 0.7] and list(frame["val/loss epoch"]) == [2, 2]
    assert list(frame["lr"]) == [0.01, 0.02] and list(frame["state"]) == ["Done", "Done"]
    by_loss = model_compare.table(models, "val/loss")
    assert list(by_loss["best"]) == ["", "★"] and by_loss.columns[2] == "val/loss best"
    assert model_compare.best_model(models, "val/mean_iou") is None


def test_parallel_axes_map_categories_and_wide_ranges_to_ticks(jobs_dir):
    store = JobStore(jobs_dir)
    jobs = [model_job(store, "a", epochs([0.5], [0.9]), lr=0.001, solver="sgd", shuffle=True),
            model_job(store, "b", epochs([0.9], [0.3]), lr=0.1, solver="adam", shuffle=True),
            model_job(store, "c", epochs([0.7], [0.6]), lr=0.01, solver="sgd", shuffle=False),
            model_job(store, "no metric yet", lr=0.5, solver="adamw")]
    axes = {a["label"]: a for a in model_compare.parallel_axes(model_compare.results(jobs), "val/accuracy")}
    assert list(axes) == ["lr (log)", "solver", "shuffle", "val/accuracy"]  # the metric last; adamw left out
    assert axes["lr (log)"]["values"] == pytest.approx([-3, -1, -2])
    assert axes["lr (log)"]["ticktext"] == ["0.001", "0.01", "0.1"]
    assert axes["solver"] == {"label": "solver", "values": [1, 0, 1], "tickvals": [0, 1], "ticktext": ["adam", "sgd"]}
    assert axes["shuffle"]["ticktext"] == ["False", "True"] and axes["shuffle"]["values"] == [1, 1, 0]
    assert axes["val/accuracy"]["values"] == [0.5, 0.9, 0.7]


def test_an_axis_of_many_numbers_and_one_with_missing_values():
    many = model_compare.axis("weight_decay", [i / 100 for i in range(10)])
    assert many == {"label": "weight_decay", "values": [i / 100 for i in range(10)]}
    partial = model_compare.axis("lr_gamma", [None, 0.5, 0.1])
    assert partial["ticktext"] == ["0.1", "0.5", "none"] and partial["values"] == [2, 1, 0]
    code = model_compare.axis("custom_code", ["import keras\n" * 5, None])
    assert max(len(t) for t in code["ticktext"]) <= model_compare.MAX_TICK_TEXT


def test_sweep_groups(jobs_dir):
    store = JobStore(jobs_dir)
    first = model_job(store, "sw learning_rate:0.01", group="sw")
    model_job(store, "alone")
    second = model_job(store, "sw learning_rate:0.02", group="sw")
    other = model_job(store, "baseline", group="a study")
    store.create("dataset", "a dataset in a group", {}, group="data")
    groups = model_compare.sweep_groups(store)
    assert list(groups) == ["a study", "sw"]
    assert groups["sw"] == [first, second] and groups["a study"] == [other]


# --------------------------------------------------------------------------- the page

@pytest.fixture
def open_compare():
    def run(**query) -> AppTest:
        at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=60)
        at.switch_page("../pages/compare.py")
        for key, value in query.items():
            at.query_params[key] = value
        return at.run()
    return run


def assert_fine(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def figures(at: AppTest) -> dict:
    """Each plotly chart's spec by its title."""
    specs = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    return {spec["layout"]["title"]["text"]: spec for spec in specs}


def highlighted_rows(at: AppTest) -> set[int]:
    styles = at.dataframe[0].proto.arrow_data.styler.styles
    return {int(selector.split("_row")[1].split("_")[0]) for selector in styles.split("{")[0].split(",")}


@pytest.fixture
def sweep(jobs_dir):
    store = JobStore(jobs_dir)
    return [model_job(store, "sw learning_rate:0.001", epochs([0.5, 0.7], [0.9, 0.6], 0.001), group="sw",
                      lr=0.001),
            model_job(store, "sw learning_rate:0.1", epochs([0.6, 0.9], [0.8, 0.2], 0.1), group="sw", lr=0.1),
            model_job(store, "other", epochs([0.4], [1.0]), epochs=1, solver="adam")]


@pytest.mark.parametrize("made, words", [(0, "No models yet"), (1, "Only one model so far")])
def test_page_with_fewer_than_two_models_says_to_train(jobs_dir, open_compare, made, words):
    for i in range(made):
        model_job(JobStore(jobs_dir), f"m{i}")
    at = open_compare()
    assert_fine(at)
    assert at.title[0].value == "Compare models"
    assert words in at.info[0].value
    assert at.page_link[-1].value == "Train a model" and at.page_link[-1].proto.page == "new_model"


def test_page_without_a_selection_says_what_to_pick(sweep, open_compare):
    at = open_compare()
    assert_fine(at)
    assert at.multiselect(key="compare.models").value == []
    assert "Pick two or more models" in at.info[0].value
    assert not at.dataframe and not at.get("plotly_chart")
    assert at.selectbox(key="compare.group").options == ["—", "sw (2 models)"]


def test_page_opens_a_group_from_the_url(sweep, open_compare):
    at = open_compare(group="sw")
    assert_fine(at)
    low, high, _ = sweep
    assert at.multiselect(key="compare.models").value == [low.id, high.id]
    assert at.selectbox(key="compare.metric").value == "val/accuracy"
    table = at.dataframe[0].value
    assert list(table["model"]) == [low.name, high.name]
    assert list(table["best"]) == ["", "★"] and highlighted_rows(at) == {1}
    assert list(table["val/accuracy best"]) == [0.7, 0.9] and list(table["val/accuracy epoch"]) == [2, 2]
    assert list(table["lr"]) == [0.001, 0.1] and "solver" not in table  # only what differs
    charts = figures(at)
    assert [t["name"] for t in charts["val/accuracy"]["data"]] == [low.name, high.name]
    loss = charts["Loss (dotted: train, solid: val)"]["data"]
    assert [(t["name"], t["line"]["dash"]) for t in loss] == [(low.name, "dot"), (low.name, "solid"),
                                                              (high.name, "dot"), (high.name, "solid")]
    assert [t["showlegend"] for t in loss] == [True, False, True, False]  # one legend entry a model
    [parcoords] = charts["Hyperparameters against the best val/accuracy"]["data"]
    assert parcoords["type"] == "parcoords"
    assert [d["label"] for d in parcoords["dimensions"]] == ["lr (log)", "val/accuracy"]


def test_picking_a_loss_stars_the_lowest(sweep, open_compare):
    at = open_compare(group="sw")
    at.selectbox(key="compare.metric").select("train/loss").run()
    assert_fine(at)
    assert list(at.dataframe[0].value["best"]) == ["", "★"]
    assert at.dataframe[0].value.columns[2] == "train/loss best"
    assert list(figures(at)) == ["train/loss", "Hyperparameters against the best train/loss"]  # no second loss


def test_page_models_from_the_url_and_a_group_picked(sweep, open_compare):
    low, high, other = sweep
    at = open_compare(models=f"{other.id},{low.id},20990101-000000-000-dead")
    assert_fine(at)
    assert "20990101-000000-000-dead" in at.warning[0].value
    assert at.multiselect(key="compare.models").value == [other.id, low.id]
    assert list(at.dataframe[0].value["best"]) == ["", "★"]
    assert {"epochs", "lr", "solver"} <= set(at.dataframe[0].value.columns)
    at.selectbox(key="compare.group").select("sw").run()
    assert_fine(at)
    assert at.multiselect(key="compare.models").value == [low.id, high.id]
    assert at.query_params["group"] in ("sw", ["sw"]) and "models" not in at.query_params


def test_page_with_one_model_picked_asks_for_another(sweep, open_compare):
    at = open_compare(models=sweep[0].id)
    assert_fine(at)
    assert "one more model" in at.info[0].value
    assert not at.dataframe


def test_page_with_models_without_metrics(jobs_dir, open_compare):
    store = JobStore(jobs_dir)
    never_built = store.create("dataset", "never submitted", {})  # its models wait for ever
    waiting = [model_job(store, f"w{i}", dataset=never_built.id, state=JobState.WAITING) for i in range(2)]
    at = open_compare(models=",".join(job.id for job in waiting))
    assert_fine(at)
    assert "None of these models has reported metrics yet" in at.info[0].value
    assert "updates by itself" in at.info[0].value
    failed = [model_job(store, f"e{i}", state=JobState.ERROR) for i in range(2)]
    at = open_compare(models=",".join(job.id for job in failed))
    assert "open each model to see why" in at.info[0].value
    assert not at.dataframe


def test_a_real_sweep_compared(jobs_dir, image_folder, open_compare):
    assert cli.main(["dataset", "create", "--folder", str(image_folder), "--name", "d", "--wait"]) == 0
    dataset = JobStore(jobs_dir).list("dataset")[0]
    assert cli.main(["model", "train", "--dataset", dataset.id, "--name", "sw", "--epochs", "1", "--batch-size", "8",
                     "--lr", "0.01,0.02", "--wait"]) == 0
    assert list(model_compare.sweep_groups(JobStore(jobs_dir))) == ["sw"]
    at = open_compare(group="sw")
    assert_fine(at)
    table = at.dataframe[0].value
    assert sorted(table["lr"]) == [0.01, 0.02] and set(table["state"]) == {"Done"}
    assert list(table["best"]).count("★") == 1
    assert table["val/accuracy best"].between(0, 1).all() and (table["val/accuracy epoch"] == 1).all()
    assert (table["train/loss last"] > 0).all()
    charts = figures(at)
    assert len(charts["val/accuracy"]["data"]) == 2
    [parcoords] = charts["Hyperparameters against the best val/accuracy"]["data"]
    assert parcoords["dimensions"][0]["ticktext"] == ["0.01", "0.02"]
