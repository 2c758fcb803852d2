"""New dataset: pick the task, point at a folder, create. Advanced options folded away."""
import streamlit as st

from digits_engine import config, dataset_spec

import field_widgets

PREFIX = "new_dataset."


def demo_defaults() -> dict:
    demo = config.demo_data_dir() / "train"
    return {"folder": str(demo), "name": "shapes demo"} if demo.is_dir() else {}


field_widgets.open_created_job(PREFIX, "../pages/dataset.py")

st.title("New dataset")
task = st.radio("Task", ["Image classification"], horizontal=True,
                help="Segmentation and object detection come with later releases.")
field_widgets.init_state(dataset_spec.FIELDS, PREFIX, demo_defaults())
errors = field_widgets.errors(PREFIX)
fields = {f.name: f for f in dataset_spec.FIELDS}

with st.form("new_dataset"):
    st.caption("Images in one sub-folder per class: `folder/<class>/<image>`. Sub-folders are searched recursively; "
               "files that are not images are skipped and listed.")
    for name in ("name", "folder"):
        field_widgets.widget(fields[name], PREFIX + name, errors.get(name))
    field_widgets.in_columns([fields["val_pct"], fields["test_pct"], fields["group"]], PREFIX, errors)
    field_widgets.folded("Image size, type and encoding", [f for f in dataset_spec.FIELDS if f.advanced],
                         PREFIX, errors)
    st.form_submit_button("Create", type="primary", on_click=field_widgets.submit,
                          args=(dataset_spec.create, dataset_spec.FIELDS, PREFIX), icon=":material/add:")

if errors:
    st.error("The dataset was not created: fix the fields marked above.")
