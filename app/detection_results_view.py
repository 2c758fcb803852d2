"""What a finished inference job of a detection model shows: with ground truth
(a dataset split), mAP@0.5 and the AP of each class, then the images with the
worst misses, predicted boxes solid and true boxes dashed; without it, the
first images with their boxes. A score slider hides the weaker boxes (the
model is not run again), and detections.jsonl can be downloaded."""
import math
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from digits_engine import inference_results
from digits_engine.errors import DigitsError
from digits_engine.job_store import Job
from digits_engine.plugins.views.boxes import draw_boxes, enlarge

SHOWN = 24  # images drawn without ground truth
WIDTH = 240  # px each drawn image is shown at
THRESHOLD = "results.detection_threshold"


@st.cache_data(max_entries=64, show_spinner=False)
def _lines(job_dir: str, written: float, rows: tuple | None, limit: int | None) -> list[dict]:
    """detections.jsonl lines, read once per file version (`written`: its mtime)."""
    return inference_results.detections(Job(Path(job_dir)), rows=rows, limit=limit)


def _written(job: Job) -> float:
    return (job.dir / "detections.jsonl").stat().st_mtime


def results_ui(job: Job, results: dict) -> None:
    headline(results)
    if results.get("mAP") is not None:
        per_class_section(results)
    st.subheader("Worst misses" if results.get("mAP") is not None else "Detections")
    threshold = st.slider("Score threshold", 0.0, 1.0, float(results.get("miss_score", 0.3)), 0.01, key=THRESHOLD,
                          help="Hides the predicted boxes scoring below it; the model is not run again.")
    if results.get("mAP") is not None:
        worst_misses_section(job, results, threshold)
    else:
        first_images_section(job, results, threshold)
    download(job)


def headline(results: dict) -> None:
    cols = st.columns(4)
    cols[0].metric("Images", f"{results['images']:,}")
    if results.get("mAP") is not None:
        cols[1].metric("mAP@0.5", f"{results['mAP']:.3f}")
        cols[2].metric("Objects", f"{sum(results['objects'].values()):,}")
    else:
        cols[1].caption("No ground truth was given, so there is no mAP: run the model on a detection dataset's "
                        "split to measure it.")
    if results.get("images_per_second"):
        cols[3].metric("Speed", f"{results['images_per_second']:,.1f} img/s")


def per_class_section(results: dict) -> None:
    st.subheader("Average precision per class")
    st.caption("PASCAL VOC all-point AP at IoU 0.5; a class without true boxes here has no AP.")
    table = pd.DataFrame(results["per_class"]).rename(columns={"class": "Class", "precision": "Precision",
                                                               "recall": "Recall", "detections": "Detections"})
    table.insert(2, "Objects", [results["objects"][name] for name in table["Class"]])
    st.dataframe(table, hide_index=True, key="results.per_class_ap", column_config={
        "AP": st.column_config.ProgressColumn("AP", format="%.3f", min_value=0.0, max_value=1.0),
        "Precision": st.column_config.NumberColumn(format="percent"),
        "Recall": st.column_config.NumberColumn(format="percent")})
    st.bar_chart(table.set_index("Class")["AP"].fillna(0.0), horizontal=True, x_label="AP",
                 height=60 + 30 * len(table))


def _class_ids(names, labels: list[str]) -> np.ndarray:
    return np.array([labels.index(n) for n in names if n in labels], np.int64)


def drawn(pixels: np.ndarray, found: dict, labels: list[str], threshold: float, truth: dict | None = None):
    """The image enlarged towards WIDTH px, the true boxes dashed and the predictions >= threshold solid."""
    image = pixels if pixels.shape[2] == 3 else np.repeat(pixels[:, :, :1], 3, axis=2)
    scale = max(1, math.ceil(WIDTH / max(image.shape[:2])))
    image = enlarge(image, scale)
    if truth is not None:
        image = draw_boxes(image, truth["boxes"], _class_ids(truth["classes"], labels), labels, dashed=True,
                           scale=scale)
    scores = np.asarray(found["scores"], np.float64)
    keep = scores >= threshold
    boxes = np.asarray(found["boxes"], np.float64).reshape(-1, 4)[keep]
    return draw_boxes(image, boxes, _class_ids(np.asarray(found["classes"], object)[keep], labels), labels,
                      scores[keep], scale=scale)


def worst_misses_section(job: Job, results: dict, threshold: float) -> None:
    misses = results.get("worst_misses") or []
    st.caption(f"The images with the most true boxes (dashed) that no detection scoring at least "
               f"{results['miss_score']:.2f} found at IoU 0.5, then the lowest recall; detections solid.")
    if not misses:
        st.caption("Every true box was found.")
        return
    found = {d["row"]: d for d in _lines(str(job.dir), _written(job), tuple(m["row"] for m in misses), None)}
    pictures, captions = [], []
    for miss in misses:
        try:
            pixels, truth = inference_results.truth_of(job, miss["record"])
        except (DigitsError, OSError, ValueError) as exc:
            st.warning(f"{miss['image']}: {exc}")
            return
        pictures.append(drawn(pixels, found[miss["row"]], results["labels"], threshold, truth))
        captions.append(f"{Path(str(miss['image'])).name}: {miss['missed']} of {miss['objects']} missed")
    st.image(pictures, caption=captions, width=WIDTH, output_format="PNG")


def first_images_section(job: Job, results: dict, threshold: float) -> None:
    found = _lines(str(job.dir), _written(job), None, SHOWN)
    st.caption(f"The first {len(found)} of {results['images']:,} image(s), in their own pixels.")
    pictures, captions = [], []
    for line in found:
        try:
            pixels = inference_results.image_of(job, line)
        except (DigitsError, OSError, ValueError) as exc:
            st.warning(f"{line['image']}: {exc}")
            continue
        pictures.append(drawn(pixels, line, results["labels"], threshold))
        shown = sum(s >= threshold for s in line["scores"])
        captions.append(f"{Path(str(line['image'])).name}: {shown} box{'' if shown == 1 else 'es'}")
    if pictures:
        st.image(pictures, caption=captions, width=WIDTH, output_format="PNG")


def download(job: Job) -> None:
    path = job.dir / "detections.jsonl"
    if path.exists():
        st.download_button("Download the detections (JSON lines)", path.read_bytes(),
                           file_name=f"{job.id}-detections.jsonl", mime="application/x-ndjson",
                           icon=":material/download:", key="results.download.detections")
