"""The home page of a team's jobs, rendered by AppTest: broken jobs listed apart
while the rest works, filters by owner and group, the name search, pages of
rows, and filters kept in the URL. Jobs are made with JobStore directly (Done,
no workers), with DIGITS_USER as their owner."""
import time
from pathlib import Path

import pytest

from digits_engine.job_state import JobState
from digits_engine.job_store import JobStore

from test_pages import assert_fine, open_page, texts

PAGE_SIZE = 25  # pages/home.py's rows a list a page


@pytest.fixture
def make_job(jobs_dir, monkeypatch):
    def make(kind: str, name: str, owner: str = "alice", group: str = ""):
        monkeypatch.setenv("DIGITS_USER", owner)
        job = JobStore().create(kind, name, {"epochs": 1} if kind == "model" else {}, group=group)
        job.set_state(JobState.DONE)
        return job
    return make


def links(at) -> list[str]:
    """The job links of the Datasets and Models lists."""
    return [link.value for link in at.page_link if link.proto.page in ("dataset", "model")]


def damage(path: Path, how: str) -> None:
    if how == "truncated":  # what a writer killed mid-write, without the atomic rename, leaves
        path.write_text(path.read_text()[: len(path.read_text()) // 2])
    elif how == "corrupt":
        path.write_bytes(b"\x00\xff{not json")
    elif how == "not an object":
        path.write_text('["a", "list"]')


# --------------------------------------------------------------------------- broken jobs

def test_broken_jobs_are_listed_apart_and_the_rest_works(make_job, jobs_dir):
    make_job("dataset", "good data")
    make_job("model", "good model")
    broken = {}
    for file, how in [("job.json", "corrupt"), ("job.json", "truncated"), ("status.json", "corrupt"),
                      ("status.json", "truncated"), ("job.json", "not an object")]:
        job = make_job("model", f"hurt {file} {how}")
        damage(job.dir / file, how)
        broken[job.id] = (job, file)
    (jobs_dir / "99999999-999999-999-half").mkdir()  # no job.json yet: half-created, ignored
    at = open_page("home")
    assert_fine(at)
    assert sorted(links(at)) == ["good data", "good model"]
    assert [s.value for s in at.subheader] == ["Datasets", "Models", "Broken jobs"]
    words = texts(at)
    for job, file in broken.values():
        assert f"the job's folder {job.dir}" in words
    reasons = [m.value.split(" (")[0].split(":")[0] for m in at.markdown if "the job's folder" in m.value]
    assert sorted(reasons) == ["job.json cannot be read"] * 2 + ["job.json holds a JSON list, not an object"] \
        + ["status.json cannot be read"] * 2
    names = [m.value for m in at.markdown if m.value.startswith("**")]
    for job, file in broken.values():  # the name while job.json can be read, else the folder's
        expected = job.id if file == "job.json" else job.name
        assert f"**{expected}** · {'unknown' if file == 'job.json' else 'model'}" in names
    assert "half" not in words


def test_a_broken_job_page_says_so(make_job):
    job = make_job("model", "hurt")
    damage(job.status_path, "truncated")
    at = open_page("model", job=job.id)
    assert_fine(at)
    assert "status.json cannot be read" in at.error[0].value


# --------------------------------------------------------------------------- filters

@pytest.fixture
def team(make_job):
    make_job("dataset", "Cats", owner="alice", group="pets")
    make_job("dataset", "dogs", owner="bob", group="pets")
    make_job("dataset", "Cars", owner="bob")
    make_job("model", "cat LeNet", owner="alice", group="pets")
    make_job("model", "car AlexNet", owner="carol", group="roads")


def test_each_row_shows_its_owner(team):
    at = open_page("home")
    assert_fine(at)
    assert len(links(at)) == 5
    assert {c.value for c in at.caption} >= {"alice", "bob", "carol"}
    assert at.multiselect(key="home.owner").options == ["alice", "bob", "carol"]


def test_filter_by_owner_group_and_name(team):
    at = open_page("home")
    at.multiselect(key="home.owner").select("bob").run()
    assert_fine(at)
    assert sorted(links(at)) == ["Cars", "dogs"]
    assert at.query_params["owner"] == "bob"
    at.multiselect(key="home.group").select("pets").run()
    assert links(at) == ["dogs"]
    at.multiselect(key="home.owner").unselect("bob").run()
    at.text_input(key="home.q").input("CA").run()  # case-insensitive substring
    assert sorted(links(at)) == ["Cats", "cat LeNet"]
    assert at.query_params == {"group": "pets", "q": "CA"}
    at.text_input(key="home.q").input("zebra").run()
    assert links(at) == []
    assert "No jobs match" in at.info[0].value
    assert [c.value for c in at.caption].count("No jobs match.") == 2


def test_ungrouped_jobs_can_be_chosen(team):
    at = open_page("home")
    at.multiselect(key="home.group").select("").run()
    assert_fine(at)
    assert links(at) == ["Cars"]


def test_query_params_restore_the_filters(team):
    at = open_page("home", owner=["alice", "carol"], group="pets", q="cat")
    assert_fine(at)
    assert at.multiselect(key="home.owner").value == ["alice", "carol"]
    assert at.multiselect(key="home.group").value == ["pets"]
    assert at.text_input(key="home.q").value == "cat"
    assert sorted(links(at)) == ["Cats", "cat LeNet"]


# --------------------------------------------------------------------------- pages

def test_pages_of_rows(make_job):
    for i in range(PAGE_SIZE + 7):
        make_job("dataset", f"data {i:03d}")
        time.sleep(0.002)  # ids sort to the millisecond: newest first must be well defined
    make_job("model", "only model")
    at = open_page("home")
    assert_fine(at)
    datasets = [name for name in links(at) if name.startswith("data")]
    assert datasets == [f"data {i:03d}" for i in range(PAGE_SIZE + 6, 6, -1)]  # newest first
    assert "Page 1 of 2 · 1–25 of 32" in texts(at)
    assert at.button(key="home.page.datasets.back").disabled
    assert "home.page.models.next" not in [b.key for b in at.button]  # one page: no controls
    at.button(key="home.page.datasets.next").click().run()
    assert_fine(at)
    assert [name for name in links(at) if name.startswith("data")] == [f"data {i:03d}" for i in range(6, -1, -1)]
    assert "Page 2 of 2 · 26–32 of 32" in texts(at)
    assert "only model" in links(at)
    at.text_input(key="home.q").input("data 00").run()  # new filters: back to the first page
    assert [name for name in links(at) if name.startswith("data")] == [f"data {i:03d}" for i in range(9, -1, -1)]
