"""Home: every dataset and model, grouped by their group name, with owner,
status, progress and the model's best metric, PAGE_SIZE rows a page; jobs
whose files cannot be read listed apart. Refreshes itself while jobs run.

The filters (owner, group, name search) live in st.session_state ("home.*")
and in the URL (?owner=..&group=..&q=..), so that a link shares a view."""
import streamlit as st

from digits_engine.job_state import JobState
from digits_engine.job_store import Job, JobStore
from digits_engine.job_summary import model_metrics, summarize

from formatting import STATE_COLORS, percent, when
from job_widgets import JOB_PAGES

WIDTHS = [4, 1.3, 2.2, 1.4, 1.4]
PAGE_SIZE = 25
LISTS = ("owner", "group")  # multiselect filters; the search is "q"
SAVED = "home.filters"  # the filters last written to the URL (widget keys vanish when another page shows)
NO_GROUP = "(no group)"


def summaries() -> list[dict]:
    """Every job, without the models' metrics: only the rows shown read those (`with_metrics`)."""
    return [summarize(job, with_params=False, with_metrics=False) for job in JobStore().list()]


def with_metrics(summary: dict, root) -> dict:
    return summary | model_metrics(Job(root / summary["id"])) if summary["kind"] == "model" else summary


def owner_of(summary: dict) -> str:
    return summary.get("owner") or "unknown"


# --------------------------------------------------------------------------- filters

def url_filters() -> dict:
    return {"owner": st.query_params.get_all("owner"), "group": st.query_params.get_all("group"),
            "q": st.query_params.get("q", "")}


def current_filters() -> dict:
    return {name: list(st.session_state.get(f"home.{name}", [])) for name in LISTS} | \
        {"q": st.session_state.get("home.q", "")}


def restore_filters() -> None:
    """Before the widgets: a URL with filters (a shared link) wins over what this session had; an URL
    without any (back from another page) gets this session's last filters again."""
    url, saved = url_filters(), st.session_state.get(SAVED)
    if any(url.values()):
        if url != saved:
            _set_widgets(url)
    elif saved and any(saved.values()) and current_filters() != saved:
        _set_widgets(saved)


def _set_widgets(filters: dict) -> None:
    for name, value in filters.items():
        st.session_state[f"home.{name}"] = value


def save_filters(filters: dict) -> None:
    """Into the URL, only what changed (each change of st.query_params is a browser history entry).
    New filters start the lists at their first page again."""
    if st.session_state.get(SAVED) != filters:
        for title in ("datasets", "models"):
            st.session_state.pop(f"home.page.{title}", None)
    st.session_state[SAVED] = filters
    for name, value in filters.items():
        if value and (st.query_params.get_all(name) != (value if isinstance(value, list) else [value])):
            st.query_params[name] = value
        elif not value and name in st.query_params:
            del st.query_params[name]


def filter_bar(jobs: list[dict]) -> dict:
    restore_filters()
    chosen = current_filters()
    owners = sorted({owner_of(s) for s in jobs} | set(chosen["owner"]))
    groups = sorted({s["group"] for s in jobs} | set(chosen["group"]))
    who, group, search = st.columns([2, 2, 3], vertical_alignment="bottom")
    who.multiselect("Owner", owners, key="home.owner", placeholder="Everyone")
    group.multiselect("Group", groups, key="home.group", placeholder="All groups",
                      format_func=lambda g: g or NO_GROUP)
    search.text_input("Search by name", key="home.q", placeholder="Part of a job's name")
    filters = current_filters()
    save_filters(filters)
    return filters


def matches(summary: dict, filters: dict) -> bool:
    return ((not filters["owner"] or owner_of(summary) in filters["owner"])
            and (not filters["group"] or summary["group"] in filters["group"])
            and filters["q"].strip().lower() in summary["name"].lower())


# --------------------------------------------------------------------------- the lists

def row(summary: dict) -> None:
    name, state, progress, best, created = st.columns(WIDTHS, vertical_alignment="center")
    name.page_link(JOB_PAGES[summary["kind"]], label=summary["name"], query_params={"job": summary["id"]})
    name.caption(owner_of(summary))
    state.markdown(f":{STATE_COLORS[summary['status']]}-badge[{summary['status']}]")
    if summary["status"] == JobState.RUNNING.value:
        progress.progress(min(summary["progress"], 1.0), text=f"{summary['progress']:.0%}")
    elif summary.get("error"):
        progress.caption(summary["error"][:80], help=summary["error"])
    if summary["kind"] == "model" and summary.get("best") is not None:
        unit = "IoU" if summary["best_metric"].endswith("mean_iou") else "acc."
        best.markdown(f"{percent(summary['best'])} {unit}")
    created.caption(when(summary["created"]))


