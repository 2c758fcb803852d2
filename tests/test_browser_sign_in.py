"""Sign-in on a real server: with a password in secrets.toml, neither HTTP nor the browser shows
anything of the jobs before signing in; a wrong password is refused; the right one opens the app."""
import urllib.request

import pytest

from digits_engine.job_store import JobStore

from test_browser import browser_page, chromium, make_demo_tree, settle, streamlit_server  # noqa: F401

pytestmark = pytest.mark.browser
PASSWORD = "team-password-5120"


@pytest.fixture
def guarded_server(jobs_dir, tmp_path, monkeypatch):
    """A server whose secrets.toml sets a team password, and one job named `kept-from-strangers`."""
    monkeypatch.setenv("DIGITS_USER", "alice")
    job = JobStore(jobs_dir).create("dataset", "kept-from-strangers", {"folder": "/x"})
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(f'[digits]\npassword = "{PASSWORD}"\n')
    with streamlit_server(jobs_dir, make_demo_tree(tmp_path / "demo"), tmp_path / "streamlit.log",
                          options=("--secrets.files", str(secrets))) as url:
        yield url, job


def test_http_serves_no_job_before_sign_in(guarded_server):
    url, job = guarded_server
    for path in ("/", f"/dataset?job={job.id}", f"/model?job={job.id}", "/system"):
        with urllib.request.urlopen(url + path, timeout=10) as answer:
            body = answer.read().decode(errors="replace")
        assert "kept-from-strangers" not in body and "alice" not in body, path


def test_the_browser_shows_only_the_sign_in_form_until_the_password_is_right(chromium, guarded_server):
    from playwright.sync_api import expect

    url, job = guarded_server
    with browser_page(chromium, 800) as page:
        page.goto(f"{url}/dataset?job={job.id}")
        settle(page)
        expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        assert "kept-from-strangers" not in page.content()
        page.get_by_role("textbox", name="Your name").fill("carol")
        page.get_by_role("textbox", name="Password").fill("guess")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_text("Wrong name or password")).to_be_visible(timeout=30_000)
        assert "kept-from-strangers" not in page.content()
        page.get_by_role("textbox", name="Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="kept-from-strangers")).to_be_visible(timeout=30_000)
        settle(page)
        expect(page.get_by_text("Signed in as carol")).to_be_visible()


def test_a_secrets_file_that_cannot_be_read_keeps_the_app_closed(chromium, jobs_dir, tmp_path):
    from playwright.sync_api import expect

    JobStore(jobs_dir).create("dataset", "kept-from-strangers", {"folder": "/x"})
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[digits]\npassword = "unterminated\n')
    with streamlit_server(jobs_dir, make_demo_tree(tmp_path / "demo"), tmp_path / "streamlit.log",
                          options=("--secrets.files", str(secrets))) as url, browser_page(chromium, 600) as page:
        page.goto(url)
        settle(page)
        expect(page.get_by_text("secrets.toml cannot be read, so the app stays closed")).to_be_visible()
        assert "kept-from-strangers" not in page.content()
