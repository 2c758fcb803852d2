"""Compare models: pick several (or a sweep group) and see their curves
overlaid, a table of each metric's best and last value with the epoch of the
best (the best model starred and highlighted), and a parallel-coordinates plot
of the hyperparameters that differ against the chosen metric. Opens on
?models=ID,ID or ?group=NAME; updates itself while a chosen model trains."""
from itertools import cycle

import plotly.graph_objects as go
import streamlit as st
from plotly.colors import qualitative

from digits_engine import model_compare
from digits_engine.job_store import Job, JobStore

MODELS, GROUP, METRIC, FROM_URL = "compare.models", "compare.group", "compare.metric", "compare.from_url"
COLOURS = qualitative.Plotly + qualitative.Dark24
HIGHLIGHT = "background-color: rgba(255, 196, 0, 0.25)"
LAYOUT = dict(height=340, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.25))

st.title("Compare models")
store = JobStore()
models = {job.id: job for job in store.list("model")}
if len(models) < 2:
    st.info("No models yet: train two or more (a sweep of learning rates makes several at once), then compare "
            "them here." if not models else "Only one model so far: train another one, or a sweep, to compare.")
    st.page_link("../pages/new_model.py", label="Train a model", icon=":material/add:")
    st.stop()
groups = {name: [job.id for job in jobs] for name, jobs in model_compare.sweep_groups(store).items()}


def model_label(job_id: str) -> str:
    return f"{models[job_id].name} · {job_id}"


def group_label(name: str) -> str:
    return f"{name} ({len(groups[name])} models)" if name else "—"


def apply_url() -> None:
    """Select what ?models= or ?group= names, once for each new URL; warn about names not found."""
    wanted = (st.query_params.get("models", ""), st.query_params.get("group", ""))
    if st.session_state.get(FROM_URL) == wanted:
        return
    st.session_state[FROM_URL] = wanted
    ids_text, group = wanted
    if group in groups:
        st.session_state[GROUP], st.session_state[MODELS] = group, list(groups[group])
    elif group:
        st.warning(f"No models in a group named {group!r}. Pick a group or models below.")
    if ids_text:
        ids = list(dict.fromkeys(i.strip() for i in ids_text.split(",") if i.strip()))
        if missing := [i for i in ids if i not in models]:
            st.warning(f"No model with id {', '.join(missing)}: left out of the comparison.")
        st.session_state[MODELS] = [i for i in ids if i in models]


def fill_from_group() -> None:
    if group := st.session_state[GROUP]:
        st.session_state[MODELS] = list(groups[group])


def picker_ui() -> list[str]:
    """The models to compare, picked one by one or as a whole group; the URL follows the selection."""
    st.session_state[MODELS] = [i for i in st.session_state.get(MODELS, []) if i in models]  # some were deleted
    if st.session_state.get(GROUP) and st.session_state[MODELS] != groups.get(st.session_state[GROUP]):
        st.session_state[GROUP] = ""  # the group stays shown only while its models are the selection
    left, right = st.columns([1, 3])
    left.selectbox("Sweep group", [""] + list(groups), key=GROUP, format_func=group_label, on_change=fill_from_group,
                   help="Models sharing a group name: a sweep's, or the group given when training.")
    selected = right.multiselect("Models", list(models), key=MODELS, format_func=model_label,
                                 placeholder="Pick two or more models")
    group = st.session_state[GROUP]
    query = {"group": group} if group else {"models": ",".join(selected)} if selected else {}
    if dict(st.query_params) != query:
        st.query_params.from_dict(query)
    st.session_state[FROM_URL] = (query.get("models", ""), query.get("group", ""))
    return selected


def metric_ui(available: list[str]) -> str:
    if st.session_state.get(METRIC) not in available:
        st.session_state[METRIC] = model_compare.default_metric(available)
    left, _ = st.columns([1, 3])
    return left.selectbox("Metric", available, key=METRIC,
                          help="The curves, the best model (★) and the hyperparameter plot follow this metric. "
                               "Losses are best when lowest, the others when highest.")


