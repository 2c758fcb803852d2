"""Widgets every job page shares: finding the job from the URL, its header
with actions, progress with ETA, and the error box."""
import streamlit as st

from digits_engine import job_actions, liveness, ownership
from digits_engine.errors import DigitsError, JobNotFound
from digits_engine.job_state import JobState
from digits_engine.job_store import Job, JobStore
from digits_engine.job_summary import summarize
from digits_engine.scheduler import Scheduler

import auth
from formatting import STATE_COLORS, duration, when

JOB_PAGES = {"dataset": "../pages/dataset.py", "model": "../pages/model.py", "inference": "../pages/inference.py"}
NEW_JOB_PAGES = {"dataset": ("datasets", "../pages/new_dataset.py", "Create a dataset"),
                 "model": ("models", "../pages/new_model.py", "Create a model"),
                 "inference": ("inference jobs", "../pages/model.py", "Classify many images from a model's page")}


def job_from_url(kind: str) -> Job | None:
    """The job named by ?job=<id>, or None when the URL names none. Stops the page for a wrong id."""
    job_id = st.query_params.get("job")
    if not job_id:
        return None
    try:
        job = JobStore().get(job_id)
        problem = job.problem()  # a broken job: its job.json or status.json cannot be read
    except JobNotFound as exc:
        problem = str(exc)
    if problem:
        st.error(problem)
        st.page_link("../pages/home.py", label="Back to all jobs", icon=":material/home:")
        st.stop()
    if job.kind != kind:
        st.switch_page(JOB_PAGES[job.kind], query_params={"job": job.id})
    return job


def job_picker(kind: str) -> None:
    """Shown when a job page is opened without ?job=: pick one."""
    jobs = JobStore().list(kind)
    if not jobs:
        plural, page, label = NEW_JOB_PAGES[kind]
        st.info(f"No {plural} yet.")
        st.page_link(page, label=label, icon=":material/add:")
        st.stop()
    for job in jobs:
        summary = summarize(job, with_params=False)
        st.page_link(JOB_PAGES[kind], label=f"{summary['name']} · {summary['status']}", query_params={"job": job.id})
    st.stop()


def page_job(kind: str, title: str) -> tuple[Job, dict, bool]:
    """The job this page shows (its header drawn), its summary, and whether it is still active.
    Without ?job= in the URL the page lists the jobs to pick from instead, and stops."""
    job = job_from_url(kind)
    if job is None:
        st.title(title)
        job_picker(kind)
    summary = refresh_liveness(job, summarize(job))
    header(job, summary)
    return job, summary, JobState(summary["status"]).is_active


def live_status(job: Job, was_active: bool, progress_unit=lambda summary: "") -> dict:
    """The body every job page polls: status, progress, error. Reruns the whole
    page when the job starts or ends, so that polling stops and results show."""
    current = refresh_liveness(job, summarize(job))
    if JobState(current["status"]).is_active != was_active:
        st.rerun()
    status_line(current, progress_unit(current))
    error_box(job, current)
    return current


def refresh_liveness(job: Job, summary: dict) -> dict:
    """A Running job whose worker is gone becomes Error now, not at the next page load."""
    if summary["status"] == JobState.RUNNING.value and not liveness.lock_is_held(job.lock_path):
        Scheduler(JobStore(job.dir.parent)).schedule()
        return summarize(job)
    return summary


def header(job: Job, summary: dict) -> None:
    left, right = st.columns([1, 1], vertical_alignment="bottom")
    with left:
        st.title(summary["name"])
        meta = [f"`{job.id}`", f"created {when(summary['created'])} by {summary.get('owner') or '?'}"]
        if summary.get("group"):
            meta.append(f"group **{summary['group']}**")
        st.markdown(" · ".join(meta))
    with right:
        actions(job, summary)


def owner_only(summary: dict) -> str | None:
    """Why the signed-in person may not abort, rename or delete this job (None when they may)."""
    if ownership.may_change(summary.get("owner"), auth.current_actor()):
        return None
    return f"Only {summary.get('owner') or 'its owner'} or an admin can change this job; you can clone it."


def actions(job: Job, summary: dict) -> None:
    active = JobState(summary["status"]).is_active
    refused = owner_only(summary)
    by = auth.current_actor()
    cols = st.columns([1, 1, 1.3, 1.2])  # the popovers carry a caret
    if cols[0].button("Abort", icon=":material/stop_circle:", disabled=not active or bool(refused), key="abort",
                      width="stretch", help=refused):
        _run_action(lambda: (job_actions.abort(job, by=by), st.toast(f"Asked {summary['name']} to stop."),
                             st.rerun()))
    if cols[1].button("Clone", icon=":material/content_copy:", key="clone", width="stretch",
                      help="Submit a new job with the same settings."):
        if job.params.get("source") == "s3":  # its keys are not stored: the form asks for them again
            st.switch_page("../pages/new_dataset.py", query_params={"clone": job.id})
        _run_action(lambda: _go_to(job_actions.clone(job)))
    with cols[2].popover("Rename", icon=":material/edit:", width="stretch", disabled=bool(refused), help=refused):
        name = st.text_input("New name", value=summary["name"], key="rename.name", max_chars=job_actions.MAX_NAME)
        if st.button("Rename", type="primary", key="rename"):
            _run_action(lambda: (job_actions.rename(job, name, by=by), st.rerun()))
    with cols[3].popover("Delete", icon=":material/delete:", width="stretch", disabled=bool(refused), help=refused):
        st.write(f"Delete **{summary['name']}** and all its files?")
        if st.button("Delete for good", type="primary", key="delete"):
            _run_action(lambda: (job_actions.delete(job, by=by), st.switch_page("../pages/home.py")))


def _go_to(job: Job) -> None:
    st.switch_page(JOB_PAGES[job.kind], query_params={"job": job.id})


def _run_action(action) -> None:
    try:
        action()
    except DigitsError as exc:
        st.error(str(exc))


def status_line(summary: dict, unit: str = "") -> None:
    state = summary["status"]
    parts = [f":{STATE_COLORS[state]}-badge[{state}]"]
    if summary.get("started"):
        parts.append(f"started {when(summary['started'])}")
    if summary.get("ended"):
        parts.append(f"ended {when(summary['ended'])}")
    st.markdown(" · ".join(parts))
    if state == JobState.RUNNING.value:
        eta = summary.get("eta_seconds")
        text = f"{summary['progress']:.0%}{unit}" + (f" · about {duration(eta)} left" if eta is not None else "")
        st.progress(min(max(summary["progress"], 0.0), 1.0), text=text)
    elif state == JobState.WAITING.value:
        st.info(summary.get("note") or "Waiting: it starts when a slot is free"
                + (" and its dataset is done." if summary["kind"] == "model" else "."))


def error_box(job: Job, summary: dict) -> None:
    if summary["status"] == JobState.ERROR.value and summary.get("error"):
        st.error(summary["error"], icon=":material/error:")
    if summary["status"] in (JobState.ERROR.value, JobState.ABORTED.value):
        with st.expander("Last lines of the job's log"):
            st.code(job.log_tail(40) or "(empty)", language=None)
