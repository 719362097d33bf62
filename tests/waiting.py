"""The one way the tests wait: poll a condition until it holds or a deadline passes.

Work happens in other threads and processes (workers, the watcher, a server starting), so a test
asks again rather than sleeping a fixed time: a fast machine does not wait longer than it must, and
a slow one gets the whole deadline before the test fails, saying what it waited for."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def poll_until(
    condition: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.05,
    message: str | Callable[[], str] = "the condition did not hold",
) -> T:
    """Call ``condition`` until it returns something truthy and return that.

    After ``timeout`` seconds an AssertionError says ``message`` (a callable is asked only then, so it
    can describe the state at the deadline, e.g. the last lines of a process's output). The condition
    is checked once more at the deadline, so a wait never fails on a value it did not look at."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            what = message() if callable(message) else message
            raise AssertionError(f"{what} (waited {timeout:g}s)")
        time.sleep(interval)
