"""New model: pick a dataset and a network, set the epochs, train."""
import streamlit as st

from digits_engine import model_spec
from digits_engine.job_state import JobState
from digits_engine.job_store import JobStore

import field_widgets

PREFIX = "new_model."


def usable_datasets() -> dict[str, str]:
    """id -> label for datasets that are Done or still on their way."""
    out = {}
    for job in JobStore().list("dataset"):
        state = job.state
        if state in (JobState.ERROR, JobState.ABORTED):
            continue
        out[job.id] = job.name + ("" if state is JobState.DONE else f" ({state})")
    return out


def first_of_sweep(raw: dict):
    """Submit the model, or every model of a sweep (comma lists); the page then opens the first."""
    return model_spec.create_all(raw)[0]


field_widgets.open_created_job(PREFIX, "../pages/model.py")

st.title("New model")
datasets = usable_datasets()
if not datasets:
    st.info("A model trains on a dataset, and there is none yet.")
    st.page_link("../pages/new_dataset.py", label="Create a dataset first", icon=":material/add_photo_alternate:")
    st.stop()

wanted = st.query_params.get("dataset")
first = wanted if wanted in datasets else next(iter(datasets))
field_widgets.init_state(model_spec.FIELDS, PREFIX, {"dataset": first, "name": f"{datasets[first]} model", "network": ""})
if st.session_state.get(PREFIX + "dataset") not in datasets or st.session_state.get(PREFIX + "asked") != wanted:
    st.session_state[PREFIX + "dataset"] = first  # a link to train on a given dataset picks it
    st.session_state[PREFIX + "asked"] = wanted
errors = field_widgets.errors(PREFIX)
fields = {f.name: f for f in model_spec.FIELDS}

with st.form("new_model"):
    field_widgets.widget(fields["dataset"], PREFIX + "dataset", errors.get("dataset"), choices=list(datasets),
                         labels=datasets)
    left, middle, right = st.columns(3)
    with left:  # blank: the first network made for the dataset's task
        field_widgets.widget(fields["network"], PREFIX + "network", errors.get("network"),
                             choices=["", *model_spec.NETWORKS],
                             labels={"": "Default for the dataset (LeNet; U-Net for segmentation)"})
    with middle:
        field_widgets.widget(fields["epochs"], PREFIX + "epochs", errors.get("epochs"))
    with right:
        field_widgets.widget(fields["name"], PREFIX + "name", errors.get("name"))
    field_widgets.folded("Solver, learning rate, batch size, seed, group",
                         [f for f in model_spec.FIELDS if f.advanced] + [fields["group"]], PREFIX, errors)
    st.form_submit_button("Train", type="primary", on_click=field_widgets.submit, icon=":material/play_arrow:",
                          args=(first_of_sweep, model_spec.FIELDS, PREFIX))

if errors:
    st.error("The model was not created: fix the fields marked above.")
