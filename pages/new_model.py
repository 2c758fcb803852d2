"""New model: pick a dataset and a network, set the epochs, train. Every advanced
option is one expander away; the schedule and the augmentation are drawn as they are edited."""
import streamlit as st

from digits_engine import augmentation, config, model_spec, snapshots
from digits_engine.fields import convert
from digits_engine.job_state import JobState
from digits_engine.job_store import JobStore

import augmentation_preview
import field_widgets
import lr_curve_chart

PREFIX = "new_model."
FIELDS = {f.name: f for f in model_spec.FIELDS}
NETWORK_SOURCE = {"resnet50": ("pretrained", "weights_file"), "mobilenetv2": ("pretrained", "weights_file"),
                  "previous": ("previous_model", "previous_epoch"), "custom": ("custom_code",)}
SOLVER = ("solver", "lr", "batch_size", "batch_accumulation", "weight_decay", "lr_policy", "lr_step_pct", "lr_gamma",
          "lr_power", "lr_multistep_values")
DATA = ("validation_interval", "snapshot_interval", "shuffle", "mean_subtraction", "crop_size")
AUGMENT = tuple(f.name for f in model_spec.FIELDS if f.name.startswith("aug_"))
OTHER = ("watch_metric", "early_stop_patience", "seed", "group", "workers")


def usable_datasets(store: JobStore) -> dict[str, str]:
    """id -> label for datasets that are Done or still on their way."""
    out = {}
    for job in store.list("dataset"):
        state = job.state
        if state in (JobState.ERROR, JobState.ABORTED):
            continue
        out[job.id] = job.name + ("" if state is JobState.DONE else f" ({state})")
    return out


def present(names) -> list:
    return [FIELDS[n] for n in names if n in FIELDS]


def first_of_sweep(raw: dict):
    """Submit the model, or every model of a sweep (comma lists); the page then opens the first."""
    return model_spec.create_all(raw)[0]


def network_source_ui(network: str, errors: dict) -> list:
    """The fields that say where the chosen network's weights come from; returns those shown."""
    shown = present(NETWORK_SOURCE.get(network, ()))
    for field in shown:
        key = PREFIX + field.name
        if field.name == "custom_code":
            st.text_area(field.label, key=key, height=300, help=field.help or None)
            if errors.get(field.name):
                st.error(errors[field.name], icon=":material/error:")
        elif field.name == "previous_model":
            models = {j.id: j.name for j in store.list("model") if j.state is not JobState.WAITING}
            field_widgets.widget(field, key, errors.get(field.name), choices=["", *models],
                                 labels={"": "Choose a model", **models})
        elif field.name == "previous_epoch":
            chosen = st.session_state.get(PREFIX + "previous_model")
            epochs = [str(e) for e, _ in snapshots.list_snapshots(store.get(chosen))] if chosen else []
            if st.session_state.get(key) not in ("", *epochs):
                st.session_state[key] = ""
            field_widgets.widget(field, key, errors.get(field.name), choices=["", *epochs],
                                 labels={"": "Its last snapshot", **{e: f"Epoch {e}" for e in epochs}})
        else:
            field_widgets.widget(field, key, errors.get(field.name))
    return shown


def solver_ui(errors: dict) -> None:
    fields = present(SOLVER)
    with st.expander("Solver, learning rate and schedule, batch size", expanded=any(f.name in errors for f in fields)):
        form, chart = st.columns([3, 2])
        with form:
            field_widgets.in_columns(fields, PREFIX, errors, per_row=2)
        with chart:
            figure, problem = lr_curve_chart.schedule_figure(model_spec.FIELDS, field_widgets.values(fields, PREFIX))
            if figure is None:
                st.caption(f"The schedule is drawn once its fields are valid: {problem}")
            else:
                st.plotly_chart(figure, key="lr_curve", width="stretch")


def data_ui(dataset_id: str, errors: dict) -> None:
    fields = present(DATA) + present(AUGMENT)
    with st.expander("Data: intervals, shuffle, mean subtraction, crop, augmentation",
                     expanded=any(f.name in errors for f in fields)):
        field_widgets.in_columns(present(DATA), PREFIX, errors)
        st.markdown("**Augmentation** (training images only)")
        field_widgets.in_columns(present(AUGMENT), PREFIX, errors, per_row=4)
        augmentation_ui(dataset_id)


def augmentation_ui(dataset_id: str) -> None:
    options, problems = convert(present(AUGMENT), field_widgets.values(present(AUGMENT), PREFIX))
    if problems:
        st.caption("The preview is drawn once the augmentation fields are valid.")
        return
    if not augmentation.enabled(options):
        st.caption("No augmentation: the network sees the images as they are in the dataset.")
        return
    images = augmentation_preview.sample_images(store.get(dataset_id))
    if images is None:
        st.caption("The preview appears once the dataset is built.")
        return
    st.caption("First row: images from the dataset. Below: what training may show the network instead.")
    for row in augmentation_preview.variants(images, options):
        for column, pixels in zip(st.columns(len(row)), row):
            column.image(augmentation_preview.shown(pixels))


