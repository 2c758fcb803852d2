"""LMDB databases of records: one writer at a time, many readers, one open
environment per path per process (lmdb refuses a second).

Keys are zero-padded sample indices ("%08d"), so a cursor walks samples in
insertion order and batched reads can ask for contiguous keys. A database
may grow to DIGITS_LMDB_MAP_MB; past it, or on a full disk, writing raises
SpaceFull, a message for a person.
"""
import errno
import threading
from pathlib import Path

import lmdb

from . import config
from .errors import DatasetError

NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # disk full, quota reached, file size limit


class SpaceFull(DatasetError):
    """The disk, or a database's map (DIGITS_LMDB_MAP_MB), is full."""

    def __init__(self, what: str, reason: str):
        super().__init__(f"The disk (or the dataset's space) is full while writing {what} ({reason}). "
                         "Nothing of it was kept: free space on the jobs directory's disk (or raise "
                         "DIGITS_LMDB_MAP_MB), then clone the job.")


def space_full(exc: BaseException, what: str) -> SpaceFull | None:
    """`exc` as SpaceFull when it says the disk or the map is full, else None."""
    if isinstance(exc, SpaceFull):
        return exc
    if isinstance(exc, lmdb.MapFullError):
        return SpaceFull(what, f"the database reached DIGITS_LMDB_MAP_MB={config.lmdb_map_mb()} MB")
    if isinstance(exc, lmdb.DiskError) or (isinstance(exc, OSError) and exc.errno in NO_SPACE):
        return SpaceFull(what, str(exc))
    return None

_envs: dict[str, lmdb.Environment] = {}
_envs_lock = threading.Lock()


def key(index: int) -> bytes:
    return b"%08d" % index


def open_env(path: Path, write: bool = False) -> lmdb.Environment:
    """The process-wide environment for `path`, opened once."""
    path = str(Path(path).resolve())
    with _envs_lock:
        env = _envs.get(path)
        if env is None:
            env = lmdb.open(path, map_size=config.lmdb_map_mb() << 20, readonly=not write, lock=True, subdir=True,
                            create=write, max_readers=256, readahead=False)
            _envs[path] = env
        return env


def close_env(path: Path) -> None:
    """Close the environment (before deleting its files)."""
    with _envs_lock:
        env = _envs.pop(str(Path(path).resolve()), None)
    if env is not None:
        env.close()


class Writer:
    """Appends records in transactions of `batch` records."""

    def __init__(self, path: Path, batch: int = 256):
        Path(path).mkdir(parents=True, exist_ok=True)
        self.path = path
        self.env = open_env(path, write=True)
        self.batch = batch
        self.pending: list[bytes] = []
        self.count = 0

    def append(self, record: bytes) -> None:
        self.pending.append(record)
        if len(self.pending) >= self.batch:
            self.flush()

    def flush(self) -> None:
        records, self.pending = self.pending, []  # dropped if the write fails: close() must not retry it
        if not records:
            return
        try:
            with self.env.begin(write=True) as txn:
                for i, record in enumerate(records):
                    txn.put(key(self.count + i), record)
        except (lmdb.Error, OSError) as exc:
            if (full := space_full(exc, f"the {Path(self.path).name} database in {Path(self.path).parent}")) is None:
                raise
            raise full from exc
        self.count += len(records)

    def close(self) -> None:
        self.flush()
        self.env.sync()
        close_env(self.path)


def count(path: Path) -> int:
    return open_env(path).stat()["entries"]


def read_range(path: Path, start: int, stop: int) -> list[bytes]:
    """Records start..stop-1, in one short read transaction."""
    env = open_env(path)
    with env.begin(buffers=False) as txn:
        return [txn.get(key(i)) for i in range(start, stop)]


def read_indices(path: Path, indices) -> list[bytes]:
    env = open_env(path)
    with env.begin() as txn:
        return [txn.get(key(int(i))) for i in indices]
