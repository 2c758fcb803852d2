"""Sign-in (app/auth.py) and owners (digits_engine/ownership.py) in the real app scripts, with AppTest.

The secrets are given as .streamlit/secrets.toml would give them (AppTest's `secrets`)."""
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from digits_engine import job_actions, ownership, passwords
from digits_engine.job_store import JobStore

from test_pages import MAIN, PAGES, assert_fine, engine_env, make_demo_tree, texts

TEAM_PASSWORD = "team-password-7431"
BOSS_PASSWORD = "boss-password-9902"


def app(page: str = "home", secrets: dict | None = None, **query) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=30)
    if secrets is not None:
        at.secrets["digits"] = secrets
    if page != "home":
        at.switch_page(PAGES[page])
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def team(**more) -> dict:
    return {"password": TEAM_PASSWORD, "admins": ["boss"],
            "users": {"boss": passwords.hash_password(BOSS_PASSWORD, iterations=1000)}, **more}


def sign_in(at: AppTest, name: str, password: str) -> AppTest:
    at.text_input(key="auth.name").set_value(name)
    at.text_input(key="auth.password").set_value(password)
    return at.button(key="FormSubmitter:sign-in-Sign in").click().run()


@pytest.fixture
def jobs(jobs_dir, monkeypatch, tmp_path):
    """Two jobs: alice's dataset and bob's model (made directly, no worker needed)."""
    engine_env(monkeypatch, jobs_dir)
    monkeypatch.setenv("DIGITS_DEMO_DIR", str(make_demo_tree(tmp_path / "demo")))
    store = JobStore(jobs_dir)
    monkeypatch.setenv("DIGITS_USER", "alice")
    dataset = store.create("dataset", "alices-flowers", {"folder": "/x"})
    monkeypatch.setenv("DIGITS_USER", "bob")
    model = store.create("model", "bobs-lenet", {"epochs": 1}, parents=[dataset.id])
    monkeypatch.delenv("DIGITS_USER")
    return store, dataset, model


def test_without_secrets_sign_in_is_off(jobs):
    at = app()
    assert_fine(at)
    assert "alices-flowers" in texts(at) and "auth.password" not in [t.key for t in at.text_input]


@pytest.mark.parametrize("page", ["home", "model", "dataset", "system"])
def test_with_a_password_nothing_shows_before_sign_in(jobs, page):
    _, dataset, model = jobs
    at = app(page, team(), job=model.id if page == "model" else dataset.id)
    assert_fine(at)
    shown = texts(at)
    assert "Sign in" in shown
    for secret in ("alices-flowers", "bobs-lenet", dataset.id, model.id, "alice", "DIGITS_JOBS_DIR"):
        assert secret not in shown
    assert [t.key for t in at.text_input] == ["auth.name", "auth.password"]


def test_a_wrong_password_is_refused_after_a_delay(jobs):
    at = app(secrets=team())
    started = time.monotonic()
    sign_in(at, "carol", "not-the-password")
    assert time.monotonic() - started >= 1.0  # the delay that slows guessing
    assert "Wrong name or password" in at.error[0].value
    assert "alices-flowers" not in texts(at)


def test_the_team_password_signs_in_and_new_jobs_are_owned_by_the_name(jobs):
    store, _, _ = jobs
    at = sign_in(app(secrets=team()), "carol", TEAM_PASSWORD)
    assert_fine(at)
    assert "alices-flowers" in texts(at) and "Signed in as **carol**" in [c.value for c in at.sidebar.caption]
    at.switch_page(PAGES["new_dataset"]).run()
    at.text_input(key="new_dataset.name").set_value("carols-set")
    at.button(key="FormSubmitter:new_dataset-Create").click().run()
    assert_fine(at)
    created = [j for j in store.list("dataset") if j.name == "carols-set"]
    assert created and created[0].spec["owner"] == "carol"


