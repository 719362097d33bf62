"""The stub-broker pipeline fixture (unit and conformance tiers): the whole pipeline on
Dramatiq's StubBroker with an in-process Worker, against
the real PostgreSQL (the database is ours; we do not mock it)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker

from producers import registry
from producers.commands import apply_connections
from schemas.connections import load_connections_toml
from schemas.settings import Settings
from tests.waiting import poll_until

USERS_TOML = """
[[connections]]
name = "hr-users"
kind = "users"
path = "import/user/internal/*.csv"

[connections.mapping]
email = "Email"
first_name = "First Name"
last_name = "Last Name"
manager = "Manager Email"
department = "Department"
nickname = "DontImportFromSource"
"""

HEADER = "Email,First Name,Last Name,Manager Email,Department\n"


class Pipeline:
    def __init__(self, broker: StubBroker, settings: Settings) -> None:
        self.broker = broker
        self.settings = settings

    def drain(self, timeout_s: float = 60, *, expect_failures: bool = False) -> None:
        """Join every queue until a whole pass finds nothing left (stages enqueue each other).

        An actor that fails raises its own exception here, so a bug shows its traceback rather than
        a run "dead-lettered after 5 attempts"; tests of failure handling pass expect_failures."""

        def one_pass_found_nothing() -> bool:
            for name in list(self.broker.queues):
                if not name.endswith((".DQ", ".XQ")):
                    self.broker.join(name, timeout=int(timeout_s * 1000), fail_fast=not expect_failures)
            return all(q.unfinished_tasks == 0 for q in self.broker.queues.values())

        # No pause between passes: join() itself blocks until the queue is empty.
        poll_until(one_pass_found_nothing, timeout=timeout_s, interval=0, message="pipeline did not drain")

    def drop(self, rel: str, content: str | bytes) -> Path:
        path = self.settings.drop_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path

    def sync(self, connection: str, since: date | None = None) -> dict[str, Any]:
        """What an admin does: take what is in the drop dir (without triggering a run), sync the
        connection on demand, and read the run back."""
        from producers import queries
        from producers.commands import start_sync

        registry.scan(self.settings, announce=False)
        run_id = start_sync(self.settings, connection, since=since)
        self.drain()
        run = queries.run_detail(run_id)
        assert run is not None
        return run

    def import_files(self, *files: tuple[str, str | bytes], expect_failures: bool = False) -> int:
        """Drop files, take them as the watcher would, run the pipeline; returns the newest run id
        (0 when no run started, e.g. for a disabled connection)."""
        for rel, content in files:
            self.drop(rel, content)
        registry.scan(self.settings)
        self.drain(expect_failures=expect_failures)
        from tests.conftest import sql

        return int(sql("SELECT coalesce(max(id), 0) FROM sync.runs")[0][0])


@pytest.fixture
def pipeline(settings: Any) -> Iterator[Pipeline]:
    import workers.actors

    broker = workers.actors.broker
    assert isinstance(broker, StubBroker), "the pytest process is the stub-broker tier (FEEDSYNC_BROKER_URL=stub://)"
    broker.flush_all()
    apply_connections(load_connections_toml(USERS_TOML))
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=20)
    worker.start()
    try:
        yield Pipeline(broker, settings)
    finally:
        worker.stop()
        broker.flush_all()
