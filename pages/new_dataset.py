"""New dataset: pick the task and where the images are (a server folder with
optional separate validation and test folders, text-file lists, an uploaded
archive, or S3 as in DIGITS' container guide), then create. Advanced options
folded away."""
import streamlit as st

from digits_engine import config, dataset_spec, plugin_dataset_spec
from digits_engine.errors import JobNotFound
from digits_engine.job_store import JobStore
from digits_engine.plugins import registry

import field_widgets

PREFIX = "new_dataset."
BUILT_IN = "Images › Image classification"
TABS = {"Use folder": "folder", "Use text files": "textfile", "Upload an archive": "upload", "Use S3": "s3"}
FORMS = {"folder": "new_dataset", "textfile": "new_dataset_textfile", "upload": "new_dataset_upload",
         "s3": "new_dataset_s3"}
CAPTIONS = {
    "folder": "Images in one sub-folder per class: `folder/<class>/<image>`. Sub-folders are searched "
              "recursively; files that are not images are skipped and listed.",
    "textfile": "Text files on the server listing one image a line, `path label`, and a labels file naming "
                "label 0, 1, ... one a line (DIGITS' \"Use text files\").",
    "upload": "A .zip, .tar or .tar.gz of class folders, `<class>/<image>`, optionally inside one top folder. "
              "It is extracted on the server; links and paths leaving the archive are refused.",
    "s3": "Images in one folder per class under the path: `<path>/<class>/<image>`, as `upload_s3_data.py` lays "
          "them out. The keys are used by the job and not stored.",
}
ARCHIVE_TYPES = ["zip", "tar", "gz", "tgz", "bz2", "tbz2", "xz", "txz"]


def starting_values() -> dict:
    """The demo folder, or the settings of the dataset named by ?clone=<id> (never its secret)."""
    clone_id = st.query_params.get("clone")
    if clone_id:
        try:
            job = JobStore().get(clone_id)
            return {**job.params, "name": f"{job.name} (clone)", "group": job.spec.get("group", "")}
        except JobNotFound:
            st.warning(f"There is no dataset {clone_id!r} to copy the settings from.")
    demo = config.demo_data_dir() / "train"
    return {"folder": str(demo), "name": "shapes demo"} if demo.is_dir() else {}


def archive_uploader(error: str | None) -> None:
    limit = field_widgets.upload_limit_mb()
    st.file_uploader(f"Archive of class folders * (up to {limit:,} MB)", type=ARCHIVE_TYPES,
                     key=PREFIX + dataset_spec.ARCHIVE, max_upload_size=limit,
                     help=f"The upload limit is {limit:,} MB (DIGITS_UPLOAD_MAX_MB={config.upload_max_mb():,}).")
    if limit < config.upload_max_mb():
        st.caption(f"Streamlit's server.maxUploadSize ({limit:,} MB) is below DIGITS_UPLOAD_MAX_MB "
                   f"({config.upload_max_mb():,} MB): raise it in .streamlit/config.toml to allow larger uploads.")
    if error:
        st.error(error, icon=":material/error:")


def create_from_upload(raw: dict):
    """The form's values plus the uploaded file (an st.UploadedFile, or None when nothing was chosen)."""
    return dataset_spec.create({**raw, dataset_spec.ARCHIVE: st.session_state.get(PREFIX + dataset_spec.ARCHIVE)})


def dataset_form(source: str, errors: dict) -> None:
    fields = {f.name: f for f in dataset_spec.FIELDS}
    form_fields = dataset_spec.form_fields(source)
    own = dataset_spec.SOURCE_FIELDS[source]
    with st.form(FORMS[source]):
        st.caption(CAPTIONS[source])
        field_widgets.widget(fields["name"], PREFIX + "name", errors.get("name"))
        if source == "upload":
            archive_uploader(errors.get(dataset_spec.ARCHIVE))
        for field in [f for f in own if not f.advanced]:
            field_widgets.widget(field, PREFIX + field.name, errors.get(field.name))
        splits = [fields["val_pct"], fields["test_pct"]] if source != "textfile" else []
        field_widgets.in_columns(splits + [fields["group"]], PREFIX, errors)
        field_widgets.folded("Image size, type, encoding and backend",
                             [f for f in form_fields if f.advanced and f not in own], PREFIX, errors)
        if source_advanced := [f for f in own if f.advanced]:
            title = ("Separate validation and test folders" if source == "folder"
                     else "Folder prefixes for relative paths, and order")
            field_widgets.folded(title, source_advanced, PREFIX, errors)
        create = create_from_upload if source == "upload" else dataset_spec.create
        st.form_submit_button("Create", type="primary", on_click=field_widgets.submit, icon=":material/add:",
                              args=(create, form_fields, PREFIX, {"source": source}))


def dataset_types() -> dict[str, str | None]:
    """'Category › Title' -> data plugin id (None: the built-in image classification)."""
    plugins = {f"{cls.get_category()} › {cls.get_title()}": plugin_id
               for plugin_id, cls in registry.working("data").items()}
    return {BUILT_IN: None, **dict(sorted(plugins.items()))}


def plugin_form(plugin_id: str) -> None:
    prefix = f"{PREFIX}{plugin_id}."
    fields = plugin_dataset_spec.fields(plugin_id)
    field_widgets.init_state(fields, prefix, registry.get("data", plugin_id).demo_options())
    errors = field_widgets.errors(prefix)
    with st.form(f"new_dataset_{plugin_id}"):
        for field in [f for f in fields if not f.advanced]:
            field_widgets.widget(field, prefix + field.name, errors.get(field.name))
        if advanced := [f for f in fields if f.advanced]:
            field_widgets.folded("More options", advanced, prefix, errors)
        st.form_submit_button("Create", type="primary", on_click=field_widgets.submit, icon=":material/add:",
                              args=(lambda raw: plugin_dataset_spec.create(plugin_id, raw), fields, prefix))
    if errors:
        st.error("The dataset was not created: fix the fields marked above.")
    field_widgets.open_created_job(prefix, "../pages/dataset.py")


field_widgets.open_created_job(PREFIX, "../pages/dataset.py")

st.title("New dataset")
types = dataset_types()
chosen = st.selectbox("Type", list(types), key=PREFIX + "type",
                      help="Image classification is built in; data plugins add other types (System lists them).")
if types[chosen] is not None:
    plugin_form(types[chosen])
    st.stop()
start = starting_values()
field_widgets.init_state(dataset_spec.FIELDS, PREFIX, start)
errors = field_widgets.errors(PREFIX)
default_tab = {source: tab for tab, source in TABS.items()}.get(start.get("source"), "Use folder")
tabs = st.tabs(list(TABS), key=PREFIX + "source", on_change="rerun", default=default_tab)
for tab, source in zip(tabs, TABS.values()):
    if tab.open:
        with tab:
            dataset_form(source, errors)

if errors:
    st.error("The dataset was not created: fix the fields marked above.")
