"""Paths that forms accept on the server: absolute, existing, of the kind asked
for, readable, and inside the folders this server may read (DIGITS_DATA_ROOTS,
after resolving symlinks and `..`). Files the app saved from an upload, in a
`.upload-*` folder of the jobs directory, are the one exception (staged_upload)."""
import os
from pathlib import Path

from . import config

UPLOAD_STAGING_PREFIX = ".upload-"  # jobs_dir/.upload-*/: where pages save an upload for an engine command


def outside_roots(path: Path, what: str) -> str | None:
    """Why `path` may not be read (named `what` in the message), or None when a root holds it."""
    roots = config.data_roots()
    resolved = path.resolve()
    if any(resolved == r or r in resolved.parents for r in roots):
        return None
    allowed = ", ".join(map(str, roots))
    return (f"{what} is outside the folders this server may read ({allowed}); ask the admin to add it to "
            "DIGITS_DATA_ROOTS.")


def problem(raw: str, kind: str = "folder") -> str | None:
    """Why the server path `raw` cannot be read as a `kind` ("folder" or "file"), or None."""
    path = Path(str(raw).strip()).expanduser()
    if not path.is_absolute():
        return f"Give an absolute path on the server; {raw!r} is relative."
    if outside := outside_roots(path, raw):  # first: say nothing of what exists outside the roots
        return outside
    if not path.exists():
        return f"The {kind} {raw} does not exist on the server."
    if kind == "folder" and not path.is_dir():
        return f"{raw} is a file, not a folder."
    if kind == "file" and not path.is_file():
        return f"{raw} is a folder, not a file."
    if not os.access(path, os.R_OK):
        return f"{raw} cannot be read by the server (permissions)."
    return None


def staged_upload(path) -> bool:
    """True for a file a page saved from an upload: inside a `.upload-*` folder at the top of the jobs directory
    (after resolving symlinks and `..`). Such a file is read whatever DIGITS_DATA_ROOTS says."""
    try:
        inside = Path(path).resolve().relative_to(config.jobs_dir().resolve())
    except ValueError:
        return False
    return len(inside.parts) >= 2 and inside.parts[0].startswith(UPLOAD_STAGING_PREFIX)
