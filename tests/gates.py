"""A gate for the ``wait:`` failpoint: a stage blocks at a named point until the test opens the gate,
so a test does its part (start another run, kill a process, stop a service) at a known point
instead of racing a ``sleep:`` window."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.waiting import poll_until


class Gate:
    def __init__(self, path: Path) -> None:
        self.path = path

    def at(self, point: str) -> str:
        """The FEEDSYNC_FAILPOINTS value that holds stages at ``point`` behind this gate."""
        return f"{point}=wait:{self.path}"

    @property
    def hits(self) -> int:
        """How many times a stage has reached the gate so far (in any process)."""
        try:
            return len(self.path.with_name(self.path.name + ".reached").read_text().splitlines())
        except FileNotFoundError:
            return 0

    @property
    def reached(self) -> bool:
        return self.hits > 0

    def wait_reached(self, hits: int = 1, timeout_s: float = 60) -> None:
        poll_until(
            lambda: self.hits >= hits,
            timeout=timeout_s,
            interval=0.02,
            message=lambda: f"the gate {self.path.name} was reached {self.hits} times, not {hits}",
        )

    def open(self, through: int | None = None) -> None:
        """Let every hit through, or only the first ``through`` of them (counted across processes)."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("" if through is None else str(through))
        os.replace(tmp, self.path)


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Gate]:
    g = Gate(tmp_path / "gate")
    yield g
    g.open()  # never leave a worker thread blocked behind a failed test
