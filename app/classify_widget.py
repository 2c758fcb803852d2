"""Classify one uploaded image with a model. TensorFlow stays out of the UI
process: the engine's CLI runs the model in a child process."""
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import streamlit as st

from digits_engine.atomic_json import read_json
from digits_engine.errors import DigitsError
from digits_engine.folder_parse import IMAGE_EXTENSIONS
from digits_engine.images import load_image
from digits_engine.job_store import Job
from digits_engine.plugins import registry

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
    """Upload an image, classify it, and show it through the classification view plugin."""
    st.subheader("Classify an image")
    upload = st.file_uploader("Image", type=[e.lstrip(".") for e in IMAGE_EXTENSIONS], key=f"classify-{job.id}")
    if upload is None:
        return
    labels = (read_json(job.dir / "model.json") or {}).get("labels", [])
    cache_key = f"classified-{job.id}-{upload.file_id}"
    if cache_key not in st.session_state:
        with st.spinner("Loading the model and classifying..."):
            st.session_state[cache_key] = run_classify(job, upload.name, upload.getvalue(), top=max(len(labels), 1))
    result = st.session_state[cache_key]
    if "error" in result:
        st.error(result["error"])
        return
    probabilities = {p["label"]: p["probability"] for p in result["predictions"]}
    try:
        view = registry.get("view", "image-classification")(labels=labels, top=min(5, len(labels)))
        image = np.asarray(load_image(io.BytesIO(upload.getvalue())))
        view.render(view.process_data(upload.name, image, np.array([probabilities.get(l, 0.0) for l in labels])), st)
    except (DigitsError, ValueError) as exc:
        st.error(str(exc))
