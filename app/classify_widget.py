"""Classify one uploaded image with a model. TensorFlow stays out of the UI
process: the engine's CLI runs the model in a child process."""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import plotly.express as px
import streamlit as st

from digits_engine.job_store import Job

TIMEOUT_S = 120


def run_classify(job: Job, image_name: str, data: bytes, top: int = 5) -> dict:
    """{"predictions": [...]} or {"error": text}."""
    suffix = Path(image_name).suffix or ".png"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(data)
        env = dict(os.environ, DIGITS_JOBS_DIR=str(job.dir.parent), TF_CPP_MIN_LOG_LEVEL="3")
        try:
            done = subprocess.run([sys.executable, "-m", "digits_engine", "classify", job.id, str(path), "--json",
                                   "--top", str(top)], capture_output=True, text=True, timeout=TIMEOUT_S, env=env)
        except subprocess.TimeoutExpired:
            return {"error": f"Classifying took longer than {TIMEOUT_S} s and was stopped."}
    try:
        return json.loads(done.stdout)
    except ValueError:
        lines = done.stderr.strip().splitlines()
        return {"error": lines[-1] if lines else "Classifying failed; the server's log says why."}


def classify_ui(job: Job) -> None:
    st.subheader("Classify an image")
    upload = st.file_uploader("Image", type=["png", "jpg", "jpeg", "bmp", "ppm", "pgm"], key=f"classify-{job.id}")
    if upload is None:
        return
    cache_key = f"classified-{job.id}-{upload.file_id}"
    if cache_key not in st.session_state:
        with st.spinner("Loading the model and classifying..."):
            st.session_state[cache_key] = run_classify(job, upload.name, upload.getvalue())
    result = st.session_state[cache_key]
    picture, table = st.columns([1, 3])
    picture.image(upload, caption=upload.name, width=160)
    if "error" in result:
        table.error(result["error"])
        return
    frame = pd.DataFrame(result["predictions"])
    fig = px.bar(frame[::-1], x="probability", y="label", orientation="h", range_x=[0, 1], text_auto=".1%",
                 title=f"Top {len(frame)}: {frame['label'][0]} ({frame['probability'][0]:.1%})")
    fig.update_layout(height=80 + 40 * len(frame), margin=dict(l=10, r=10, t=40, b=10), yaxis_title=None)
    table.plotly_chart(fig, key=f"classify-chart-{job.id}", width="stretch")
