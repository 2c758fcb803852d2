"""LMDB databases of records: one writer at a time, many readers, one open
environment per path per process (lmdb refuses a second).

Keys are zero-padded sample indices ("%08d"), so a cursor walks samples in
insertion order and batched reads can ask for contiguous keys.
"""
import threading
from pathlib import Path

import lmdb

MAP_SIZE = 1 << 40  # 1 TiB: sparse on Linux, costs nothing until written

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
            env = lmdb.open(path, map_size=MAP_SIZE, readonly=not write, lock=True, subdir=True,
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
        if not self.pending:
            return
        with self.env.begin(write=True) as txn:
            for record in self.pending:
                txn.put(key(self.count), record)
                self.count += 1
        self.pending = []

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
