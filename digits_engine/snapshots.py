"""A model job's snapshots: snapshots/epoch_<n>.keras at its snapshot interval
(epoch_2.keras after epoch 2, epoch_2.5.keras halfway through epoch 3 when the
interval is a fraction), and aborted.keras if it was stopped mid-way."""
import re
from pathlib import Path

from .job_store import Job

_EPOCH = re.compile(r"^epoch_(\d+(?:\.\d+)?)\.keras$")


def _number(text: str) -> int | float:
    value = float(text)
    return int(value) if value == int(value) else value


def file_name(epoch: int | float) -> str:
    """epoch_2.keras, epoch_2.5.keras: the name of the snapshot taken after `epoch` (real) epochs."""
    value = _number(str(epoch))
    return f"epoch_{value}.keras"


def path_for(job: Job, epoch: int | float) -> Path:
    return job.dir / "snapshots" / file_name(epoch)


def list_snapshots(job: Job) -> list[tuple[int | float, Path]]:
    """(epoch, path) for every epoch snapshot, oldest first; the epoch is an int when whole (2), else 2.5."""
    found = [(_number(m.group(1)), p) for p in (job.dir / "snapshots").glob("epoch_*.keras")
             if (m := _EPOCH.match(p.name))]
    return sorted(found, key=lambda item: item[0])


def latest(job: Job) -> Path | None:
    """The most recent weights: the interrupted epoch's if the job was aborted, else the last snapshot."""
    aborted = job.dir / "snapshots" / "aborted.keras"
    snaps = list_snapshots(job)
    candidates = ([aborted] if aborted.exists() else []) + ([snaps[-1][1]] if snaps else [])
    return max(candidates, key=lambda p: p.stat().st_mtime) if candidates else None


def for_epoch(job: Job, epoch: int | float | None) -> Path | None:
    """The snapshot taken after `epoch` (2 and 2.0 are the same), the latest for None, or None if there is none."""
    if epoch is None:
        return latest(job)
    return dict(list_snapshots(job)).get(_number(str(epoch)))
