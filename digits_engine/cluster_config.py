"""TF_CONFIG, the cluster spec each worker of a multi-worker job is started with, read
and checked before TensorFlow sees it (TensorFlow's own errors, or a hang, are worse):

    {"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}

Worker 0 is the chief: it records the job's state, metrics and snapshots.
"""
import json
import os
from dataclasses import dataclass

from .device_choice import DOCS
from .errors import DigitsError

EXAMPLE = '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'


@dataclass(frozen=True)
class ClusterTask:
    workers: tuple[str, ...]  # host:port of every worker, in index order
    index: int  # this process's

    @property
    def is_chief(self) -> bool:
        return self.index == 0


def read(workers_expected: int, environ=None) -> ClusterTask:
    """This process's place in the cluster, from TF_CONFIG; DigitsError saying what is wrong."""
    raw = (os.environ if environ is None else environ).get("TF_CONFIG", "")
    if not raw.strip():
        raise DigitsError(f"TF_CONFIG is not set. Each worker needs the cluster spec and its own index, e.g. "
                          f"TF_CONFIG='{EXAMPLE}' (see {DOCS}).")
    try:
        spec = json.loads(raw)
    except ValueError as exc:
        raise DigitsError(f"TF_CONFIG is not valid JSON ({exc}); it should look like {EXAMPLE}") from None
    workers = _workers(spec)
    index = _index(spec, workers)
    if len(workers) != workers_expected:
        raise DigitsError(f"TF_CONFIG lists {len(workers)} worker(s) but the job was created for {workers_expected} "
                          f"(--workers {workers_expected}): list every worker's host:port in cluster.worker, in the "
                          "same order on every machine, or create the job with the right number of workers.")
    return ClusterTask(tuple(workers), index)


def _workers(spec) -> list[str]:
    cluster = spec.get("cluster") if isinstance(spec, dict) else None
    workers = cluster.get("worker") if isinstance(cluster, dict) else None
    if not isinstance(workers, list) or not workers:
        raise DigitsError(f"TF_CONFIG has no cluster.worker list of host:port addresses; it should look like {EXAMPLE}")
    if isinstance(cluster, dict) and set(cluster) - {"worker"}:
        raise DigitsError(f"TF_CONFIG's cluster may only list workers (worker 0 is the chief), not "
                          f"{', '.join(sorted(set(cluster) - {'worker'}))}.")
    bad = [w for w in workers if not isinstance(w, str) or not _is_host_port(w)]
    if bad:
        raise DigitsError(f"TF_CONFIG's cluster.worker entries must be \"host:port\", not {bad[0]!r}.")
    if len(set(workers)) != len(workers):
        raise DigitsError("TF_CONFIG's cluster.worker lists the same host:port twice; each worker needs its own.")
    return workers


def _is_host_port(text: str) -> bool:
    host, _, port = text.rpartition(":")
    return bool(host) and port.isdigit() and 0 < int(port) < 65536


def _index(spec: dict, workers: list[str]) -> int:
    task = spec.get("task")
    if not isinstance(task, dict) or task.get("type") != "worker":
        raise DigitsError('TF_CONFIG needs "task": {"type": "worker", "index": N}, N being this machine\'s place '
                          "in cluster.worker (0 for the chief).")
    index = task.get("index")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(workers):
        raise DigitsError(f"TF_CONFIG's task index {index!r} is out of range: the cluster lists {len(workers)} "
                          f"workers, so the index must be 0 to {len(workers) - 1}.")
    return index