def gpu_label(gpu: dict) -> str:
    """"GPU 1: NVIDIA H100 (81559 MiB)", or "GPU 1" when only the id is known."""
    name = gpu["name"] if gpu["name"] == f"GPU {gpu['id']}" else f"GPU {gpu['id']}: {gpu['name']}"
    return name + (f" ({gpu['memory']})" if gpu.get("memory") else "")


def devices_ui(errors: dict) -> None:
    if "gpus" not in FIELDS:
        return
    gpus = config.gpu_devices()
    if not gpus:
        st.caption(":material/memory: This machine has no GPU that TensorFlow can use: the model trains on the CPU.")
        return
    labels = {"": "Next free GPU", **{g["id"]: gpu_label(g) for g in gpus}}
    st.multiselect("GPUs", [g["id"] for g in gpus], key=PREFIX + "gpu_choice", format_func=labels.get,
                   placeholder=labels[""], help=FIELDS["gpus"].help or None)
    st.session_state[PREFIX + "gpus"] = ",".join(st.session_state[PREFIX + "gpu_choice"])
    if errors.get("gpus"):
        st.error(errors["gpus"], icon=":material/error:")


field_widgets.open_created_job(PREFIX, "../pages/model.py")

st.title("New model")
store = JobStore()
datasets = usable_datasets(store)
if not datasets:
    st.info("A model trains on a dataset, and there is none yet.")
    st.page_link("../pages/new_dataset.py", label="Create a dataset first", icon=":material/add_photo_alternate:")
    st.stop()

wanted = st.query_params.get("dataset")
first = wanted if wanted in datasets else next(iter(datasets))
field_widgets.init_state(model_spec.FIELDS, PREFIX, {"dataset": first, "name": f"{datasets[first]} model", "network": "",
                                                     "custom_code": getattr(model_spec, "CUSTOM_NETWORK_EXAMPLE", "")})
if st.session_state.get(PREFIX + "dataset") not in datasets or st.session_state.get(PREFIX + "asked") != wanted:
    st.session_state[PREFIX + "dataset"] = first  # a link to train on a given dataset picks it
    st.session_state[PREFIX + "asked"] = wanted
errors = field_widgets.errors(PREFIX)

field_widgets.widget(FIELDS["dataset"], PREFIX + "dataset", errors.get("dataset"), choices=list(datasets),
                     labels=datasets)
dataset_id = st.session_state[PREFIX + "dataset"]
task = store.get(dataset_id).spec.get("task", "classification")
networks = model_spec.available_networks(task)
if st.session_state.get(PREFIX + "task") != task:  # another task's dataset: its defaults, e.g. Adam for detection
    before = model_spec.task_defaults(st.session_state.get(PREFIX + "task", "classification"))
    field_widgets.set_values(model_spec.FIELDS, PREFIX, {**{f.name: f.default for f in model_spec.FIELDS
                                                            if f.name in before}, **model_spec.task_defaults(task)})
    st.session_state[PREFIX + "task"] = task
if st.session_state.get(PREFIX + "network") not in ("", *networks):
    st.session_state[PREFIX + "network"] = ""
left, middle, right = st.columns(3)
with left:  # blank: the first network made for the dataset's task
    field_widgets.widget(FIELDS["network"], PREFIX + "network", errors.get("network"), choices=["", *networks],
                         labels={"": f"Default for the dataset ({FIELDS['network'].choice_labels.get(networks[0])})"})
with middle:
    field_widgets.widget(FIELDS["epochs"], PREFIX + "epochs", errors.get("epochs"))
with right:
    field_widgets.widget(FIELDS["name"], PREFIX + "name", errors.get("name"))
source = network_source_ui(st.session_state[PREFIX + "network"], errors)
devices_ui(errors)
solver_ui(errors)
data_ui(dataset_id, errors)
field_widgets.folded("Best snapshot, early stopping, seed, group, machines", present(OTHER), PREFIX, errors)

hidden = {n for names in NETWORK_SOURCE.values() for n in names} - {f.name for f in source}
submitted = [f for f in model_spec.FIELDS if f.name not in hidden]
st.button("Train", type="primary", key=PREFIX + "train", icon=":material/play_arrow:", on_click=field_widgets.submit,
          args=(first_of_sweep, submitted, PREFIX))
if errors:
    st.error("The model was not created: fix the fields marked above.")
