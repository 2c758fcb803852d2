"""Visualization options on a model trained on a plugin dataset: the data
plugin's inference form, a view plugin with its options, and the results.

The model runs in a child process (`digits infer`), so TensorFlow stays out
of the UI; the view's process_data and render run here."""
import tempfile
from pathlib import Path

import numpy as np
import streamlit as st

from digits_engine.atomic_json import read_json
from digits_engine.errors import PluginError
from digits_engine.fields import FormErrors, convert
from digits_engine.job_store import Job
from digits_engine.plugins import registry

import field_widgets
from engine_cli import run_engine

TIMEOUT_S = 300


def _inputs_ui(fields, prefix: str, folder: Path) -> dict:
    """The inference form; a path field is an upload, saved into `folder`."""
    raw = {}
    for field in fields:
        if field.kind == "path":
            upload = st.file_uploader(field.label, key=prefix + field.name, help=field.help or None,
                                      max_upload_size=field_widgets.upload_limit_mb())
            if upload is not None:
                path = folder / Path(upload.name).name
                path.write_bytes(upload.getvalue())
                raw[field.name] = str(path)
        else:
            field_widgets.init_state([field], prefix)
            field_widgets.widget(field, prefix + field.name)
            raw[field.name] = st.session_state.get(prefix + field.name)
    return raw


def run_infer(job: Job, options: dict) -> dict:
    """{"inputs", "outputs", "ids"} from `digits infer`, or {"error": text}."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.npz"
        args = ["infer", job.id, "--output", str(out)]
        for name, value in options.items():
            args += ["--option", f"{name}={value}"]
        result = run_engine(args, job.dir.parent, "Inference", TIMEOUT_S)
        if "error" in result or not out.exists():
            return {"error": result.get("error", "Inference wrote no result; the server's log says why.")}
        with np.load(out) as result:
            return {"inputs": result["inputs"], "outputs": result["outputs"], "ids": result["ids"].tolist()}


def _view_ui(task: str, labels: list, prefix: str):
    fitting = [(vid, cls) for vid, cls in registry.working("view").items() if task in cls.tasks()]
    views = dict(sorted(fitting, key=lambda item: len(item[1].tasks())))  # views made for this task first
    if not views:
        st.warning(f"No installed view plugin shows {task} results.")
        return None
    view_id = st.selectbox("View", list(views), format_func=lambda v: views[v].get_title(), key=prefix + "view")
    fields = views[view_id].config_fields()
    field_widgets.init_state(fields, prefix + view_id + ".")
    field_widgets.in_columns(fields, prefix + view_id + ".", {})
    values, errors = convert(fields, field_widgets.values(fields, prefix + view_id + "."))
    for message in errors.values():
        st.error(message)
    try:
        return views[view_id](labels=labels, **values)
    except (FormErrors, ValueError) as exc:
        st.error(str(exc))
        return None


FROM_IMAGES = ("classification", "detection")  # tasks tested from uploaded images and inference jobs instead


def plugin_inference_ui(job: Job) -> bool:
    """Draw the section for a plugin model; False when the model is not one."""
    info = read_json(job.dir / "model.json") or {}
    source = info.get("source") or {}
    if source.get("source") != "plugin":
        return False
    try:
        plugin = registry.get("data", source["plugin"])
    except PluginError as exc:
        st.warning(str(exc))
        return info.get("task") not in FROM_IMAGES
    fields = plugin.inference_fields()
    if fields is None:
        return info.get("task") not in FROM_IMAGES
    st.subheader("Visualization options")
    prefix = f"infer.{job.id}."
    folder = Path(tempfile.gettempdir()) / "digits-uploads" / job.id
    folder.mkdir(parents=True, exist_ok=True)
    options = _inputs_ui(fields, prefix, folder)
    view = _view_ui(info.get("task", "classification"), info.get("labels", []), prefix)
    if st.button("Run the model", icon=":material/play_arrow:", key=prefix + "run", type="primary"):
        with st.spinner("Loading the model and running it..."):
            st.session_state[prefix + "result"] = run_infer(job, options)
    result = st.session_state.get(prefix + "result")
    if result is None or view is None:
        return True
    if "error" in result:
        st.error(result["error"])
        return True
    for input_id, image, output in zip(result["ids"], result["inputs"], result["outputs"]):
        try:
            view.render(view.process_data(input_id, image, output), st)
        except ValueError as exc:
            st.error(f"{input_id}: {exc}")
    return True
