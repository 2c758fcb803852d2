"""New model: pick a dataset and a network, set the epochs, train."""
import streamlit as st

from digits_engine import model_spec
from digits_engine.fields import FormErrors
from digits_engine.job_state import JobState
from digits_engine.job_store import JobStore

import field_widgets

PREFIX = "new_model."
ERRORS = PREFIX + "errors"
CREATED = PREFIX + "created"


def usable_datasets() -> dict[str, str]:
    """id -> label for datasets that are Done or still on their way."""
    out = {}
    for job in JobStore().list("dataset"):
        state = job.state
        if state in (JobState.ERROR, JobState.ABORTED):
            continue
        out[job.id] = job.name + ("" if state is JobState.DONE else f" ({state})")
    return out


def submit() -> None:
    try:
        job = model_spec.create(field_widgets.values(model_spec.FIELDS, PREFIX))
    except FormErrors as exc:
        st.session_state[ERRORS] = exc.errors
        return
    st.session_state[ERRORS] = {}
    st.session_state[CREATED] = job.id


if job_id := st.session_state.pop(CREATED, None):
    st.switch_page("../pages/model.py", query_params={"job": job_id})

st.title("New model")
datasets = usable_datasets()
if not datasets:
    st.info("A model trains on a dataset, and there is none yet.")
    st.page_link("../pages/new_dataset.py", label="Create a dataset first", icon=":material/add_photo_alternate:")
    st.stop()

wanted = st.query_params.get("dataset")
first = wanted if wanted in datasets else next(iter(datasets))
field_widgets.init_state(model_spec.FIELDS, PREFIX, {"dataset": first, "name": f"{datasets[first]} model"})
if st.session_state.get(PREFIX + "dataset") not in datasets:
    st.session_state[PREFIX + "dataset"] = first
errors = st.session_state.get(ERRORS, {})
fields = {f.name: f for f in model_spec.FIELDS}

with st.form("new_model"):
    field_widgets.widget(fields["dataset"], PREFIX + "dataset", errors.get("dataset"), choices=list(datasets),
                         labels=datasets)
    left, middle, right = st.columns(3)
    with left:
        field_widgets.widget(fields["network"], PREFIX + "network", errors.get("network"))
    with middle:
        field_widgets.widget(fields["epochs"], PREFIX + "epochs", errors.get("epochs"))
    with right:
        field_widgets.widget(fields["name"], PREFIX + "name", errors.get("name"))
    advanced = [f for f in model_spec.FIELDS if f.advanced]
    with st.expander("Solver, learning rate, batch size, seed, group",
                     expanded=any(f.name in errors for f in advanced + [fields["group"]])):
        columns = st.columns(3)
        for i, field in enumerate(advanced + [fields["group"]]):
            with columns[i % 3]:
                field_widgets.widget(field, PREFIX + field.name, errors.get(field.name))
    st.form_submit_button("Train", type="primary", on_click=submit, icon=":material/play_arrow:")

if errors:
    st.error("The model was not created: fix the fields marked above.")
