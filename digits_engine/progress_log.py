"""progress.jsonl: append-only metrics, one JSON object a line.

Writers append whole lines; readers keep a byte offset and read only what is
new. A torn last line (a writer mid-append, or one killed there) is left for
the next read, never fatal.
"""
import json
import os
from pathlib import Path


def append(path: Path, record: dict) -> None:
    line = json.dumps(record, allow_nan=False, default=float) + "\n"
    with open(path, "a") as f:
        f.write(line)


class ProgressReader:
    """Incremental reader: `read_new()` returns the records added since the last call."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.offset = 0
        self.records: list[dict] = []

    def read_new(self) -> list[dict]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except FileNotFoundError:
            return []
        end = chunk.rfind(b"\n") + 1  # only whole lines; a torn tail waits
        new = [r for r in (_parse(line) for line in chunk[:end].splitlines()) if r is not None]
        self.offset += end
        self.records.extend(new)
        return new

    def read_all(self) -> list[dict]:
        self.read_new()
        return self.records


def _parse(line: bytes):
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def last_values(records: list[dict]) -> dict:
    """Each metric's last value, e.g. {"val/accuracy": 0.93, "lr": 0.01, "epoch": 5}."""
    out: dict = {}
    for record in records:
        out.update(record)
    return out



def keep_until(path: Path, epoch: float) -> None:
    """Drop the records after `epoch` (a resumed job redoes them), atomically."""
    kept = [r for r in ProgressReader(path).read_all() if r.get("epoch", 0) <= epoch]
    tmp = Path(path).with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))
    os.replace(tmp, path)
