"""Home: every dataset and model, grouped by their group name, with status,
progress and the model's best metric. Refreshes itself while jobs run."""
import streamlit as st

from digits_engine.job_state import JobState
from digits_engine.job_store import JobStore
from digits_engine.job_summary import summarize

from formatting import STATE_COLORS, percent, when
from job_widgets import JOB_PAGES

WIDTHS = [4, 1.3, 2.2, 1.4, 1.4]


def summaries() -> list[dict]:
    return [summarize(job, with_params=False) for job in JobStore().list()]


def row(summary: dict) -> None:
    name, state, progress, best, created = st.columns(WIDTHS, vertical_alignment="center")
    name.page_link(JOB_PAGES[summary["kind"]], label=summary["name"], query_params={"job": summary["id"]})
    state.markdown(f":{STATE_COLORS[summary['status']]}-badge[{summary['status']}]")
    if summary["status"] == JobState.RUNNING.value:
        progress.progress(min(summary["progress"], 1.0), text=f"{summary['progress']:.0%}")
    elif summary.get("error"):
        progress.caption(summary["error"][:80], help=summary["error"])
    if summary["kind"] == "model" and summary.get("best") is not None:
        unit = "IoU" if summary["best_metric"].endswith("mean_iou") else "acc."
        best.markdown(f"{percent(summary['best'])} {unit}")
    created.caption(when(summary["created"]))


def table(title: str, items: list[dict], best_label: str = "") -> None:
    st.subheader(title)
    if not items:
        st.caption("None yet.")
        return
    head = st.columns(WIDTHS)
    for col, text in zip(head, ("Name", "Status", "Progress", best_label, "Created")):
        col.caption(text)
    groups: dict[str, list[dict]] = {}
    for item in items:
        groups.setdefault(item["group"], []).append(item)
    for group, members in sorted(groups.items(), key=lambda kv: (kv[0] != "", kv[0])):
        if group and len(members) > 1 and members[0]["kind"] == "model":
            name, link = st.columns([3, 1], vertical_alignment="center")
            name.markdown(f"**{group}**")
            link.page_link("../pages/compare.py", label="Compare", icon=":material/compare_arrows:",
                           query_params={"group": group})
        elif group:
            st.markdown(f"**{group}**")
        for summary in members:
            row(summary)


jobs = summaries()
any_active = any(JobState(s["status"]).is_active for s in jobs)


@st.fragment(run_every=3 if any_active else None)
def overview() -> None:
    current = summaries()
    if any(JobState(s["status"]).is_active for s in current) != any_active:
        st.rerun()
    datasets = [s for s in current if s["kind"] == "dataset"]
    models = [s for s in current if s["kind"] == "model"]
    left, right = st.columns(2, gap="large")
    with left:
        table("Datasets", datasets)
        st.page_link("../pages/new_dataset.py", label="New dataset", icon=":material/add:")
    with right:
        table("Models", models, "Best val")
        st.page_link("../pages/new_model.py", label="New model", icon=":material/add:")


st.title("DIGITS")
st.caption("Build image datasets, train models and look at the results: jobs keep running when the page is closed.")
overview()