def grouped(items: list[dict]) -> list[dict]:
    """Ungrouped first, then group by group name; newest first within each."""
    return sorted(items, key=lambda s: (s["group"] != "", s["group"]))  # stable: keeps newest first


def page_of(key: str, items: list[dict]) -> list[dict]:
    """This list's current page (its number in st.session_state[key]), with Previous/Next below."""
    pages = max(1, -(-len(items) // PAGE_SIZE))
    page = min(st.session_state.get(key, 0), pages - 1)
    st.session_state[key] = page
    return items[page * PAGE_SIZE:(page + 1) * PAGE_SIZE]


def page_controls(key: str, total: int) -> None:
    pages = -(-total // PAGE_SIZE)
    if pages <= 1:
        return
    page = st.session_state[key]
    back, where, forward = st.columns([1, 2, 1], vertical_alignment="center")
    back.button("Previous", key=f"{key}.back", disabled=page == 0, icon=":material/chevron_left:",
                on_click=lambda: st.session_state.update({key: page - 1}))
    first = page * PAGE_SIZE + 1
    where.caption(f"Page {page + 1} of {pages} · {first}–{min(first + PAGE_SIZE - 1, total)} of {total}")
    forward.button("Next", key=f"{key}.next", disabled=page == pages - 1, icon=":material/chevron_right:",
                   on_click=lambda: st.session_state.update({key: page + 1}))


def table(title: str, items: list[dict], filtered: bool, best_label: str = "") -> None:
    st.subheader(title)
    if not items:
        st.caption("No jobs match." if filtered else "None yet.")
        return
    head = st.columns(WIDTHS)
    for col, text in zip(head, ("Name", "Status", "Progress", best_label, "Created")):
        col.caption(text)
    key = f"home.page.{title.lower()}"
    items = grouped(items)
    group_sizes: dict[str, int] = {}
    for item in items:
        group_sizes[item["group"]] = group_sizes.get(item["group"], 0) + 1
    shown_group, root = None, JobStore().root
    for summary in page_of(key, items):
        if summary["group"] != shown_group:
            shown_group = summary["group"]
            group_header(shown_group, group_sizes[shown_group], summary["kind"])
        row(with_metrics(summary, root))
    page_controls(key, len(items))


def group_header(group: str, size: int, kind: str) -> None:
    if group and size > 1 and kind == "model":
        name, link = st.columns([3, 1], vertical_alignment="center")
        name.markdown(f"**{group}**")
        link.page_link("../pages/compare.py", label="Compare", icon=":material/compare_arrows:",
                       query_params={"group": group})
    elif group:
        st.markdown(f"**{group}**")


def broken_list(broken: list[dict]) -> None:
    """Jobs whose job.json or status.json cannot be read: never filtered, always in sight."""
    st.subheader("Broken jobs")
    st.caption("Their job.json or status.json cannot be read, so they cannot be opened; everything else works. "
               "Restore the file named, or delete the job's folder.")
    for summary in broken[:PAGE_SIZE]:
        name, reason = st.columns([1, 3])
        name.markdown(f"**{summary['name']}** · {summary['kind']}")
        name.caption(owner_of(summary) if summary.get("owner") else summary["id"])
        reason.markdown(summary["error"])  # it names the folder
    if len(broken) > PAGE_SIZE:
        st.caption(f"… and {len(broken) - PAGE_SIZE} more.")


# --------------------------------------------------------------------------- the page

first_run = {"jobs": summaries()}  # read once per script run: the fragment's first call takes it, reruns read anew
any_active = any(JobState(s["status"]).is_active for s in first_run["jobs"])


@st.fragment(run_every=3 if any_active else None)
def overview(first: dict) -> None:
    current = first.pop("jobs", None)
    if current is None:
        current = summaries()
    if any(JobState(s["status"]).is_active for s in current) != any_active:
        st.rerun()
    broken = [s for s in current if s.get("broken")]
    shown = [s for s in current if not s.get("broken") and s["kind"] in ("dataset", "model")]
    filters = filter_bar(shown)
    filtered = any(filters.values())
    chosen = [s for s in shown if matches(s, filters)]
    if filtered and shown and not chosen:
        st.info("No jobs match these filters: clear one, or search for another name.")
    left, right = st.columns(2, gap="large")
    with left:
        table("Datasets", [s for s in chosen if s["kind"] == "dataset"], filtered)
        st.page_link("../pages/new_dataset.py", label="New dataset", icon=":material/add:")
    with right:
        table("Models", [s for s in chosen if s["kind"] == "model"], filtered, "Best val")
        st.page_link("../pages/new_model.py", label="New model", icon=":material/add:")
    if broken:
        broken_list(broken)


st.title("DIGITS")
st.caption("Build image datasets, train models and look at the results: jobs keep running when the page is closed.")
overview(first_run)
