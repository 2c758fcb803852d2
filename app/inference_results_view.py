"""What a finished inference job shows: accuracy, per-class scores, the
confusion matrix (click a cell for its images), the most confident mistakes,
the most confident images per class, and CSV downloads. A detection model's
job is detection_results_view's."""
from pathlib import Path

import pandas as pd
import streamlit as st

from digits_engine import inference_results
from digits_engine.errors import DigitsError
from digits_engine.job_store import Job

import confusion_chart
import detection_results_view
from image_grid import grid_html, thumbnail_png

SHOWN = 48  # images drawn per list
CELL_TRUE, CELL_PREDICTED = "results.cell_true", "results.cell_predicted"


@st.cache_data(max_entries=64, show_spinner=False)
def _rows(job_dir: str, written: float, rows: tuple) -> pd.DataFrame:
    """Rows of a finished job's predictions.csv, read once per file version (`written`: its mtime),
    not on every rerun of the page."""
    return inference_results.predictions(Job(Path(job_dir)), rows=list(rows))


@st.cache_data(max_entries=64, show_spinner=False)
def _cell(job_dir: str, written: float, true: str, predicted: str) -> tuple[int, pd.DataFrame]:
    return inference_results.cell(Job(Path(job_dir)), true, predicted, SHOWN)


def _written(job: Job) -> float:
    return (job.dir / "predictions.csv").stat().st_mtime


def results_ui(job: Job, results: dict) -> None:
    if results.get("task") == "detection":
        detection_results_view.results_ui(job, results)
        errors_section(results)
        return
    headline(results)
    if results.get("labelled"):
        per_class_table(results)
        confusion_section(job, results)
        mistakes_section(job, results)
    top_per_class_section(job, results)
    downloads(job)
    errors_section(results)


def headline(results: dict) -> None:
    cols = st.columns(4)
    cols[0].metric("Images", f"{results['count']:,}")
    if results.get("labelled"):
        cols[1].metric("Top-1 accuracy", f"{results['top1']:.1%}")
        if results.get("top5") is not None:
            cols[2].metric(f"Top-{min(5, len(results['labels']))} accuracy", f"{results['top5']:.1%}")
    else:
        cols[1].caption("No true labels were given, so there is no accuracy: give a text list with labels, "
                        "or a dataset split, to measure it.")
    if results.get("images_per_second"):
        cols[3].metric("Speed", f"{results['images_per_second']:,.0f} img/s")


def per_class_table(results: dict) -> None:
    st.subheader("Per class")
    table = pd.DataFrame(results["per_class"]).rename(columns=str.capitalize)
    st.dataframe(table, hide_index=True, key="results.per_class", column_config={
        name: st.column_config.NumberColumn(format="percent") for name in ("Precision", "Recall", "F1")})


def _pick_cell() -> None:
    cell = confusion_chart.clicked_cell(st.session_state.get("results.confusion"))
    if cell:
        st.session_state[CELL_TRUE], st.session_state[CELL_PREDICTED] = cell


def confusion_section(job: Job, results: dict) -> None:
    st.subheader("Confusion matrix")
    labels = results["labels"]
    st.caption("Rows are the true classes, columns the predictions; colour is the share of the row. "
               "Click a cell to see its images.")
    st.plotly_chart(confusion_chart.figure(results["confusion"], labels), key="results.confusion",
                    on_select=_pick_cell, selection_mode="points", width="content",
                    config={"displayModeBar": False})
    left, right = st.columns(2)
    true = left.selectbox("True class", labels, key=CELL_TRUE)
    predicted = right.selectbox("Predicted as", labels, key=CELL_PREDICTED)
    count, rows = _cell(str(job.dir), _written(job), true, predicted)
    st.caption(f"{count:,} image(s) of {true} predicted as {predicted}"
               + (f"; the {SHOWN} most confident shown" if count > SHOWN else ""))
    show_images(job, rows)


def mistakes_section(job: Job, results: dict) -> None:
    st.subheader("Misclassified, most confident first")
    ids = results.get("mistakes", [])[:SHOWN]
    if not ids:
        st.caption("No mistakes.")
        return
    show_images(job, _rows(str(job.dir), _written(job), tuple(ids)))


def top_per_class_section(job: Job, results: dict) -> None:
    st.subheader("Most confident per class")
    labels = [label for label in results["labels"] if results.get("top_per_class", {}).get(label)]
    if not labels:
        st.caption("No image was classified.")
        return
    label = st.selectbox("Class", labels, key="results.top_class",
                         help="The images the model gave the highest probability of this class, whatever it predicted.")
    show_images(job, _rows(str(job.dir), _written(job), tuple(results["top_per_class"][label])))


def show_images(job: Job, rows: pd.DataFrame) -> None:
    cells = []
    for row in rows.to_dict("records"):
        label = row.get("label")
        truth = f" (true {label})" if isinstance(label, str) and label and label != row["predicted"] else ""
        try:
            pixels = inference_results.image_of(job, row)
        except (DigitsError, OSError, ValueError) as exc:
            st.warning(f"{row['image']}: {exc}")
            return
        cells.append({"png": thumbnail_png(pixels), "name": str(row["image"]),
                      "label": f"{row['predicted']} {row['confidence']:.0%}{truth}"})
    if cells:
        st.html(grid_html(cells))


def downloads(job: Job) -> None:
    left, right = st.columns(2)
    for col, name, what in ((left, "predictions.csv", "predictions"), (right, "confusion.csv", "confusion matrix")):
        path = job.dir / name
        if path.exists():
            col.download_button(f"Download the {what} (CSV)", path.read_bytes(), file_name=f"{job.id}-{name}",
                                mime="text/csv", icon=":material/download:", key=f"results.download.{name}")


def errors_section(results: dict) -> None:
    errors = results.get("errors") or []
    if errors:
        with st.expander(f"{len(errors)} image(s) could not be read and were skipped"):
            st.dataframe(pd.DataFrame(errors), hide_index=True)
