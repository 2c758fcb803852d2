"""Explore the database: pages of thumbnails read back from a dataset's LMDB,
filtered by split and class, each with its source file's name on hover.

A page reads only its own records: their positions come from the record
index (a slice of the class's position list), their names from the index rows
that hold them, their pixels from the LMDB by key.
"""
import streamlit as st

from digits_engine import lmdb_store, record_index
from digits_engine.image_records import read_record
from digits_engine.job_store import Job

from image_grid import grid_html, thumbnail_png

PAGE_SIZES = (24, 48, 96)
KEY = "explore"


def page_cells(job: Job, split: str, offset: int, size: int, label: int | None, labels: list[str]) -> list[dict]:
    """The page's thumbnails: {"png": bytes, "name": source name, "label": class text}, in LMDB order."""
    rows = record_index.read_page(job.dir, split, offset, size, label)
    records = lmdb_store.read_indices(job.artifact(split), [r["position"] for r in rows])
    return [{"png": thumbnail_png(*read_record(record), len(labels)), "name": row["name"],
             "label": _label_text(row, labels)} for row, record in zip(rows, records)]


def _label_text(row: dict, labels: list[str]) -> str:
    ids = [row["label"]] if row["label"] >= 0 else row["classes"]
    return ", ".join(labels[i] if i < len(labels) else str(i) for i in ids)


def _reset_page() -> None:
    st.session_state[f"{KEY}.page"] = 1


def _step_page(delta: int, pages: int) -> None:
    st.session_state[f"{KEY}.page"] = min(max(st.session_state.get(f"{KEY}.page", 1) + delta, 1), pages)


@st.fragment
def explorer_ui(job: Job, stats: dict) -> None:
    """The explorer's filters, its page navigation and the page's thumbnails (reruns alone when paging)."""
    splits = [s for s in record_index.splits(job.dir) if record_index.count(job.dir, s)]
    if not splits:
        st.info("This dataset was built before its records' names were kept: clone it to explore it.")
        return
    labels = stats["labels"]
    left, middle, right = st.columns([1, 2, 1])
    split = left.selectbox("Split", splits, key=f"{KEY}.split", on_change=_reset_page)
    label = middle.selectbox("Class", [None, *range(len(labels))], key=f"{KEY}.class", on_change=_reset_page,
                             format_func=lambda i: "All classes" if i is None else labels[i])
    size = right.selectbox("Per page", PAGE_SIZES, key=f"{KEY}.size", on_change=_reset_page)
    total = record_index.count(job.dir, split, label)
    pages = max((total + size - 1) // size, 1)
    if st.session_state.get(f"{KEY}.page", 1) > pages:
        st.session_state[f"{KEY}.page"] = pages
    back, number, forward, where = st.columns([1, 2, 1, 4], vertical_alignment="bottom")
    back.button("Previous", key=f"{KEY}.previous", on_click=_step_page, args=(-1, pages), width="stretch")
    page = number.number_input("Page", min_value=1, max_value=pages, step=1, key=f"{KEY}.page")
    forward.button("Next", key=f"{KEY}.next", on_click=_step_page, args=(1, pages), width="stretch")
    offset = (page - 1) * size
    if not total:
        where.caption("No record of this class in this split.")
        return
    where.caption(f"Records {offset + 1}–{min(offset + size, total)} of {total:,} · hover a thumbnail for its file")
    st.html(grid_html(page_cells(job, split, offset, size, label, labels)))
