"""One dataset: its build progress, then what it holds: classes, counts per
split, image format, source sizes, the mean image; its health report (files
skipped, duplicates, small classes, mixed modes, EXIF-rotated photos); and
an explorer of its records."""
import os

import pandas as pd
import plotly.express as px
import streamlit as st


from digits_engine import image_source, lmdb_store
from digits_engine.image_records import read_record
from digits_engine.plugins.views import segmentation
from digits_engine.atomic_json import read_json
from digits_engine.job_state import JobState

from image_grid import as_rgb

import dataset_explorer
import dataset_health_report
import detection_samples
import job_widgets
import source_sizes_chart

job, summary, active = job_widgets.page_job("dataset", "Datasets")


def counts_chart(stats: dict):
    rows = [{"class": label, "split": split, "images": n}
            for split, counts in stats["counts"].items() for label, n in counts.items()]
    title = "Images holding each class, per split" if stats.get("task") == "detection" else \
        "Images per class and split"
    fig = px.bar(pd.DataFrame(rows), x="class", y="images", color="split", barmode="group", title=title)
    fig.update_layout(height=340, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def counts_table(stats: dict) -> pd.DataFrame:
    """Images per class (rows) and split (columns), with totals."""
    table = pd.DataFrame(stats["counts"]).reindex(stats["labels"]).fillna(0).astype(int)
    table["all splits"] = table.sum(axis=1)
    table.loc["all classes"] = table.sum()
    return table


def summary_ui(stats: dict) -> None:
    image = stats["image"]
    cols = st.columns(4)
    cols[0].metric("Classes", len(stats["labels"]))
    for col, split in zip(cols[1:], ("train", "val", "test")):
        col.metric(f"{split.capitalize()} images", stats["totals"].get(split, 0))
    kind = "color" if image["channels"] == 3 else "grayscale"
    plugin_resize = job.params.get("options", {}).get("resize_mode")  # a plugin's own resizing, if it has one
    resize_mode = plugin_resize if job.params.get("source") == "plugin" else image["resize_mode"]
    resized = f", resized by *{resize_mode}*" if resize_mode else ""
    st.markdown(f"**Images:** {image['width']} × {image['height']} {kind}{resized}, "
                f"stored as **{image['encoding']}**.  \n**Classes:** {', '.join(stats['labels'])}  \n"
                f"**Source:** `{image_source.describe(job.params)}`")
    chart, mean = st.columns([3, 1])
    chart.plotly_chart(counts_chart(stats), key="counts", width="stretch")
    with mean:
        st.markdown("**Mean image**")
        st.image(str(job.artifact("mean.png")), width=160)
    st.dataframe(counts_table(stats), width="stretch")
    sizes = source_sizes_chart.size_counts(str(job.dir), os.path.getmtime(job.artifact("stats.json")))
    if len(sizes):
        st.plotly_chart(source_sizes_chart.sizes_chart(sizes), key="sizes", width="stretch")


def mask_samples_ui(stats: dict, count: int = 6) -> None:
    """A few training images with their label masks overlaid (segmentation datasets)."""
    records = lmdb_store.read_range(job.artifact("train"), 0, min(count, stats["totals"].get("train", 0)))
    colours = segmentation.colour_table("paired", len(stats["labels"]))
    st.markdown("**Samples with their masks**")
    for col, record in zip(st.columns(count), records):
        pixels, mask = read_record(record)
        col.image(segmentation.blend(as_rgb(pixels), mask[:, :, 0], colours, 0.5), width="stretch")


def problems_ui(stats: dict) -> None:
    skipped, classes = stats.get("skipped_files", []), stats.get("skipped_classes", [])
    if skipped:
        with st.expander(f"{len(skipped)} file(s) skipped: not images, or unreadable", icon=":material/warning:"):
            st.dataframe(pd.DataFrame(skipped), hide_index=True, width="stretch")
    if classes:
        with st.expander(f"{len(classes)} class(es) left out", icon=":material/warning:"):
            st.dataframe(pd.DataFrame(classes), hide_index=True, width="stretch")
    for warning in stats.get("warnings", []):
        st.warning(warning)


@st.fragment(run_every=1.5 if active else None)
def live() -> None:
    job_widgets.live_status(job, active, lambda _: " of the images")


live()
stats = read_json(job.artifact("stats.json"))
if stats and summary["status"] == JobState.DONE.value:
    summary_ui(stats)
    if stats.get("task") == "segmentation":
        mask_samples_ui(stats)
    if stats.get("task") == "detection":
        detection_samples.objects_ui(stats)
        detection_samples.samples_ui(job, stats)
    st.subheader("Health")
    problems_ui(stats)
    dataset_health_report.health_ui(job, stats)
    st.subheader("Explore the database")
    dataset_explorer.explorer_ui(job, stats)
    st.page_link("../pages/new_model.py", label="Train a model on this dataset", icon=":material/model_training:",
                 query_params={"dataset": job.id})
with st.expander("Settings"):
    st.json(summary["params"], expanded=True)
