"""Is a job's worker alive? The worker holds an flock on jobs_dir/<id>/lock.

The kernel frees an flock on any exit (SIGKILL included), so a free lock on a
Running job means its worker died. Pids are never trusted: they are reused
and zombies still "exist".
"""
import fcntl
import os
from contextlib import contextmanager
from pathlib import Path


def lock_is_held(lock_path: Path) -> bool:
    """True while some process holds the lock. Never blocks."""
    try:
        fd = os.open(lock_path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def acquire(lock_path: Path) -> int:
    """Take the lock without blocking and return its fd (inheritable, to hand to the worker).

    Raises BlockingIOError if another process holds it.
    """
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextmanager
def exclusive(lock_path: Path):
    """Block until we hold the lock; release on exit (used for the scheduling pass)."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
