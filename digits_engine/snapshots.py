"""A model job's snapshots: snapshots/epoch_<n>.keras each epoch, aborted.keras if stopped mid-epoch."""
import re
from pathlib import Path

from .job_store import Job

_EPOCH = re.compile(r"epoch_(\d+)\.keras$")


def list_snapshots(job: Job) -> list[tuple[int, Path]]:
    """(epoch, path) for every whole-epoch snapshot, oldest first."""
    found = [(int(m.group(1)), p) for p in (job.dir / "snapshots").glob("epoch_*.keras") if (m := _EPOCH.search(p.name))]
    return sorted(found)


def latest(job: Job) -> Path | None:
    """The most recent weights: the interrupted epoch's if the job was aborted, else the last epoch's."""
    aborted = job.dir / "snapshots" / "aborted.keras"
    snaps = list_snapshots(job)
    candidates = ([aborted] if aborted.exists() else []) + ([snaps[-1][1]] if snaps else [])
    return max(candidates, key=lambda p: p.stat().st_mtime) if candidates else None


def for_epoch(job: Job, epoch: int | None) -> Path | None:
    if epoch is None:
        return latest(job)
    return dict(list_snapshots(job)).get(epoch)
