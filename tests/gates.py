"""A gate for the ``wait:`` failpoint: a stage blocks at a named point until the test opens the gate,
so a test does its part (start another run, kill a process, stop a service) at a known point
instead of racing a ``sleep:`` window."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest


class Gate:
    def __init__(self, path: Path) -> None:
        self.path = path

    def at(self, point: str) -> str:
        """The FEEDSYNC_FAILPOINTS value that holds stages at ``point`` behind this gate."""
        return f"{point}=wait:{self.path}"

    @property
    def reached(self) -> bool:
        return self.path.with_name(self.path.name + ".reached").exists()

    def wait_reached(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.reached:
            if time.monotonic() > deadline:
                raise AssertionError(f"no stage reached the gate {self.path.name} within {timeout_s} s")
            time.sleep(0.02)

    def open(self) -> None:
        self.path.touch()


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Gate]:
    g = Gate(tmp_path / "gate")
    yield g
    g.open()  # never leave a worker thread blocked behind a failed test
