"""The "Use S3" tab of New dataset and cloning an S3 dataset from its page
(issue 3), with AppTest, real workers and the session's real S3 server."""
import pytest
from test_pages import PAGES, assert_fine, error_under, open_page, texts
from test_s3_datasets import no_aws_env, shapes  # noqa: F401 - fixtures
from test_s3_datasets import JOB_TIMEOUT, S3_SUBMIT, SECRET_FORM_KEY, assert_done, files_holding, s3_args, submit

from digits_engine import job_actions
from digits_engine.job_state import JobState
from digits_engine.job_store import JobStore

pytestmark = pytest.mark.timeout(300)


# --------------------------------------------------------------------------- the "Use S3" tab

def s3_tab(at):
    """Open the "Use S3" tab (a keyed st.tabs that reruns on change) and return the page."""
    at.session_state["new_dataset.source"] = "Use S3"
    return at.run()


def open_tab(at, label: str):
    [tab] = [t for t in at.tabs if t.label == label]
    return tab


def fill_s3_form(at, server, bucket: str, name: str = "from the tab", secret: str | None = None) -> None:
    at.text_input(key="new_dataset.name").set_value(name)
    at.text_input(key="new_dataset.s3_endpoint").set_value(server.endpoint)
    at.text_input(key="new_dataset.s3_bucket").set_value(bucket)
    at.text_input(key="new_dataset.s3_path").set_value("mnist/train/")
    at.text_input(key="new_dataset.s3_access_key").set_value(server.access_key)
    at.text_input(key=SECRET_FORM_KEY).set_value(server.secret_key if secret is None else secret)


def state_values(at) -> dict:
    """User state and keyed widget values of the AppTest session."""
    return at.session_state.to_dict()


@pytest.fixture
def app_env(jobs_dir, monkeypatch, tmp_path, no_aws_env):
    monkeypatch.setenv("DIGITS_DEMO_DIR", str(tmp_path / "no-demo"))  # a blank form
    return jobs_dir


def test_s3_tab_creates_the_dataset_and_forgets_the_secret(app_env, shapes, s3_server):
    at = open_page("new_dataset")
    assert_fine(at)
    assert [t.label for t in at.tabs] == ["Use folder", "Use text files", "Upload an archive", "Use S3"]
    s3_tab(at)
    assert_fine(at)
    assert open_tab(at, "Use S3").children and not open_tab(at, "Use folder").children
    assert at.text_input(key=SECRET_FORM_KEY).proto.type == at.text_input(key=SECRET_FORM_KEY).proto.PASSWORD
    fill_s3_form(at, s3_server, shapes.bucket)
    at.button(key=S3_SUBMIT).click().run()
    assert_fine(at)

    [job] = JobStore(app_env).list()
    assert job.kind == "dataset" and job.name == "from the tab"
    assert at.title[0].value == "from the tab"  # the app switched to the new dataset's page
    assert at.query_params["job"] in (job.id, [job.id])
    assert job.params["source"] == "s3" and job.params["s3_bucket"] == shapes.bucket
    assert job_actions.wait(job, timeout=JOB_TIMEOUT) is JobState.DONE, job.log_tail()
    assert files_holding(app_env, s3_server.secret_key) == []
    assert state_values(at).get(SECRET_FORM_KEY, "") == ""
    for key, value in state_values(at).items():
        assert s3_server.secret_key not in str(value), key

    at.switch_page(PAGES["dataset"]).run()  # follow the app (AppTest reruns the page it last switched to)
    assert_fine(at)
    page = texts(at)
    assert ":green-badge[Done]" in page
    assert f"**Source:** `s3://{shapes.bucket}/mnist/train/ at {s3_server.endpoint}`" in page
    assert s3_server.secret_key not in page

    at.switch_page(PAGES["new_dataset"])  # back to the form: the secret box is empty
    s3_tab(at)
    assert_fine(at)
    assert at.text_input(key=SECRET_FORM_KEY).value == ""


def test_s3_tab_without_a_secret_creates_nothing(app_env, shapes, s3_server):
    at = s3_tab(open_page("new_dataset"))
    fill_s3_form(at, s3_server, shapes.bucket, secret="")
    at.text_input(key="new_dataset.s3_path").set_value("/")
    at.button(key=S3_SUBMIT).click().run()
    assert_fine(at)
    assert error_under(at, SECRET_FORM_KEY) == "Secret Key is required."
    assert "mnist/train/" in error_under(at, "new_dataset.s3_path")
    assert error_under(at, "new_dataset.s3_bucket") is None
    assert at.title[0].value == "New dataset"
    assert "not created" in at.error[-1].value
    assert JobStore(app_env).list() == []


def test_clone_from_the_dataset_page_asks_for_the_secret_again(app_env, shapes, s3_server, capsys):
    original, _, _ = submit(s3_args(shapes.endpoint, shapes.bucket, "mnist/train/", "s3 set", "--s3-config",
                                    str(shapes.cfg), "--group", "g1", "--val-pct", "10", "--s3-keep-copy"),
                            capsys, app_env)
    assert_done(original)
    at = open_page("dataset", job=original.id)
    assert_fine(at)
    assert f"s3://{shapes.bucket}/mnist/train/" in texts(at)
    at.button(key="clone").click().run()
    assert_fine(at)

    assert at.title[0].value == "New dataset"
    assert at.query_params["clone"] in (original.id, [original.id])
    assert open_tab(at, "Use S3").children and not open_tab(at, "Use folder").children
    value = lambda key: at.text_input(key=f"new_dataset.{key}").value  # noqa: E731
    assert value("name") == "s3 set (clone)"
    assert value("s3_endpoint") == shapes.endpoint
    assert value("s3_bucket") == shapes.bucket
    assert value("s3_path") == "mnist/train/"
    assert value("s3_access_key") == s3_server.access_key
    assert value("val_pct") == "10" and value("group") == "g1"
    assert at.checkbox(key="new_dataset.s3_keep_copy").value is True
    assert value("s3_secret_key") == ""
    assert len(JobStore(app_env).list()) == 1  # nothing submitted yet

    at.switch_page(PAGES["new_dataset"]).run()  # follow the app; ?clone= is kept
    assert_fine(at)
    assert value("s3_bucket") == shapes.bucket and value("s3_secret_key") == ""
    at.button(key=S3_SUBMIT).click().run()  # the secret is required again
    assert_fine(at)
    assert error_under(at, SECRET_FORM_KEY) == "Secret Key is required."
    assert len(JobStore(app_env).list()) == 1

    at.text_input(key=SECRET_FORM_KEY).set_value(s3_server.secret_key)
    at.button(key=S3_SUBMIT).click().run()
    assert_fine(at)
    clone = next(j for j in JobStore(app_env).list() if j.id != original.id)
    assert at.title[0].value == "s3 set (clone)"
    assert job_actions.wait(clone, timeout=JOB_TIMEOUT) is JobState.DONE, clone.log_tail()
    assert clone.params == original.params
    assert files_holding(app_env, s3_server.secret_key) == []
