"""Classify many images with a model, as a background inference job: uploaded
images, a text list of `path [label]` on the server, or a split of a dataset.
The job runs in a worker; its page shows progress, then the results. A
detection model's job finds boxes: its list names images only, and a
detection dataset's split gives the ground truth for mAP."""
import streamlit as st

from digits_engine import inference_spec, snapshots
from digits_engine.errors import DigitsError
from digits_engine.fields import FormErrors
from digits_engine.folder_parse import IMAGE_EXTENSIONS
from digits_engine.job_store import Job, JobStore
from digits_engine.job_summary import summarize

import field_widgets
from formatting import STATE_COLORS, when

KEY = "classify_many"
SPLITS = ("val", "test", "train")


def classify_many_ui(model: Job) -> None:
    if inference_spec.model_task(model) == "detection":
        st.subheader("Detect objects in many images")
        st.caption("Runs in the background as an inference job: on a detection dataset's split (its true boxes) "
                   "it measures mAP and the AP of each class, and shows the images with the worst misses.")
    else:
        st.subheader("Classify many images")
        st.caption("Runs in the background as an inference job: with true labels (a labelled list or a dataset "
                   "split) it measures accuracy, per-class scores and the confusion matrix.")
    epochs = [epoch for epoch, _ in snapshots.list_snapshots(model)]
    epoch = st.selectbox("Snapshot", [None, *reversed(epochs)], key=f"{KEY}.epoch",
                         format_func=lambda e: "Latest" if e is None else f"Epoch {e}")
    from_dataset, from_list, from_uploads = st.tabs(["A dataset split", "A text list on the server", "Upload images"])
    with from_dataset:
        _dataset_form(model, epoch)
    with from_list:
        _list_form(model, epoch)
    with from_uploads:
        _uploads_form(model, epoch)
    _earlier_runs(model)


def _verb(model: Job) -> str:
    return "Detect objects in" if inference_spec.model_task(model) == "detection" else "Classify"


def _dataset_form(model: Job, epoch) -> None:
    store = JobStore()
    task = inference_spec.model_task(model)
    datasets = [d for d in store.list("dataset") if d.state.value == "Done"
                and (d.spec.get("task") or "classification") == task]
    if not datasets:
        st.info(f"No finished {task} dataset yet.")
        return
    ids = [d.id for d in datasets]
    default = ids.index(model.parents[0]) if model.parents and model.parents[0] in ids else 0
    names = {d.id: f"{d.name} ({d.id})" for d in datasets}
    left, right = st.columns([3, 1])
    dataset = left.selectbox("Dataset", ids, index=default, format_func=names.get, key=f"{KEY}.dataset")
    split = right.selectbox("Split", SPLITS, key=f"{KEY}.split")
    if st.button(f"{_verb(model)} the split", key=f"{KEY}.run_dataset", icon=":material/play_arrow:"):
        _submit(model, {"source": "dataset", "dataset": dataset, "split": split, "epoch": epoch})


def _list_form(model: Job, epoch) -> None:
    detection = inference_spec.model_task(model) == "detection"
    path = st.text_input("List file", key=f"{KEY}.list_file", placeholder="/data/test/list.txt",
                         help=("One image path per line, without a label (boxes cannot be given here). "
                               if detection else
                               "One image per line: `path [label]`, the label a class name or its index. ")
                         + "Relative paths are relative to the list's folder.")
    if st.button(f"{_verb(model)} the list", key=f"{KEY}.run_list", icon=":material/play_arrow:"):
        _submit(model, {"source": "list", "list_file": path.strip(), "epoch": epoch})


def _uploads_form(model: Job, epoch) -> None:
    files = st.file_uploader("Images", type=[e.lstrip(".") for e in IMAGE_EXTENSIONS], accept_multiple_files=True,
                             key=f"{KEY}.uploads", max_upload_size=field_widgets.upload_limit_mb())
    if st.button(f"{_verb(model)} the images", key=f"{KEY}.run_uploads", icon=":material/play_arrow:",
                 disabled=not files):
        _submit(model, {"source": "images", "epoch": epoch}, uploads=[(f.name, f.getvalue()) for f in files])


def _submit(model: Job, raw: dict, uploads=None) -> None:
    try:
        job = inference_spec.create({**raw, "model": model.id}, JobStore(), uploads=uploads)
    except FormErrors as exc:
        for message in exc.errors.values():
            st.error(message)
        return
    except DigitsError as exc:
        st.error(str(exc))
        return
    st.switch_page("../pages/inference.py", query_params={"job": job.id})


def _earlier_runs(model: Job) -> None:
    runs = [j for j in JobStore().children(model) if j.kind == "inference"]
    if not runs:
        return
    with st.expander(f"Earlier runs ({len(runs)})"):
        for run in runs:
            summary = summarize(run, with_params=False)
            st.page_link("../pages/inference.py", query_params={"job": run.id},
                         label=f"{summary['name']} · :{STATE_COLORS[summary['status']]}[{summary['status']}] · "
                               f"{when(summary['created'])}")
