"""Import a model: upload an archive made by a model's Download (or `digits
export`), or a Keras .keras file with its labels file. The engine's CLI makes
it a model job in a child process (TensorFlow stays out of the UI process);
the page then links to the new model, which classifies and fine-tunes like a
trained one."""
import shutil
import tempfile
from pathlib import Path

import streamlit as st

from digits_engine import config

import field_widgets
from engine_cli import run_engine

KEY = "import_model."
TIMEOUT_S = 300
MODEL_TYPES = ["zip", "gz", "tgz", "tar", "keras"]
ABOUT = ("A .zip or .tar.gz made by a model's Download (or `digits export`), or a Keras 3 .keras file with a labels "
         "file: one class a line, in the order of the model's outputs. The imported model classifies images and can "
         "be fine-tuned on a dataset of its image size (New model, network \"Previous network\").")


def _saved(upload, folder: Path) -> Path:
    """An uploaded file, written under `folder` with its own name (the engine reads its suffix)."""
    path = folder / (Path(upload.name).name or "upload")
    upload.seek(0)
    with open(path, "wb") as out:
        shutil.copyfileobj(upload, out)
    return path


def run_import(model_upload, labels_upload, name: str) -> dict:
    """`digits import` on the uploads: the new job's summary, or {"error": text}."""
    with tempfile.TemporaryDirectory(dir=config.jobs_dir(), prefix=".upload-import-") as tmp:
        args = ["import", str(_saved(model_upload, Path(tmp)))]
        if labels_upload is not None:
            labels_dir = Path(tmp) / "labels"
            labels_dir.mkdir()
            args += ["--labels", str(_saved(labels_upload, labels_dir))]
        if name.strip():
            args += ["--name", name.strip()]
        return run_engine(args, config.jobs_dir(), "The import", TIMEOUT_S)


def uploads_ui():
    """(the model file, the labels file or None, the name) as chosen on the page."""
    limit = field_widgets.upload_limit_mb()
    model_upload = st.file_uploader(f"Model archive or .keras file (up to {limit:,} MB)", type=MODEL_TYPES,
                                    key=KEY + "file", max_upload_size=limit, help=ABOUT)
    labels_upload = None
    if model_upload is not None and model_upload.name.lower().endswith(".keras"):
        labels_upload = st.file_uploader("Labels file *", type=["txt"], key=KEY + "labels", max_upload_size=limit,
                                         help="One class a line, in the order of the model's outputs.")
    name = st.text_input("Name", key=KEY + "name", placeholder="Blank: the source model's name, or the file's")
    return model_upload, labels_upload, name


def result_ui(result: dict) -> None:
    if "id" not in result:  # the CLI's {"error": ...}; a job's summary has an "error" field too, None
        st.error(result.get("error") or "The import failed; the server's log says why.", icon=":material/error:")
        return
    st.success(f"Imported {result['name']!r} as a model.", icon=":material/check_circle:")
    if result.get("note"):
        st.caption(f"Assumed: {result['note'].replace('assumed ', '')}")
    st.page_link("../pages/model.py", label=f"Open {result['name']}", icon=":material/insights:",
                 query_params={"job": result["id"]})


st.title("Import a model")
st.caption(ABOUT)
model_upload, labels_upload, name = uploads_ui()
if st.button("Import", type="primary", icon=":material/upload:", key=KEY + "import", disabled=model_upload is None):
    with st.spinner("Loading and checking the model..."):
        st.session_state[KEY + "result"] = (model_upload.file_id, run_import(model_upload, labels_upload, name))
upload_id, result = st.session_state.get(KEY + "result", (None, None))
if result is not None and model_upload is not None and upload_id == model_upload.file_id:
    result_ui(result)
