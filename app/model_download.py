"""The model page's download section: pick a format and an epoch, make the
export with the engine's CLI in a child process (TensorFlow stays out of the
UI process; the export checks its own predictions), then download it.

A made export is kept in the job's exports/ folder, named for the model, epoch
and format, so a rerun of the page offers it at once instead of making it
again (unless its snapshot is newer, as after a resume redid that epoch)."""
import re
from pathlib import Path

import streamlit as st

from digits_engine import snapshots
from digits_engine.job_store import Job

from engine_cli import run_engine

TIMEOUT_S = 600
FORMATS = {  # label -> (the CLI's --format, the file's suffix)
    "Archive (.zip)": ("archive", ".zip"),
    "Archive (.tar.gz)": ("archive", ".tar.gz"),
    "SavedModel (.zip)": ("savedmodel", ".zip"),
    "TFLite (.tflite)": ("tflite", ".tflite"),
}
MIME = {".zip": "application/zip", ".tar.gz": "application/gzip", ".tflite": "application/octet-stream"}
ABOUT = ("An archive holds the Keras model (.keras), a TensorFlow SavedModel, the labels, the preprocessing in "
         "info.json and a README with a stand-alone example. Each export is loaded again and its predictions "
         "compared with the model's before it is offered.")


def export_path(job: Job, fmt: str, suffix: str, epoch) -> Path:
    """jobs_dir/<id>/exports/<name>_epoch<e>[_<format>]<suffix>: also the downloaded file's name."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", job.name).strip("._-") or "model"
    kind = "" if fmt == "archive" else f"_{fmt}"
    return job.dir / "exports" / f"{stem}_epoch{epoch}{kind}{suffix}"


def is_current(path: Path, snapshot: Path) -> bool:
    return path.is_file() and path.stat().st_mtime >= snapshot.stat().st_mtime


def run_export(job: Job, fmt: str, path: Path, epoch) -> str | None:
    """Make the export with `digits export`; None when it was made, else why not (for a person)."""
    result = run_engine(["export", job.id, "--format", fmt, "-o", str(path), "--epoch", str(epoch)],
                        job.dir.parent, "The export", TIMEOUT_S, cpu_only=True)
    return result.get("error")


def download_ui(job: Job) -> None:
    """Format and epoch pickers, a button that makes the export, then its download button."""
    st.subheader("Download")
    found = snapshots.list_snapshots(job)
    if not found:
        st.caption("The model has no epoch snapshot to download yet.")
        return
    key = f"download.{job.id}."
    left, right = st.columns(2)
    label = left.selectbox("Format", list(FORMATS), key=key + "format", help=ABOUT)
    epoch = right.selectbox("Epoch", [e for e, _ in reversed(found)], key=key + "epoch")
    fmt, suffix = FORMATS[label]
    path = export_path(job, fmt, suffix, epoch)
    if not is_current(path, dict(found)[epoch]):
        if st.button("Prepare the download", icon=":material/package_2:", key=key + "make"):
            with st.spinner("Exporting the model and checking its predictions..."):
                st.session_state[key + "error"] = (path, run_export(job, fmt, path, epoch))
        failed, error = st.session_state.get(key + "error", (None, None))
        if error and failed == path:
            st.error(error, icon=":material/error:")
        if not is_current(path, dict(found)[epoch]):
            return
    st.download_button(f"Download {path.name} ({path.stat().st_size / 2 ** 20:,.1f} MB)", data=path.read_bytes,
                       file_name=path.name, mime=MIME[suffix], key=key + "file", icon=":material/download:",
                       on_click="ignore")
