"""A detection dataset on its page: a few training images with their boxes
drawn and labelled, and how many objects of each class every split holds
(the KITTI "dontcare" boxes were left out at ingest and are counted apart)."""
import pandas as pd
import plotly.express as px
import streamlit as st

from digits_engine import lmdb_store
from digits_engine.image_records import read_record
from digits_engine.job_store import Job
from digits_engine.plugins.views import boxes

from image_grid import as_rgb


def objects_table(stats: dict) -> pd.DataFrame:
    """Objects per class (rows) and split (columns), with totals."""
    table = pd.DataFrame(stats["objects"]).reindex(stats["labels"]).fillna(0).astype(int)
    table["all splits"] = table.sum(axis=1)
    table.loc["all classes"] = table.sum()
    return table


def objects_chart(stats: dict):
    rows = [{"class": label, "split": split, "objects": n}
            for split, counts in stats["objects"].items() for label, n in counts.items()]
    fig = px.bar(pd.DataFrame(rows, columns=["class", "split", "objects"]), x="class", y="objects", color="split",
                 barmode="group", title="Objects (boxes) per class and split")
    fig.update_layout(height=340, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def dontcare_line(stats: dict) -> str:
    ignored = {split: n for split, n in stats.get("dontcare", {}).items() if n}
    if not ignored:
        return "No *dontcare* box."
    return ("*dontcare* boxes left out of training: "
            + ", ".join(f"{n:,} in {split}" for split, n in ignored.items()) + ".")


def boxed(pixels, truth: dict, labels: list[str]):
    """The stored image enlarged for display, its boxes outlined and named."""
    scale = boxes.display_scale(*pixels.shape[:2])
    return boxes.draw_boxes(boxes.enlarge(as_rgb(pixels), scale), truth["boxes"], truth["classes"], labels,
                            scale=scale)


def samples_ui(job: Job, stats: dict, count: int = 6, per_row: int = 3) -> None:
    """The first `count` training images with their boxes, `per_row` a row (large enough to read the names)."""
    records = lmdb_store.read_range(job.artifact("train"), 0, min(count, stats["totals"].get("train", 0)))
    st.markdown("**Samples with their boxes**")
    for start in range(0, len(records), per_row):
        for col, record in zip(st.columns(per_row), records[start:start + per_row]):
            pixels, truth = read_record(record)
            col.image(boxed(pixels, truth, stats["labels"]), width="stretch",
                      caption=f"{len(truth['classes'])} object(s)")


def objects_ui(stats: dict) -> None:
    if not stats.get("objects"):
        return
    chart, table = st.columns([3, 2])
    chart.plotly_chart(objects_chart(stats), key="objects", width="stretch")
    table.dataframe(objects_table(stats), width="stretch")
    table.caption(dontcare_line(stats))
