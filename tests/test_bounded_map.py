"""bounded_map: results in order, never more than `limit` calls in flight;
and the dataset ingest submits its chunks through it."""
import concurrent.futures as cf
import json
import threading
import time

import pytest

from conftest import make_images
from digits_engine import dataset_job, dataset_spec
from digits_engine.bounded_map import bounded_map
from digits_engine.job_store import JobStore
from digits_engine.stop_token import StopToken


class CountingExecutor:
    """Runs each call at once in the caller; counts the futures submitted and not yet handed back."""

    def __init__(self):
        self.live, self.most_live, self.submitted = 0, 0, 0

    def submit(self, fn, *args):
        self.submitted += 1
        self.live += 1
        self.most_live = max(self.most_live, self.live)
        future = cf.Future()
        future.set_result(fn(*args))
        return _Tracked(future, self)


class _Tracked:
    def __init__(self, future, owner):
        self.future, self.owner = future, owner

    def result(self):
        self.owner.live -= 1
        return self.future.result()

    def cancel(self):
        self.owner.live -= 1
        return False


@pytest.mark.parametrize("limit", [1, 2, 5])
def test_never_more_than_limit_in_flight_and_in_order(limit):
    executor = CountingExecutor()
    results = list(bounded_map(executor, lambda x, y: x * y, ((i, 10) for i in range(23)), limit))
    assert results == [i * 10 for i in range(23)]
    assert executor.most_live == limit
    assert executor.submitted == 23


def test_submits_lazily_as_results_are_taken():
    executor = CountingExecutor()
    results = bounded_map(executor, lambda x: x, ((i,) for i in range(1000)), 4)
    assert next(results) == 0
    assert executor.submitted == 4  # not all 1000 up front, as Executor.map does
    assert next(results) == 1
    assert executor.submitted == 5


def test_closing_early_cancels_what_is_left():
    executor = CountingExecutor()
    results = bounded_map(executor, lambda x: x, ((i,) for i in range(100)), 3)
    assert [next(results), next(results)] == [0, 1]
    results.close()
    assert executor.live == 0 and executor.submitted == 4


def test_with_real_threads_the_slow_first_call_keeps_the_order():
    started = []
    lock = threading.Lock()

    def work(i):
        with lock:
            started.append(i)
        time.sleep(0.05 if i == 0 else 0.001)
        return i

    with cf.ThreadPoolExecutor(4) as executor:
        results = bounded_map(executor, work, ((i,) for i in range(20)), 3)
        assert next(results) == 0
        assert len(started) <= 3  # the others wait for the slow first result to be taken
        assert list(results) == list(range(1, 20))


def test_limit_must_be_positive():
    with pytest.raises(ValueError, match="limit must be at least 1"):
        list(bounded_map(CountingExecutor(), print, [], 0))


class LiveCountingPool:
    """A thread pool that records the most futures it had out at once (submitted, result not yet taken)."""

    def __init__(self, workers: int):
        self.pool = cf.ThreadPoolExecutor(workers)
        self.lock = threading.Lock()
        self.live = self.most_live = self.submitted = 0

    def submit(self, fn, *args):
        with self.lock:
            self.submitted += 1
            self.live += 1
            self.most_live = max(self.most_live, self.live)
        future = self.pool.submit(fn, *args)
        original = future.result

        def result(timeout=None):
            value = original(timeout)
            with self.lock:
                self.live -= 1
            return value
        future.result = result
        return future

    def shutdown(self, cancel_futures=False):
        self.pool.shutdown(cancel_futures=cancel_futures)


def test_dataset_ingest_keeps_the_chunks_in_flight_bounded(tmp_path, monkeypatch):
    folder = make_images(tmp_path / "images", per_class=20)  # 60 images: 30 chunks of 2
    pool = LiveCountingPool(2)
    monkeypatch.setattr(dataset_job, "CHUNK", 2)
    monkeypatch.setattr(dataset_job, "_executor", lambda total: pool)
    monkeypatch.setattr(dataset_job, "_in_flight_limit", lambda: 3)
    params = dataset_spec.check({"name": "bounded", "folder": str(folder), "width": 8, "height": 8, "seed": 1})
    params.pop("name"), params.pop("group", None)
    job = JobStore(tmp_path / "jobs").create("dataset", "bounded", params)

    dataset_job.run(job, StopToken())

    stats = json.loads((job.dir / "stats.json").read_text())
    assert sum(stats["totals"].values()) == 60 and not stats["skipped_files"]
    assert pool.submitted == sum(-(-n // 2) for n in stats["totals"].values())  # 23 train + 8 val chunks
    assert pool.most_live == 3  # the window was full, never more
