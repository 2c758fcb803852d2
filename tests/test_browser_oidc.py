"""Single sign-on end to end, offline: `streamlit run` with Streamlit's own `[auth]` section in
secrets.toml, a real Chromium, and the OpenID Connect provider of tests/oidc_provider.py, all on
127.0.0.1. Nothing of the jobs shows before sign-in; "Sign in" goes to the provider and back; the
person's e-mail is their name (job owner) and `[digits] admins` makes them an admin; "Sign out"
closes the app again."""
import contextlib
import json
import time

import pytest

from digits_engine.job_store import JobStore
from oidc_provider import OidcProvider

from test_browser import (EXCEPTION, browser_page, chromium, free_port, make_demo_tree, settle,  # noqa: F401
                          streamlit_server)

pytestmark = pytest.mark.browser
CLIENT_ID, CLIENT_SECRET = "digits-app", "client-secret-3317"
ANA = {"sub": "u-ana", "email": "ana@example.org", "name": "Ana Admin"}
CARL = {"sub": "u-carl", "email": "carl@example.org", "name": "Carl Colleague"}


def write_secrets(path, port: int, provider: OidcProvider):
    path.write_text(f"""[auth]
redirect_uri = "http://127.0.0.1:{port}/oauth2callback"
cookie_secret = "cookie-secret-for-the-tests-only-8812"
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
server_metadata_url = "{provider.metadata_url}"
client_kwargs = {{ prompt = "login" }}  # a table of options, not a provider's section

[digits]
admins = ["ana@example.org"]
""")
    return path


@contextlib.contextmanager
def sso_app(jobs_dir, tmp_path, person: dict):
    """The provider (signing in `person`) and a server set up for it; yields (base URL, provider)."""
    port = free_port()  # the redirect_uri names the port before the server starts
    with OidcProvider(CLIENT_ID, CLIENT_SECRET, person) as provider:
        secrets = write_secrets(tmp_path / "secrets.toml", port, provider)
        demo = make_demo_tree(tmp_path / "demo", per_class=8, size=16)
        with streamlit_server(jobs_dir, demo, tmp_path / "streamlit.log", port=port,
                              options=("--secrets.files", str(secrets))) as url:
            yield url, provider
        assert provider.errors == []


@pytest.fixture
def bobs_job(jobs_dir, monkeypatch):
    """A dataset job owned by someone else; DIGITS_USER is gone again before the server starts."""
    monkeypatch.setenv("DIGITS_USER", "bob@example.org")
    job = JobStore(jobs_dir).create("dataset", "bobs-flowers", {"folder": "/x"})
    monkeypatch.delenv("DIGITS_USER")
    return job


def wait_for(condition, page, provider: OidcProvider, timeout: float = 30) -> None:
    """Wait until `condition()` holds or the provider refused a request, the browser working meanwhile."""
    deadline = time.monotonic() + timeout
    while not condition() and not provider.errors and time.monotonic() < deadline:
        page.wait_for_timeout(200)


def sign_in(page, url: str, provider: OidcProvider) -> None:
    """From the sign-in page (only its button, no job) through the provider and back to the app."""
    from playwright.sync_api import expect

    settle(page)
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert "bobs-flowers" not in page.content()
    before = provider.logins
    page.get_by_role("button", name="Sign in").click()
    wait_for(lambda: provider.logins > before, page, provider)
    assert provider.logins == before + 1, provider.errors or (
        "the app never asked the provider for a token: " + " ".join(page.locator(EXCEPTION).all_inner_texts()))
    page.wait_for_url(url + "/")  # back from the callback, on the home page


def test_an_admin_signs_in_with_the_provider_owns_what_they_create_and_signs_out(
        chromium, jobs_dir, tmp_path, bobs_job):
    from playwright.sync_api import expect

    with sso_app(jobs_dir, tmp_path, ANA) as (url, provider), browser_page(chromium, 900) as page:
        page.goto(url)
        sign_in(page, url, provider)
        expect(page.get_by_text("Signed in as ana@example.org (admin)")).to_be_visible(timeout=30_000)
        expect(page.get_by_text("bobs-flowers").first).to_be_visible()
        settle(page)

        # A new page load (a new session) still knows her: the identity is in Streamlit's cookie.
        page.goto(url + "/new_dataset")
        settle(page)
        expect(page.get_by_text("Signed in as ana@example.org (admin)")).to_be_visible()
        page.get_by_role("button", name="Create").click()
        page.wait_for_url("**/dataset?job=*")
        settle(page)
        job_id = page.url.split("job=")[1]
        spec = json.loads((jobs_dir / job_id / "job.json").read_text())
        assert spec["owner"] == "ana@example.org"

        page.get_by_role("button", name="Sign out").click()
        wait_for(lambda: provider.logouts, page, provider)
        assert provider.logouts == 1, provider.errors or "the app never sent the browser to the provider's logout"
        page.wait_for_url(url + "/")
        settle(page)
        expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        page.goto(url)  # the cookie is gone: a reload shows the sign-in page again
        settle(page)
        expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        assert "bobs-flowers" not in page.content() and "ana@example.org" not in page.content()


def test_someone_not_an_admin_cannot_delete_another_persons_job(chromium, jobs_dir, tmp_path, bobs_job):
    from playwright.sync_api import expect

    with sso_app(jobs_dir, tmp_path, CARL) as (url, provider), browser_page(chromium, 900) as page:
        page.goto(f"{url}/dataset?job={bobs_job.id}")
        sign_in(page, url, provider)
        page.goto(f"{url}/dataset?job={bobs_job.id}")
        settle(page)
        expect(page.get_by_text("Signed in as carl@example.org")).to_be_visible()
        assert "(admin)" not in page.locator('[data-testid="stSidebar"]').inner_text()
        expect(page.get_by_role("heading", name="bobs-flowers")).to_be_visible()
        expect(page.get_by_role("button", name="Delete")).to_be_disabled()
        expect(page.get_by_role("button", name="Rename")).to_be_disabled()
        expect(page.get_by_role("button", name="Clone")).to_be_enabled()
