"""System: the settings in force, plugins, devices, the jobs directory's free space, slots in use, what is
running, and versions. Versions are read from package metadata (TensorFlow is never imported here); no secret
(st.secrets, credentials, AWS_* variables) is ever read or shown."""
import os
import platform
import shutil
import sys
from importlib import metadata

import pandas as pd
import streamlit as st

from digits_engine import config
from digits_engine.job_state import JobState
from digits_engine.job_store import JobStore
from digits_engine.job_summary import summarize
from digits_engine.plugins import registry
from digits_engine.scheduler import slots_held

import auth

PACKAGES = ("streamlit", "tensorflow", "keras", "numpy", "lmdb", "plotly", "pillow", "boto3", "pydicom")
LOW_FREE_BYTES = 5 * 10 ** 9  # warn under 5 GB free ...
LOW_FREE_SHARE = 0.05  # ... or under 5 % of the disk
SIGN_IN = {"off": "off", "password": "password", "oidc": "OIDC"}


def settings_ui() -> None:
    st.subheader("Settings")
    st.caption("Set these as environment variables before starting the app; sign-in in .streamlit/secrets.toml.")
    try:
        settings = {"sign-in": SIGN_IN[auth.mode()], **config.settings()}
    except ValueError as exc:
        st.error(str(exc))
        st.stop()
    st.dataframe(pd.DataFrame({"setting": list(settings), "value": [str(v) for v in settings.values()]}),
                 hide_index=True, width="stretch", height="content")


def plugins_ui() -> None:
    st.subheader("Plugins")
    st.caption("Installed with pip (entry points `digits.plugins.data` and `digits.plugins.view`); restart the app "
               "after installing one. A plugin that failed to load is listed with its error; the rest works.")
    found = [i for kind in registry.GROUPS for i in registry.discover(kind)]
    rows = [{"kind": i.kind, "id": i.id, "title": i.title, "package": i.package, "version": i.version,
             "status": "loaded" if i.error is None else f"failed: {i.error}"} for i in found]
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    else:
        st.caption("No plugins installed.")
    for info in [i for i in found if i.error]:
        with st.expander(f"Why {info.name} ({info.package} {info.version}) failed", icon=":material/error:"):
            st.code(info.details or info.error, language=None)


def devices_ui() -> None:
    st.subheader("Devices")
    gpus = config.gpu_devices()
    if not gpus:
        st.markdown(f"CPU only: {os.cpu_count() or 1} cores.")
    for gpu in gpus:
        st.markdown(f"GPU {gpu['id']}: {gpu['name']}" + (f" ({gpu['memory']})" if gpu.get("memory") else ""))


def storage_ui() -> None:
    st.subheader("Jobs directory")
    folder = config.jobs_dir()
    usage = shutil.disk_usage(folder)
    share = usage.free / usage.total if usage.total else 0.0
    st.markdown(f"`{folder}`: {usage.free / 10 ** 9:,.1f} GB free of {usage.total / 10 ** 9:,.1f} GB ({share:.0%}).")
    if usage.free < LOW_FREE_BYTES or share < LOW_FREE_SHARE:
        st.warning(f"Little space is left for jobs ({usage.free / 10 ** 9:,.1f} GB, {share:.0%}): a dataset or "
                   "training may fail when the disk fills. Delete old jobs, or move DIGITS_JOBS_DIR to a bigger disk.",
                   icon=":material/hard_drive:")


def slots_ui(jobs) -> None:
    st.subheader("Slots in use")
    used = {"model": 0, "dataset": 0, "inference": 0}
    for job, summary in jobs:
        if summary["status"] == JobState.RUNNING.value:
            used[summary["kind"]] += slots_held(job)
    train, datasets = config.train_slots(), config.dataset_slots()
    left, middle, right = st.columns(3)
    left.metric("Training", f"{used['model']} of {train}")
    middle.metric("Datasets", f"{used['dataset']} of {datasets}")
    right.metric("Inference", f"{used['inference']} of {datasets}")
    st.caption("Training has one slot per GPU (DIGITS_TRAIN_SLOTS without GPUs); datasets and inference jobs have "
               "DIGITS_DATASET_SLOTS each. Waiting jobs start when a slot frees up.")


def active_ui(jobs) -> None:
    st.subheader("Running and waiting jobs")
    active = [summary for _, summary in jobs if JobState(summary["status"]).is_active]
    if active:
        st.dataframe(pd.DataFrame(active)[["id", "kind", "name", "status", "progress", "owner"]], hide_index=True)
    else:
        st.caption("Nothing is running.")


def versions_ui() -> None:
    st.subheader("Versions")
    versions = {"python": sys.version.split()[0], "platform": platform.platform()}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    st.dataframe(pd.DataFrame({"component": list(versions), "version": list(versions.values())}), hide_index=True)


st.title("System")
settings_ui()
plugins_ui()
devices_ui()
storage_ui()
all_jobs = [(job, summarize(job, with_params=False)) for job in JobStore().list()]
slots_ui(all_jobs)
active_ui(all_jobs)
versions_ui()
