"""One inference job ("classify many"): its progress while it runs, then its results."""
import streamlit as st

from digits_engine import inference_results
from digits_engine.job_store import JobStore

import inference_results_view
import job_widgets

job, summary, active = job_widgets.page_job("inference", "Inference")
model_id = job.params.get("model")
if model_id and JobStore().exists(model_id):
    st.page_link("../pages/model.py", label=f"Model: {JobStore().get(model_id).name}", icon=":material/insights:",
                 query_params={"job": model_id})


@st.fragment(run_every=1 if active else None)
def live() -> None:
    job_widgets.live_status(job, active, lambda current: " of the images")


live()
if not active:
    results = inference_results.load(job)
    if results is not None:
        if results.get("complete") is False:
            done = "run through the model" if results.get("task") == "detection" else "classified"
            st.warning(f"Stopped early: these results cover the {results['count']:,} image(s) {done} before "
                       "it was aborted.")
        inference_results_view.results_ui(job, results)
    elif summary["status"] == "Done":
        st.warning("This job ended without results.json; clone it to run it again.")
