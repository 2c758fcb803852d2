"""System: the settings in force and what is running."""
import platform
import sys
from importlib import metadata

import pandas as pd
import streamlit as st

from digits_engine import config
from digits_engine.job_store import JobStore
from digits_engine.job_summary import summarize
from digits_engine.plugins import registry

st.title("System")
st.subheader("Settings")
st.caption("Set these as environment variables before starting the app.")
try:
    settings = config.settings()
except ValueError as exc:
    st.error(str(exc))
    st.stop()
st.dataframe(pd.DataFrame({"setting": list(settings), "value": [str(v) for v in settings.values()]}),
             hide_index=True, width="stretch")

st.subheader("Plugins")
st.caption("Installed with pip (entry points `digits.plugins.data` and `digits.plugins.view`); restart the app "
           "after installing one. A plugin that failed to load is listed with its error; the rest works.")
rows = [{"kind": i.kind, "id": i.id, "title": i.title, "package": i.package, "version": i.version,
         "status": "loaded" if i.error is None else f"failed: {i.error}"}
        for kind in registry.GROUPS for i in registry.discover(kind)]
if rows:
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
else:
    st.caption("No plugins installed.")
for info in [i for kind in registry.GROUPS for i in registry.discover(kind) if i.error]:
    with st.expander(f"Why {info.name} ({info.package} {info.version}) failed", icon=":material/error:"):
        st.code(info.details or info.error, language=None)

st.subheader("Running and waiting jobs")
active = [summarize(j, with_params=False) for j in JobStore().list() if j.state.is_active]
if active:
    st.dataframe(pd.DataFrame(active)[["id", "kind", "name", "status", "progress", "owner"]], hide_index=True)
else:
    st.caption("Nothing is running.")

st.subheader("Versions")
versions = {"python": sys.version.split()[0], "platform": platform.platform()}
for package in ("streamlit", "tensorflow", "keras", "numpy", "lmdb", "plotly"):
    try:
        versions[package] = metadata.version(package)
    except metadata.PackageNotFoundError:
        versions[package] = "not installed"
st.dataframe(pd.DataFrame({"component": list(versions), "version": list(versions.values())}), hide_index=True)
