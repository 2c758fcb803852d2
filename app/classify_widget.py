"""The single-image panel of a model page: classify one image (an upload or a
file on the server) with a chosen snapshot, and show the image as the network
saw it, the top-5 classes, and on request Grad-CAM and each layer's weights
and activations (DIGITS' "show visualizations and statistics"). A detection
model's boxes are drawn on the image by the bounding-box view, with its score
slider and a table of the boxes.

TensorFlow stays out of the UI process: `digits classify --details` runs the
model in a child process and writes what it saw and did to an .npz file
(`digits classify` alone for a detection model: its JSON holds the boxes).
"""
import io
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from digits_engine import config, gradcam, inference_spec, layer_stats, server_paths, snapshots
from digits_engine.atomic_json import read_json
from digits_engine.folder_parse import IMAGE_EXTENSIONS
from digits_engine.images import load_image
from digits_engine.job_store import Job
from digits_engine.plugins.views.boxes import Visualization

import field_widgets
from engine_cli import run_engine

TIMEOUT_S = 120
TOP = 5
SHOW_PX = 192  # small images are enlarged to about this width, pixel by pixel (a browser would blur them)
UPLOAD, SERVER = "Upload", "Path on the server"


def run_classify(job: Job, image_path: Path, epoch=None) -> dict:
    """`digits classify --details` on one image: {"predictions", "seen", "heatmap", "gradcam_class",
    "gradcam_error", "layers"}, or {"error": text}."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "details.npz"
        args = ["classify", job.id, str(image_path), "--top", str(TOP), "--details", str(out)]
        result = run_engine(args + ([] if epoch is None else ["--epoch", str(epoch)]), job.dir.parent,
                            "Classifying", TIMEOUT_S)
        if "error" in result or not out.exists():
            return {"error": result.get("error", "Classifying wrote no result; the server's log says why.")}
        with np.load(out) as details:
            return {**result, "seen": details["seen"], "heatmap": details["heatmap"],
                    "gradcam_class": str(details["gradcam_class"]), "gradcam_error": str(details["gradcam_error"]),
                    "layers": layer_stats.unpack(details)}


def run_detect(job: Job, image_path: Path, epoch=None) -> dict:
    """`digits classify` with a detection model: {"image", "detections": [{"label", "score", "box"}]} in the
    image's pixels, or {"error": text}."""
    args = ["classify", job.id, str(image_path)] + ([] if epoch is None else ["--epoch", str(epoch)])
    return run_engine(args, job.dir.parent, "Finding objects", TIMEOUT_S)


def is_detection(job: Job) -> bool:
    return inference_spec.model_task(job) == "detection"


