"""Who owns a job and who may change it.

A new job's owner is the person signed in to the app (the app registers where to
find them with `set_owner_source`), else `DIGITS_USER`, else the account running
the process. Only a job's owner or an admin may abort, resume, rename or delete
it. `actor=None` means nobody is signed in: a personal machine without sign-in,
or the shell on the server, where everyone may do everything.
"""
import getpass
import os
from dataclasses import dataclass
from typing import Callable

from .errors import DigitsError

_owner_source: Callable[[], str | None] | None = None


@dataclass(frozen=True)
class Actor:
    """A signed-in person."""
    name: str
    admin: bool = False


class NotPermitted(DigitsError, PermissionError):
    pass


def set_owner_source(source: Callable[[], str | None] | None) -> None:
    """Where new jobs find their owner's name (the app's signed-in person); None when it has none."""
    global _owner_source
    _owner_source = source


def new_job_owner() -> str:
    signed_in = _owner_source() if _owner_source else None
    if signed_in:
        return signed_in
    try:
        return os.environ.get("DIGITS_USER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def may_change(owner: str | None, actor: Actor | None) -> bool:
    return actor is None or actor.admin or (owner is not None and owner == actor.name)


def check_may_change(owner: str | None, job_name: str, actor: Actor | None, verb: str) -> None:
    """Raise NotPermitted (a message for the person) unless `actor` may `verb` the job."""
    if not may_change(owner, actor):
        raise NotPermitted(f"Only {owner or 'its owner'} (the job's owner) or an admin can {verb} {job_name!r}. "
                           "Clone it to get a copy of your own.")
