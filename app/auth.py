"""Sign-in. Off unless .streamlit/secrets.toml sets it up (docs/deploy.md):

    [digits]
    password = "the team's password"   # each person gives their name and this password
    admins = ["alice"]                 # may abort, rename and delete anyone's jobs
    [digits.users]                     # or a password each (plain, or from `digits hash-password`)
    alice = "pbkdf2_sha256$600000$..."

or Streamlit's own OIDC sign-in (`st.login`), when its `[auth]` section is there. app/main.py asks
`is_open()` before running any page: nothing is shown until someone signs in, and their name owns
the jobs they create.
"""
import os
import re
import threading
import time

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from digits_engine import ownership, passwords

USER = "auth.user"  # session_state: the signed-in name (password mode)
NAME_PATTERN = re.compile(r"^[\w.@+-][\w .@+-]{0,39}$")
FIRST_DELAY_S, MAX_DELAY_S = 1.0, 8.0
_failures: dict[str, int] = {}  # wrong attempts per name, for the whole server
_failures_lock = threading.Lock()


class SecretsUnreadable(Exception):
    pass


def _secrets() -> dict:
    """secrets.toml's contents; {} when there is none. A file that is there but cannot be read raises
    SecretsUnreadable: the app refuses to open rather than open unprotected."""
    try:
        return st.secrets.to_dict()
    except Exception as exc:  # Streamlit says "not found" for a file it cannot parse, too
        present = [p for p in st.get_option("secrets.files") if os.path.exists(p)]
        if isinstance(exc, FileNotFoundError) and not present:
            return {}
        raise SecretsUnreadable(str(exc)) from exc


def _settings() -> dict:
    return _secrets().get("digits") or {}


def mode() -> str:
    """"off", "password" or "oidc": how people sign in, as secrets.toml sets it."""
    secrets = _secrets()
    if (secrets.get("auth") or {}).get("redirect_uri"):
        return "oidc"
    settings = secrets.get("digits") or {}
    return "password" if settings.get("password") or settings.get("users") else "off"


def admins() -> set[str]:
    return {str(name) for name in _settings().get("admins", [])}


def is_open() -> bool:
    """Whether pages may show: sign-in is off, or someone is signed in. Stops the app, with the
    reason, when secrets.toml cannot be read."""
    try:
        return mode() == "off" or signed_in_name() is not None
    except SecretsUnreadable as exc:
        st.error(f".streamlit/secrets.toml cannot be read, so the app stays closed: {exc}. Fix the file and "
                 "reload this page.", icon=":material/lock:")
        st.stop()


def sign_in_form() -> None:
    with st.columns([1, 1.4, 1])[1]:  # a narrow form in the middle of the wide layout
        _oidc_form() if mode() == "oidc" else _password_form()


def signed_in_bar() -> None:
    """Who is signed in, and the sign-out button, in the sidebar (nothing when sign-in is off)."""
    actor = current_actor()
    if actor is None:
        return
    with st.sidebar:
        st.caption(f"Signed in as **{actor.name}**" + (" (admin)" if actor.admin else ""))
        if st.button("Sign out", icon=":material/logout:", key="auth.sign_out"):
            if mode() == "oidc":
                st.logout()
                st.stop()  # not st.rerun(): a new run clears the queued redirect that deletes the cookie
            st.session_state.pop(USER, None)
            st.rerun()


def current_actor() -> ownership.Actor | None:
    """Who is acting on this page (for the owner checks); None when sign-in is off."""
    name = signed_in_name()
    return ownership.Actor(name, admin=name in admins()) if name else None


def signed_in_name() -> str | None:
    """The signed-in person's name in this script run; None outside one or when sign-in is off."""
    if get_script_run_ctx(suppress_warning=True) is None:
        return None
    how = mode()
    if how == "oidc":
        return _oidc_name()
    return st.session_state.get(USER) if how == "password" else None


def _oidc_name() -> str | None:
    if not st.user.get("is_logged_in"):
        return None
    return st.user.get("email") or st.user.get("name") or st.user.get("sub")


def _oidc_form() -> None:
    st.title("DIGITS")
    st.write("Sign in to see the team's datasets and models.")
    # A named provider is a table with a client_id; other tables (client_kwargs) are options.
    providers = [k for k, v in (_secrets().get("auth") or {}).items() if isinstance(v, dict) and "client_id" in v]
    if len(providers) <= 1:
        if st.button("Sign in", type="primary", icon=":material/login:"):
            st.login(providers[0] if providers else None)
        return
    for provider in providers:  # several: one button each
        if st.button(f"Sign in with {provider}", icon=":material/login:", key=f"auth.login.{provider}"):
            st.login(provider)


def _password_form() -> None:
    st.title("DIGITS")
    with st.form("sign-in"):
        st.write("Sign in to see the team's datasets and models.")
        name = st.text_input("Your name", max_chars=40, key="auth.name",
                             help="Jobs you create are recorded under this name.")
        password = st.text_input("Password", type="password", key="auth.password")
        if not st.form_submit_button("Sign in", type="primary", icon=":material/login:"):
            return
    name = name.strip()
    if not NAME_PATTERN.match(name):
        st.error("Give your name: letters, digits, spaces and . @ + - _ only, up to 40 characters.")
        return
    if not _password_matches(name, password):
        time.sleep(_note_failure(name))
        st.error("Wrong name or password. Check both and try again; ask your admin if you have forgotten it.")
        return
    _clear_failures(name)
    st.session_state[USER] = name
    st.rerun()


def _password_matches(name: str, password: str) -> bool:
    """A person listed under [digits.users] signs in with their own password only; anyone else, not
    an admin, with the team's password. (A shared password proves nothing about a name, so an admin
    must have a password of their own.)"""
    settings = _settings()
    users = {str(k): str(v) for k, v in (settings.get("users") or {}).items()}
    if name in users:
        return passwords.matches(password, users[name])
    shared = str(settings.get("password") or "")
    return bool(shared) and name not in admins() and passwords.matches(password, shared)


def _note_failure(name: str) -> float:
    """Seconds to wait before answering: doubles with each wrong attempt for this name, up to MAX_DELAY_S."""
    with _failures_lock:
        _failures[name] = _failures.get(name, 0) + 1
        return min(FIRST_DELAY_S * 2 ** (_failures[name] - 1), MAX_DELAY_S)


def _clear_failures(name: str) -> None:
    with _failures_lock:
        _failures.pop(name, None)