def test_an_admin_needs_their_own_password(jobs):
    at = sign_in(app(secrets=team()), "boss", TEAM_PASSWORD)
    assert "Wrong name or password" in at.error[0].value
    at = sign_in(app(secrets=team()), "boss", BOSS_PASSWORD)
    assert_fine(at)
    assert "Signed in as **boss** (admin)" in [c.value for c in at.sidebar.caption]


def test_only_the_owner_or_an_admin_may_change_a_job(jobs):
    _, dataset, _ = jobs
    at = sign_in(app("dataset", team(), job=dataset.id), "bob", TEAM_PASSWORD)
    assert_fine(at)
    abort, = [b for b in at.button if b.key == "abort"]
    assert abort.disabled and "Only alice or an admin" in abort.help
    with pytest.raises(ownership.NotPermitted, match="Only alice"):
        job_actions.delete(dataset, by=ownership.Actor("bob"))
    with pytest.raises(ownership.NotPermitted):
        job_actions.rename(dataset, "mine now", by=ownership.Actor("bob"))
    job_actions.rename(dataset, "renamed by the owner", by=ownership.Actor("alice"))
    job_actions.rename(dataset, "renamed by an admin", by=ownership.Actor("boss", admin=True))
    assert dataset.name == "renamed by an admin"


def test_signing_out_hides_everything_again(jobs):
    at = sign_in(app(secrets=team()), "carol", TEAM_PASSWORD)
    at.sidebar.button(key="auth.sign_out").click().run()
    assert "alices-flowers" not in texts(at) and "Sign in" in texts(at)


def test_the_password_lands_in_no_file_and_no_page(jobs, jobs_dir):
    at = sign_in(app(secrets=team()), "carol", TEAM_PASSWORD)
    for page in ("home", "new_dataset", "new_model", "system"):
        at.switch_page(PAGES[page]).run()
        assert_fine(at)
        assert TEAM_PASSWORD not in texts(at) and BOSS_PASSWORD not in texts(at)
    for path in Path(jobs_dir).rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert TEAM_PASSWORD.encode() not in data and b"pbkdf2_sha256" not in data, path


def test_password_hashes():
    stored = passwords.hash_password("correct horse", iterations=1000)
    assert passwords.matches("correct horse", stored) and not passwords.matches("correct hors", stored)
    assert passwords.matches("plain", "plain") and not passwords.matches("plain", "")
    assert not passwords.matches("x", "pbkdf2_sha256$notanumber$00$00")


def test_oidc_when_streamlits_auth_section_is_set(jobs):
    at = AppTest.from_file(MAIN, default_timeout=30)
    at.secrets["auth"] = {"redirect_uri": "http://127.0.0.1:8501/oauth2callback", "cookie_secret": "c" * 32,
                          "client_id": "digits", "client_secret": "s" * 16,
                          "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration"}
    at.run()
    assert_fine(at)
    assert [b.label for b in at.button] == ["Sign in"] and "alices-flowers" not in texts(at)
    assert not at.get("text_input")


def test_the_cli_renames_and_refuses_a_blank_name(jobs, capsys):
    from digits_engine import cli

    _, dataset, _ = jobs
    assert cli.main(["jobs", "rename", dataset.id, "  flowers v2 ", "--json"]) == 0
    assert dataset.name == "flowers v2" and '"name": "flowers v2"' in capsys.readouterr().out
    assert cli.main(["jobs", "rename", dataset.id, " "]) == 2
    assert "cannot be blank" in capsys.readouterr().err and dataset.name == "flowers v2"


def test_several_oidc_providers_get_a_button_each(jobs):
    at = AppTest.from_file(MAIN, default_timeout=30)
    provider = {"client_id": "digits", "client_secret": "s" * 16,
                "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration"}
    at.secrets["auth"] = {"redirect_uri": "http://127.0.0.1:8501/oauth2callback", "cookie_secret": "c" * 32,
                          "google": provider, "okta": provider, "client_kwargs": {"prompt": "login"}}
    at.run()
    assert_fine(at)
    assert [b.label for b in at.button] == ["Sign in with google", "Sign in with okta"]
