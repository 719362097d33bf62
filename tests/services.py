"""Fixtures for the tiers on the real services: feedsync processes started as ops would start
them, and in-process producers publishing through RabbitMQ. Imported by the integration and e2e
conftests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dramatiq
import dramatiq.broker
import pytest

from tests.conftest import RABBIT_URL, sql
from tests.waiting import poll_until


class Proc:
    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self.log = open(log_path, "wb")  # noqa: SIM115  (closed in stop())
        self.proc = subprocess.Popen(argv, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_for(self, text: str, timeout_s: float = 30) -> None:

        def seen() -> bool:
            if text in self.output():
                return True
            if self.proc.poll() is not None:
                raise AssertionError(f"process exited {self.proc.returncode}:\n{self.output()[-3000:]}")
            return False

        poll_until(
            seen, timeout=timeout_s, interval=0.1, message=lambda: f"{text!r} not seen:\n{self.output()[-3000:]}"
        )

    def stop(self, timeout_s: float = 60) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


@pytest.fixture
def start(rabbit_env: dict[str, str], tmp_path: Any) -> Iterator[Any]:
    """start('worker', '--processes', '2') runs `feedsync ...` and stops it after the test."""
    procs: list[Proc] = []

    def _start(*args: str, env: dict[str, str] | None = None) -> Proc:
        p = Proc(
            [sys.executable, "-m", "producers.cli", *args], env or rabbit_env, tmp_path / f"{args[0]}-{len(procs)}.log"
        )
        procs.append(p)
        return p

    yield _start
    for p in procs:
        p.stop()


@pytest.fixture
def rabbit_broker(rabbit_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[dramatiq.Broker]:
    """In-process producers publish through RabbitMQ (the test vhost) instead of the stub."""
    from schemas.settings import get_settings
    from workers.broker import build_broker

    monkeypatch.setenv("FEEDSYNC_BROKER_URL", RABBIT_URL)
    get_settings.cache_clear()
    previous = dramatiq.broker.global_broker
    broker = build_broker(get_settings())
    dramatiq.set_broker(broker)
    try:
        yield broker
    finally:
        broker.close()
        if previous is not None:
            dramatiq.set_broker(previous)
        monkeypatch.setenv("FEEDSYNC_BROKER_URL", "stub://")
        get_settings.cache_clear()


def wait_run(run_id: int | None = None, timeout_s: float = 120) -> dict[str, Any]:
    """Poll the history until the run (or the newest run) has finished."""
    from producers import queries

    def runs_now() -> list[tuple[Any, ...]]:
        return sql("SELECT id, status FROM sync.runs")

    def finished() -> dict[str, Any] | None:
        runs = queries.history(limit=20)
        run = next((r for r in runs if run_id is None or r["run_id"] == run_id), None)
        return run if run and run["status"] not in ("queued", "in_progress") else None

    return poll_until(
        finished,
        timeout=timeout_s,
        interval=0.2,
        message=lambda: f"run {run_id} did not finish: {runs_now()}",
    )
