"""New dataset: pick the task, point at a folder, create. Advanced options folded away."""
import streamlit as st

from digits_engine import config, dataset_spec
from digits_engine.fields import FormErrors

import field_widgets

PREFIX = "new_dataset."
ERRORS = PREFIX + "errors"
CREATED = PREFIX + "created"


def demo_defaults() -> dict:
    demo = config.demo_data_dir() / "train"
    return {"folder": str(demo), "name": "shapes demo"} if demo.is_dir() else {}


def submit() -> None:
    try:
        job = dataset_spec.create(field_widgets.values(dataset_spec.FIELDS, PREFIX))
    except FormErrors as exc:
        st.session_state[ERRORS] = exc.errors
        return
    st.session_state[ERRORS] = {}
    st.session_state[CREATED] = job.id


if job_id := st.session_state.pop(CREATED, None):
    st.switch_page("../pages/dataset.py", query_params={"job": job_id})

st.title("New dataset")
task = st.radio("Task", ["Image classification"], horizontal=True,
                help="Segmentation and object detection come with later releases.")
field_widgets.init_state(dataset_spec.FIELDS, PREFIX, demo_defaults())
errors = st.session_state.get(ERRORS, {})
fields = {f.name: f for f in dataset_spec.FIELDS}

with st.form("new_dataset"):
    st.caption("Images in one sub-folder per class: `folder/<class>/<image>`. Sub-folders are searched recursively; "
               "files that are not images are skipped and listed.")
    for name in ("name", "folder"):
        field_widgets.widget(fields[name], PREFIX + name, errors.get(name))
    left, right, group = st.columns(3)
    with left:
        field_widgets.widget(fields["val_pct"], PREFIX + "val_pct", errors.get("val_pct"))
    with right:
        field_widgets.widget(fields["test_pct"], PREFIX + "test_pct", errors.get("test_pct"))
    with group:
        field_widgets.widget(fields["group"], PREFIX + "group", errors.get("group"))
    advanced = [f for f in dataset_spec.FIELDS if f.advanced]
    with st.expander("Image size, type and encoding", expanded=any(f.name in errors for f in advanced)):
        columns = st.columns(3)
        for i, field in enumerate(advanced):
            with columns[i % 3]:
                field_widgets.widget(field, PREFIX + field.name, errors.get(field.name))
    st.form_submit_button("Create", type="primary", on_click=submit, icon=":material/add:")

if errors:
    st.error("The dataset was not created: fix the fields marked above.")
