"""The home page over many jobs, and the cost of following a running job's progress.

1. Jobs directories of 10 and of 2,000 jobs, written as the engine writes them
   (JobStore.create, set_state, progress_log.append): 30% datasets, 70% models
   with a few epochs of metrics each, owners and groups mixed, most Done, some
   Error or Aborted, 1% Running (this process holds their locks, as a live
   worker would, so the scheduling pass that every page load runs leaves them
   Running). The home page (app/main.py: the scheduling pass, then pages/home.py)
   is rendered with AppTest, each time in a new session after one warm-up, and
   the median time of each size is printed.
2. A running job's progress.jsonl of N lines (N = 1,000 and 100,000) gets k new
   lines; `ProgressReader.read_new()` (kept from the previous poll) is timed
   against a full read of the file.

    python bench/ui_scale.py [--sizes 10 2000] [--runs 7] [--new-lines 10]

Prints `ratio 2000/10 jobs: X` (target: under 3) and
`ratio full/incremental read (100000 lines, 10 new): X`, with both timings of
each N (the incremental one should not grow with N).
"""
import argparse
import itertools
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from digits_engine import liveness, progress_log
from digits_engine.job_state import JobState
from digits_engine.job_store import JobStore
from digits_engine.job_summary import summarize

MAIN = str(Path(__file__).resolve().parent.parent / "app" / "main.py")
OWNERS = ("alice", "bob", "carol", "dan", "erin")
ENDINGS = [(JobState.DONE, None)] * 8 + [(JobState.ERROR, "Out of memory on the GPU."), (JobState.ABORTED, None)]


def metrics(epoch: int) -> list[dict]:
    """What a training worker appends for one epoch: a few train records, then the validation one."""
    out = [{"epoch": epoch - 1 + step / 4, "train/loss": 1.0 / (epoch + step), "train/accuracy": 0.5 + epoch / 20,
            "lr": 0.01, "time/images_per_second": 4000.0} for step in (1, 2, 3)]
    out.append({"epoch": epoch, "val/loss": 0.9 / epoch, "val/accuracy": 0.6 + epoch / 25,
                "time/epoch_seconds": 12.5})
    return out


def make_jobs(root: Path, count: int) -> list[int]:
    """`count` jobs under `root`; returns the lock fds held for the Running ones."""
    store, held = JobStore(root), []
    datasets: list[str] = []
    for i in range(count):
        os.environ["DIGITS_USER"] = OWNERS[i % len(OWNERS)]
        group = "" if i % 3 == 0 else f"experiment {i % 10}"
        kind = "dataset" if i % 10 < 3 or not datasets else "model"
        parents = [datasets[-1]] if kind == "model" else []
        job = store.create(kind, f"{kind} {i:05d}", {"epochs": 5}, parents=parents, group=group)
        running = i % 100 == 1
        job.set_state(JobState.WAITING)
        job.set_state(JobState.RUNNING, pid=os.getpid())
        epochs = 2 if running else 5
        if kind == "model":
            for epoch in range(1, epochs + 1):
                for record in metrics(epoch):
                    progress_log.append(job.progress_path, record)
        if running:
            held.append(liveness.acquire(job.lock_path))  # as its worker would: the job stays Running
            job.update_status(progress=0.4)
        else:
            state, error = ENDINGS[i % len(ENDINGS)]
            job.set_state(state, error=error)
        if kind == "dataset":
            datasets.append(job.id)
    return held


def render(root: Path) -> float:
    """Seconds to render the home page over `root` in a new session."""
    os.environ["DIGITS_JOBS_DIR"] = str(root)
    at = AppTest.from_file(MAIN, default_timeout=120)
    start = time.perf_counter()
    at.run()
    elapsed = time.perf_counter() - start
    if at.exception:
        sys.exit(f"the home page failed: {[e.value for e in at.exception]}")
    return elapsed


def summary_times(root: Path) -> str:
    jobs = JobStore(root).list()
    times = []
    for _ in range(2):
        start = time.perf_counter()
        [summarize(job, with_params=False) for job in jobs]
        times.append(time.perf_counter() - start)
    return f"summaries of {len(jobs)} jobs: first {times[0] * 1000:.1f} ms, again (unchanged) {times[1] * 1000:.1f} ms"


def bench_home(sizes: list[int], runs: int) -> None:
    """Renders alternate between the sizes, so that a change in the machine's load hits both alike."""
    with tempfile.TemporaryDirectory(prefix="digits-ui-scale-") as tmp:
        roots, held = {}, []
        for count in sizes:
            roots[count] = Path(tmp) / f"jobs{count}"
            start = time.perf_counter()
            held += make_jobs(roots[count], count)
            print(f"{count} jobs written in {time.perf_counter() - start:.1f} s", flush=True)
        time.sleep(0.2)  # older than file_memo's racy window: memoized like any settled job
        for count in sizes:
            print(summary_times(roots[count]))
            render(roots[count])  # warms imports and the memo
        times: dict[int, list[float]] = {count: [] for count in sizes}
        for _ in range(runs):
            for count in sizes:
                times[count].append(render(roots[count]))
        for fd in held:
            os.close(fd)
    for count in sizes:
        print(f"home page, {count} jobs: median {statistics.median(times[count]) * 1000:.0f} ms over {runs} renders "
              f"(min {min(times[count]) * 1000:.0f}, max {max(times[count]) * 1000:.0f})")
    small, large = sizes
    print(f"ratio {large}/{small} jobs: {statistics.median(times[large]) / statistics.median(times[small]):.2f}")


def bench_progress(new_lines: int, rounds: int = 7) -> None:
    incremental = {}
    for count in (1_000, 100_000):
        records = list(itertools.islice((r for epoch in itertools.count(1) for r in metrics(epoch)),
                                        count + rounds * new_lines))
        with tempfile.TemporaryDirectory(prefix="digits-progress-") as tmp:
            path = Path(tmp) / "progress.jsonl"
            path.write_text("".join(json.dumps(r) + "\n" for r in records[:count]))
            reader = progress_log.ProgressReader(path)
            reader.read_new()  # the poll before: everything so far is read
            full_times, new_times = [], []
            for n in range(rounds):
                for record in records[count + n * new_lines:count + (n + 1) * new_lines]:
                    progress_log.append(path, record)
                start = time.perf_counter()
                new = reader.read_new()
                new_times.append(time.perf_counter() - start)
                assert len(new) == new_lines
                start = time.perf_counter()
                progress_log.ProgressReader(path).read_all()
                full_times.append(time.perf_counter() - start)
            full, incremental[count] = statistics.median(full_times), statistics.median(new_times)
            print(f"progress read, {count} lines + {new_lines} new: full {full * 1000:.3f} ms, "
                  f"incremental {incremental[count] * 1000:.3f} ms")
            print(f"ratio full/incremental read ({count} lines, {new_lines} new): {full / incremental[count]:.0f}")
    print(f"ratio incremental read 100000/1000 lines: {incremental[100_000] / incremental[1_000]:.2f} "
          "(about 1: the cost of the new lines only)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[10, 2000])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--new-lines", type=int, default=10)
    args = parser.parse_args()
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").disabled = True  # AppTest noise
    os.environ.update(DIGITS_OFFLINE="1", DIGITS_GPUS="none")
    bench_home(args.sizes, args.runs)
    bench_progress(args.new_lines)


if __name__ == "__main__":
    main()
