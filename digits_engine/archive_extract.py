"""Extract a .zip or .tar archive (.tar.gz/.tgz, .tar.bz2, .tar.xz too) that a
person uploaded, refusing anything that could harm the server.

Refused, with a message that names the entry: a path that escapes the
destination (`../`, an absolute path, a drive letter), a symbolic or hard
link, a device file or FIFO, more entries than allowed, and more bytes than
allowed, both as the archive declares them (checked before writing) and as
they are actually written (counted while extracting, in case a header lies).
Extraction goes into a hidden sibling folder that is renamed to the
destination only when everything is out, and removed on any failure: a
refused archive leaves nothing behind. File modes and owners are not
restored; every file is written plain.
"""
import lzma
import re
import shutil
import stat
import tarfile
import uuid
import zipfile
import zlib
from pathlib import Path

from .errors import DigitsError

CHUNK = 1 << 20
DRIVE = re.compile(r'^[A-Za-z]:/')  # a Windows absolute path, once backslashes are slashes
READ_ERRORS = (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, lzma.LZMAError,
               NotImplementedError, RuntimeError, OSError)


class ArchiveError(DigitsError, ValueError):
    """The archive cannot be extracted safely, or is not an archive; the message says why."""


class Budget:
    """What an archive may hold: entries, and bytes declared and written."""

    def __init__(self, max_total_bytes: int, max_entries: int):
        self.max_bytes, self.max_entries = max_total_bytes, max_entries
        self.declared = self.written = self.entries = 0

    def add_entry(self, name: str, declared_size: int) -> None:
        self.entries += 1
        self.declared += declared_size
        if self.entries > self.max_entries:
            raise ArchiveError(f'The archive holds more than {self.max_entries:,} files and folders, the limit; '
                               'split it into smaller archives or ask the admin to raise the limit.')
        if self.declared > self.max_bytes:
            raise ArchiveError(f'The archive would extract to more than {_size(self.max_bytes)} (the limit) '
                               f'by the entry {name!r}: it looks like a zip bomb, or it is too big for this '
                               'server; split it or ask the admin to raise the limit.')

    def add_written(self, name: str, count: int) -> None:
        self.written += count
        if self.written > self.max_bytes:
            raise ArchiveError(f'The archive grew past {_size(self.max_bytes)} (the limit) while extracting '
                               f'{name!r}, more than its headers declare: it looks like a zip bomb.')


def extract(archive_path, dest, max_total_bytes: int, max_entries: int) -> Path:
    """Extract the archive at `archive_path` into the folder `dest` (which must
    not exist or be empty); return `dest`. Raises ArchiveError, leaving no
    partial extraction, when the archive is refused or damaged."""
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ArchiveError(f'{dest} already holds files; extract into a new folder.')
    partial = dest.parent / f'.{dest.name}.partial-{uuid.uuid4().hex[:8]}'
    partial.mkdir(parents=True)
    try:
        _extract_into(Path(archive_path), partial, Budget(max_total_bytes, max_entries))
        if dest.exists():
            dest.rmdir()
        partial.rename(dest)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return dest


def _extract_into(archive: Path, dest: Path, budget: Budget) -> None:
    try:
        with open(archive, 'rb') as stream:
            magic = stream.read(4)
        if magic[:2] == b'PK':
            with zipfile.ZipFile(archive) as zf:
                _extract_zip(zf, dest, budget)
            return
        with tarfile.open(archive, 'r:*') as tf:
            _extract_tar(tf, dest, budget)
    except ArchiveError:
        raise
    except tarfile.ReadError:
        raise ArchiveError(f'{archive.name} is not a .zip, .tar, .tar.gz or .tgz archive (or it is damaged).') from None
    except READ_ERRORS as exc:
        raise ArchiveError(f'{archive.name} could not be extracted: {_reason(exc)}.') from None


def _extract_zip(zf: zipfile.ZipFile, dest: Path, budget: Budget) -> None:
    infos = zf.infolist()
    for info in infos:  # every entry is checked before anything is written
        _check_zip_type(info)
        _target(dest, info.filename)
        budget.add_entry(info.filename, info.file_size)
    for info in infos:
        target = _target(dest, info.filename)
        if target is None:
            continue
        if info.is_dir() or info.filename.endswith('\\'):  # a folder entry (Windows tools may write '\\')
            target.mkdir(parents=True, exist_ok=True)
            continue
        with zf.open(info) as source:
            _write(source, target, info.filename, budget)


def _check_zip_type(info: zipfile.ZipInfo) -> None:
    kind = stat.S_IFMT(info.external_attr >> 16) if info.create_system == 3 else 0  # 3: made on Unix
    if stat.S_ISLNK(kind):
        raise ArchiveError(f'The entry {info.filename!r} is a symbolic link; links are not allowed in an upload.')
    if kind and not (stat.S_ISREG(kind) or stat.S_ISDIR(kind)):
        raise ArchiveError(f'The entry {info.filename!r} is a device or special file; only files and folders '
                           'are allowed in an upload.')


def _extract_tar(tf: tarfile.TarFile, dest: Path, budget: Budget) -> None:
    for member in tf:  # read lazily: a bomb is refused at its header, before its data is inflated
        _check_tar_type(member)
        target = _target(dest, member.name)
        budget.add_entry(member.name, member.size if member.isreg() else 0)
        if target is None:
            continue
        if member.isdir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        with tf.extractfile(member) as source:
            _write(source, target, member.name, budget)


def _check_tar_type(member: tarfile.TarInfo) -> None:
    if member.issym() or member.islnk():
        kind = 'symbolic' if member.issym() else 'hard'
        raise ArchiveError(f'The entry {member.name!r} is a {kind} link (to {member.linkname!r}); links are not '
                           'allowed in an upload.')
    if not (member.isreg() or member.isdir()):
        raise ArchiveError(f'The entry {member.name!r} is a device or special file; only files and folders are '
                           'allowed in an upload.')


def _target(dest: Path, name: str) -> Path | None:
    """Where entry `name` goes inside `dest`, or None for an entry that names `dest` itself ("./")."""
    clean = name.replace('\\', '/')
    if clean.startswith('/') or DRIVE.match(clean):
        raise ArchiveError(f'The entry {name!r} has an absolute path; an upload may only hold relative paths.')
    parts = [p for p in clean.split('/') if p not in ('', '.')]
    if '..' in parts:
        raise ArchiveError(f'The entry {name!r} points outside the archive\'s folder (".."); it is refused.')
    if any('\0' in p for p in parts):
        raise ArchiveError(f'The entry {name!r} has a NUL character in its name.')
    return dest.joinpath(*parts) if parts else None


def _write(source, target: Path, name: str, budget: Budget) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, 'wb') as out:
        while chunk := source.read(CHUNK):
            budget.add_written(name, len(chunk))
            out.write(chunk)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RuntimeError) and ('encrypted' in str(exc).lower() or 'password' in str(exc).lower()):
        return 'it is password-protected; upload an archive without a password'
    if isinstance(exc, OSError) and exc.strerror:
        return f'{exc.strerror} ({exc.filename})' if exc.filename else exc.strerror
    return str(exc) or type(exc).__name__


def _size(count: int) -> str:
    return f'{count / 2 ** 20:,.0f} MB' if count >= 2 ** 20 else f'{count:,} bytes'
