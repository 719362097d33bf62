"""Schedules on the real broker: two schedulers at once fire each slot once, and the runs they
start complete on real worker processes."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from producers import feedgen, queries, scheduler
from producers.commands import apply_connections
from schemas.connections import load_connections_toml
from tests.conftest import sql
from tests.services import wait_run

pytestmark = pytest.mark.integration


def two_schedulers_at(at: datetime) -> list[list[int]]:
    """Two schedulers tick at the same database time, released together."""
    fired: list[list[int]] = []
    barrier = threading.Barrier(2)

    def one_scheduler() -> None:
        barrier.wait()
        fired.append(scheduler.tick(at=at))

    threads = [threading.Thread(target=one_scheduler) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return fired


def test_two_schedulers_fire_each_slot_once(settings: Any, rabbit_broker: Any, start: Any) -> None:
    slot0 = datetime.now(UTC) - timedelta(minutes=5)
    schedule = f'\n[connections.schedule]\nstart = "{slot0.isoformat()}"\nevery_days = 1\n'
    apply_connections(load_connections_toml(feedgen.DEMO_CONNECTIONS + schedule))
    sql("UPDATE sync.schedules SET armed_at = %s", (slot0 - timedelta(days=1),))
    start("worker", "--processes", "1", "--threads", "2")
    feedgen.generate_users(settings.drop_dir / "import/user/internal/people.csv", 100)

    for day in range(3):
        fired = two_schedulers_at(slot0 + timedelta(days=day, seconds=30))
        assert sorted(len(f) for f in fired) == [0, 1], fired
        wait_run(max(max(f, default=0) for f in fired))

    runs = queries.history()
    assert [(r["type"], r["status"]) for r in runs] == [("scheduled", "completed")] * 3
    assert runs[-1]["counts"]["created"] == 100  # the first slot imported the waiting file
    assert sql("SELECT count(*) FROM sync.runs")[0][0] == 3