def curves(results: list[model_compare.ModelResult], keys: dict[str, str], title: str) -> go.Figure:
    """Each model's curves of `keys` (metric -> line dash) on one pair of axes, a colour a model."""
    fig = go.Figure()
    for colour, model in zip(cycle(COLOURS), results):
        shown = [key for key in keys if model_compare.points(model.records, key)]
        for key in shown:  # one legend entry a model: its first curve's, which toggles them all
            epochs, values = zip(*model_compare.points(model.records, key))
            fig.add_trace(go.Scatter(x=epochs, y=values, name=model.name, legendgroup=model.id,
                                     showlegend=key == shown[0], hovertemplate=f"{key} %{{y:.4g}}",
                                     mode="lines+markers" if key.startswith("val/") else "lines",
                                     line=dict(color=colour, dash=keys[key])))
    fig.update_layout(title=title, xaxis_title="epoch", hovermode="x unified", **LAYOUT)
    return fig


def charts(results: list[model_compare.ModelResult], metric: str) -> None:
    figures = [(metric, curves(results, {metric: "solid"}, metric))]
    if not model_compare.is_loss(metric):
        figures.append(("loss", curves(results, {"train/loss": "dot", "val/loss": "solid"},
                                       "Loss (dotted: train, solid: val)")))
    for col, (key, fig) in zip(st.columns(len(figures)), figures):
        col.plotly_chart(fig, key=f"compare-chart-{key}", width="stretch")


def table_ui(results: list[model_compare.ModelResult], metric: str) -> None:
    frame = model_compare.table(results, metric)
    styled = frame.style.apply(lambda row: [HIGHLIGHT if row["best"] else ""] * len(row), axis=1)
    styled = styled.format({c: cell_text(c) for c in frame.columns}, na_rep="")
    st.dataframe(styled, hide_index=True, column_config={
        "best": st.column_config.TextColumn("best", width="small", help=f"★: the best {metric}")})
    st.caption(f"★ The best {metric} ({'lowest' if model_compare.is_loss(metric) else 'highest'}). "
               "Epoch: where each metric was best. Click a column header to sort.")


def cell_text(column: str):
    """How a table column's values read: metrics to 4 decimals, epochs and settings as short as they go."""
    if column.endswith((" best", " last")):
        return "{:.4f}"
    return lambda value: f"{value:g}" if isinstance(value, float) else str(value)


def parcoords_ui(results: list[model_compare.ModelResult], metric: str) -> None:
    axes = model_compare.parallel_axes(results, metric)
    if len(axes) < 2:
        st.caption(f"These models share every hyperparameter: there is nothing to plot against {metric}.")
        return
    scores = axes[-1]["values"]
    line = dict(color=scores, colorscale="Viridis", showscale=True, reversescale=model_compare.is_loss(metric),
                colorbar=dict(title=dict(text=metric)))
    fig = go.Figure(go.Parcoords(line=line, dimensions=axes))
    fig.update_layout(title=f"Hyperparameters against the best {metric}", height=400,
                      margin=dict(l=60, r=60, t=100, b=30))
    st.plotly_chart(fig, key="compare-parcoords", width="stretch")


def no_metrics_note(results: list[model_compare.ModelResult], active: bool) -> None:
    silent = [m.name for m in results if not m.summaries]
    if len(silent) == len(results):
        st.info("None of these models has reported metrics yet. " + (
            "They appear after the first training batches: this page updates by itself." if active else
            "They ended before training a batch: open each model to see why, or pick others."))
    elif silent:
        st.caption(f"No metrics yet from: {', '.join(silent)} (they appear after the first training batches).")


def comparison(jobs: list[Job], was_active: bool) -> None:
    results = model_compare.results(jobs)
    active = any(m.state.is_active for m in results)
    if active != was_active:
        st.rerun()  # to start or stop polling
    no_metrics_note(results, active)
    available = model_compare.metrics(results)
    if not available:
        return
    metric = metric_ui(available)
    charts(results, metric)
    table_ui(results, metric)
    parcoords_ui(results, metric)


apply_url()
selected = picker_ui()
if len(selected) < 2:
    st.info("Pick one more model to compare it with." if selected else
            "Pick two or more models above, or a sweep group to pick all its models at once.")
    st.stop()
chosen = [models[i] for i in selected]
running = any(job.state.is_active for job in chosen)
st.fragment(run_every=5 if running else None)(comparison)(chosen, running)
