"""Executor.map with a bounded number of calls in flight, results in order.

`concurrent.futures.Executor.map` submits every call at once: for a dataset of
a million images that is a million pending work items in the parent, and every
result that finishes before the parent reads it waits in memory. Here at most
`limit` calls are submitted and not yet handed to the caller, so memory depends
on `limit`, not on how many calls there are.
"""
from collections import deque
from typing import Callable, Iterable, Iterator


def bounded_map(executor, fn: Callable, calls: Iterable[tuple], limit: int) -> Iterator:
    """fn(*args) for each args tuple in `calls`, run on `executor`, yielded in order.

    A new call is submitted only when the oldest result has been taken, so at
    most `limit` futures exist at any time. Closing the generator early (the
    caller stops reading) cancels the calls that have not started.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    calls = iter(calls)
    window: deque = deque()
    try:
        for args in calls:
            window.append(executor.submit(fn, *args))
            if len(window) >= limit:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()
    finally:
        for future in window:
            future.cancel()
