"""Uploaded archives of class folders: each is extracted safely (archive_extract)
into its own folder, jobs_dir/uploads/<id>/files/, which the dataset built
from it reads like a server folder. The folder belongs to no job, so a clone
of the dataset reads it again; the archive itself is not kept.
"""
import shutil
import uuid
from pathlib import Path

from . import config
from .archive_extract import ArchiveError, extract
from .folder_parse import is_visible_dir

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
COPY_CHUNK = 1 << 20


def uploads_dir() -> Path:
    return config.jobs_dir() / "uploads"


def is_upload_folder(folder) -> bool:
    """True for a folder that an earlier upload extracted (and that still exists)."""
    path = Path(folder).resolve()
    return path.is_dir() and uploads_dir().resolve() in path.parents


def home_of(folder) -> Path | None:
    """The uploads/<id> folder that holds `folder`, or None when `folder` is not an upload's."""
    root = uploads_dir().resolve()
    path = Path(folder).resolve()
    return root / path.relative_to(root).parts[0] if root in path.parents else None


def release(folder, datasets) -> None:
    """Remove the upload that holds `folder` once none of `datasets` (those left) reads it."""
    home = home_of(folder)
    if home is not None and not any(home_of(d.params["folder"]) == home for d in datasets
                                    if d.params.get("source") == "upload" and d.params.get("folder")):
        shutil.rmtree(home, ignore_errors=True)


def over_upload_limit(size: int, what: str) -> str | None:
    """Why an upload of `size` bytes (`what`: its name) is refused: over DIGITS_UPLOAD_MAX_MB; or None.
    The engine's check on every upload; the pages' file uploaders stop bigger files earlier."""
    limit = config.upload_max_mb()
    if size <= limit * 2 ** 20:
        return None
    return f"{what} ({size / 2 ** 20:,.1f} MB) is larger than the upload limit of {limit:,} MB (DIGITS_UPLOAD_MAX_MB)."


def check_name(name: str) -> str | None:
    """Why a file of this name is not taken as an archive, or None."""
    if not name.lower().endswith(ARCHIVE_SUFFIXES):
        return (f"{name} is not a .zip, .tar, .tar.gz or .tgz archive; upload the class folders packed in one "
                "of these.")
    return None


def unpack(source, name: str, max_bytes: int | None = None) -> Path:
    """Extract an archive, a path or a binary file object (an upload) named `name`, into a new folder under
    uploads_dir(); return the folder of class folders in it. A file object larger than `max_bytes` is refused.
    Raises ArchiveError (nothing left behind) when the archive is refused or holds no class folders."""
    home = uploads_dir() / uuid.uuid4().hex
    home.mkdir(parents=True)
    try:
        archive = Path(source) if isinstance(source, (str, Path)) else _save(source, home / "upload", name, max_bytes)
        files = extract(archive, home / "files", config.extract_max_mb() * 2 ** 20, config.extract_max_files())
        (home / "upload").unlink(missing_ok=True)
        return class_root(files, name)
    except BaseException:
        shutil.rmtree(home, ignore_errors=True)
        raise


def _save(stream, target: Path, name: str, max_bytes: int | None) -> Path:
    written = 0
    if hasattr(stream, "seek"):
        stream.seek(0)  # an upload the page has already looked at
    with open(target, "wb") as out:
        while chunk := stream.read(COPY_CHUNK):
            written += len(chunk)
            if max_bytes is not None and written > max_bytes:
                raise ArchiveError(f"{name} is larger than the upload limit of {max_bytes / 2 ** 20:,.0f} MB.")
            out.write(chunk)
    return target


def class_root(folder: Path, name: str) -> Path:
    """The folder holding the class folders: `folder` itself, or the single top folder that an archive of
    `data/<class>/...` has (followed down while a level holds only one folder)."""
    root = folder
    while True:
        dirs = [d for d in root.iterdir() if d.is_dir() and is_visible_dir(d.name)]
        files = [f for f in root.iterdir() if f.is_file() and not f.name.startswith(".")]
        if len(dirs) != 1 or files or not any(d.is_dir() for d in dirs[0].iterdir()):
            break
        root = dirs[0]
    if len([d for d in root.iterdir() if d.is_dir() and is_visible_dir(d.name)]) < 2:
        raise ArchiveError(f"{name} holds no class folders: pack one folder per class with its images inside, "
                           "e.g. cat/001.jpg and dog/001.jpg (at least two classes), optionally in one top folder.")
    return root