def enlarged(pixels: np.ndarray, size: int = SHOW_PX) -> np.ndarray:
    """A small image repeated pixel by pixel to about `size` wide (grayscale as H x W)."""
    pixels = pixels[..., 0] if pixels.ndim == 3 and pixels.shape[-1] == 1 else pixels
    factor = max(1, size // max(pixels.shape[:2]))
    return np.repeat(np.repeat(pixels, factor, axis=0), factor, axis=1)


def source_ui(job: Job) -> tuple[str, np.ndarray, tuple[str, bytes] | Path] | None:
    """(cache id, original pixels, the upload's (name, bytes) or the server file's path) of the image, or None."""
    source = st.radio("Image from", (UPLOAD, SERVER), horizontal=True, key=f"classify-source-{job.id}")
    if source == UPLOAD:
        upload = st.file_uploader("Image", type=[e.lstrip(".") for e in IMAGE_EXTENSIONS], key=f"classify-{job.id}",
                                  max_upload_size=field_widgets.upload_limit_mb())
        if upload is None:
            return None
        image_id, data = f"upload:{upload.file_id}", (upload.name, upload.getvalue())
        original = io.BytesIO(data[1])
    else:
        roots = ", ".join(map(str, config.data_roots()))
        raw = st.text_input(SERVER, key=f"classify-path-{job.id}", placeholder="/data/images/cat.png",
                            help=f"An image file inside the folders this server may read: {roots}.").strip()
        if not raw:
            return None
        if problem := server_paths.problem(raw, "file"):
            st.error(problem)
            return None
        data = original = Path(raw).expanduser()
        stat = data.stat()
        image_id = f"path:{data}:{stat.st_mtime_ns}:{stat.st_size}"
    try:
        return image_id, np.asarray(load_image(original)), data
    except ValueError as exc:  # ImageError: not an image, truncated, too large
        st.error(str(exc))
        return None


def snapshot_ui(job: Job):
    """The epoch of the chosen snapshot; None for the latest."""
    epochs = [epoch for epoch, _ in reversed(snapshots.list_snapshots(job))]
    return st.selectbox("Snapshot", [None, *epochs], key=f"classify-epoch-{job.id}",
                        format_func=lambda e: "Latest" if e is None else f"Epoch {e}")


def classified(job: Job, image_id: str, data: tuple[str, bytes] | Path, epoch) -> dict:
    """The result for this image and snapshot, run once and kept in the session (one per model)."""
    slot, key = f"classify-result-{job.id}", (image_id, epoch)
    if st.session_state.get(slot, (None, None))[0] != key:
        with st.spinner("Loading the model and classifying..."), tempfile.TemporaryDirectory() as tmp:
            if isinstance(data, tuple):
                path = Path(tmp) / f"upload{Path(data[0]).suffix or '.png'}"
                path.write_bytes(data[1])
            else:
                path = data
            st.session_state[slot] = (key, (run_detect if is_detection(job) else run_classify)(job, path, epoch))
    return st.session_state[slot][1]


def seen_caption(spec: dict, crop) -> str:
    channels = {1: "grayscale", 3: "colour"}.get(spec.get("channels"), f"{spec.get('channels')} channels")
    text = f"As the network saw it: {spec.get('width')}x{spec.get('height')}, {channels}, {spec.get('resize_mode')}"
    return text + (f", centre crop {crop}x{crop}" if crop else "")


def top_chart(predictions: list[dict]) -> go.Figure:
    labels, values = [p["label"] for p in predictions], [p["probability"] for p in predictions]
    fig = go.Figure(go.Bar(x=values, y=labels, orientation="h", text=[f"{v:.1%}" for v in values],
                           textposition="auto"))
    fig.update_layout(title=f"Top {len(predictions)}: {labels[0]} ({values[0]:.1%})", height=80 + 40 * len(labels),
                      margin=dict(l=10, r=10, t=40, b=10), xaxis=dict(range=[0, 1], tickformat=".0%"),
                      yaxis=dict(autorange="reversed"))
    return fig


def histogram(stats: dict | None, title: str) -> go.Figure | None:
    """A bar per bin of a layer_stats.summary() histogram."""
    if not stats or not stats.get("histogram"):
        return None
    counts, low, high = stats["histogram"]["counts"], stats["histogram"]["low"], stats["histogram"]["high"]
    width = (high - low) / len(counts)
    fig = go.Figure(go.Bar(x=[low + width * (i + 0.5) for i in range(len(counts))], y=counts, width=width))
    fig.update_layout(title=title, height=220, margin=dict(l=10, r=10, t=40, b=10), bargap=0.05)
    return fig


def stats_table(rows: list[dict]) -> pd.DataFrame:
    table = []
    for row in rows:
        line = {"layer": row["name"], "type": row["type"], "output": "x".join(map(str, row["output_shape"])),
                "parameters": row["parameters"]}
        for part in ("weights", "activations"):
            for stat in ("mean", "std", "min", "max"):
                line[f"{part} {stat}"] = (row[part] or {}).get(stat)
        table.append(line)
    return pd.DataFrame(table)


def layer_detail(row: dict, key: str) -> None:
    """One layer's weight and activation histograms and its activations (channel tiles or the vector)."""
    charts = [(histogram(row["weights"], f"Weights {row['weights']['shape']}" if row["weights"] else ""), "weights"),
              (histogram(row["activations"], "Activations on this image"), "activations")]
    for col, (fig, part) in zip(st.columns(2), charts):
        if fig is not None:
            col.plotly_chart(fig, key=f"{key}-{part}", width="stretch")
    if "tiles" in row:
        st.caption(f"Activation maps, channels {row['channels_shown']} (bright: strong activation)")
        st.image([enlarged(tile, 72) for tile in row["tiles"]], caption=[f"channel {i}" for i in range(len(row["tiles"]))], width=72)
    elif "vector" in row:
        fig = go.Figure(go.Bar(y=row["vector"]))
        fig.update_layout(title=f"Activations ({len(row['vector'])} of {row['output_shape'][0]} values)", height=220,
                          margin=dict(l=10, r=10, t=40, b=10))
        st.plotly_chart(fig, key=f"{key}-vector", width="stretch")


def layers_ui(job: Job, rows: list[dict]) -> None:
    st.dataframe(stats_table(rows), hide_index=True, width="stretch")
    names = [row["name"] for row in rows]
    chosen = st.selectbox("Layer", names, key=f"classify-layer-{job.id}",
                          format_func=lambda n: f"{n} ({rows[names.index(n)]['type']})")
    layer_detail(rows[names.index(chosen)], f"classify-layer-{job.id}")


def result_ui(job: Job, original: np.ndarray, result: dict) -> None:
    info = read_json(job.dir / "model.json") or {}
    left, right, chart = st.columns([1, 1, 2])
    height, width = original.shape[:2]
    left.image(enlarged(original) if width < SHOW_PX else original, caption=f"Your image: {width}x{height}",
               width=SHOW_PX)
    right.image(enlarged(result["seen"]), caption=seen_caption(info.get("image", {}), info.get("crop")),
                width=SHOW_PX)
    chart.plotly_chart(top_chart(result["predictions"]), key=f"classify-top-{job.id}", width="stretch")
    if st.checkbox("Grad-CAM", key=f"classify-gradcam-{job.id}",
                   help="Where in the image the network found the evidence for its top class."):
        if result["gradcam_error"]:
            st.info(result["gradcam_error"])
        else:
            st.image(enlarged(gradcam.overlay(result["seen"], result["heatmap"])), width=SHOW_PX,
                     caption=f"Grad-CAM of {result['gradcam_class']}: red where the evidence is strongest")
    if st.checkbox("Show visualizations and statistics", key=f"classify-layers-{job.id}",
                   help="Each layer's output shape, parameters, weight and activation statistics, and activations."):
        layers_ui(job, result["layers"])


def detection_ui(job: Job, original: np.ndarray, result: dict) -> None:
    """The boxes found, drawn on the image through the bounding-box view (its slider hides the weak ones)."""
    view = Visualization(labels=(read_json(job.dir / "model.json") or {}).get("labels", []))
    height, width = original.shape[:2]
    try:
        data = view.process_data(f"Your image: {width}x{height}", original, result["detections"])
    except ValueError as exc:
        st.error(str(exc))
        return
    view.render(data, st)


def classify_ui(job: Job) -> None:
    """Choose an image and a snapshot, classify, and show the results."""
    st.subheader("Find objects in an image" if is_detection(job) else "Classify an image")
    chosen = source_ui(job)
    epoch = snapshot_ui(job)
    if chosen is None:
        return
    image_id, original, data = chosen
    result = classified(job, image_id, data, epoch)
    if "error" in result:
        st.error(result["error"])
    elif "detections" in result:
        detection_ui(job, original, result)
    else:
        result_ui(job, original, result)
