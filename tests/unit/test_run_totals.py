"""sync.run_totals (schemas/sql/045_run_totals.sql), what feedsync_runs_total and feedsync_rows_total
read: kept as runs finish, and only ever going up, as Prometheus counters must."""

from __future__ import annotations

from typing import Any

from producers import feedgen
from producers.commands import apply_connections
from schemas.connections import load_connections_toml
from schemas.states import FINISHED_RUN_STATUSES, RunStatus
from tests.conftest import sql
from workers.metrics import DatabaseCollector


def _run(status: str, counts: str = "{}") -> int:
    return int(
        sql(
            """INSERT INTO sync.runs (connection_id, connection_name, kind, trigger, status, config, counts)
               SELECT id, name, kind, 'on_demand', %s, config, %s::jsonb FROM sync.connections WHERE name = 'hr-users'
               RETURNING id""",
            (status, counts),
        )[0][0]
    )


def _set(run_id: int, status: str, counts: str) -> None:
    sql(
        "UPDATE sync.runs SET status = %s, counts = counts || %s::jsonb, finished_at = now() WHERE id = %s",
        (status, counts, run_id),
    )


def _totals() -> dict[str, tuple[int, int, int]]:
    rows = sql("SELECT status, runs, rows_read, rows_created FROM sync.run_totals ORDER BY status")
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def _scraped() -> dict[str, dict[tuple[str, ...], float]]:
    return {f.name: {tuple(s.labels.values()): s.value for s in f.samples} for f in DatabaseCollector().collect()}


def test_every_finished_status_is_counted_and_an_active_run_is_not(settings: Any) -> None:
    apply_connections(load_connections_toml(feedgen.DEMO_CONNECTIONS))
    for status in FINISHED_RUN_STATUSES:
        _run(status.value, '{"read": 1}')
    _run(RunStatus.IN_PROGRESS.value, '{"read": 5}')
    assert _totals() == {s.value: (1, 1, 0) for s in FINISHED_RUN_STATUSES}
    assert _scraped()["feedsync_rows"][("hr-users", "users", "read")] == len(FINISHED_RUN_STATUSES)


def test_a_failed_run_replayed_to_completion_counts_twice_and_its_rows_once(settings: Any) -> None:
    apply_connections(load_connections_toml(feedgen.DEMO_CONNECTIONS))
    run_id = _run("queued")
    _set(run_id, "in_progress", '{"read": 100}')
    assert _totals() == {}  # nothing finished yet
    _set(run_id, "failed", '{"read": 100, "created": 40}')
    assert _totals() == {"failed": (1, 100, 40)}
    _set(run_id, "in_progress", "{}")  # feedsync dlq replay reopens it
    _set(run_id, "completed", '{"read": 100, "created": 90}')
    assert _totals() == {"failed": (1, 100, 40), "completed": (1, 0, 50)}
    sql("UPDATE sync.runs SET note = 'seen' WHERE id = %s", (run_id,))  # neither status nor counts
    scraped = _scraped()
    assert scraped["feedsync_runs"] == {("hr-users", "users", "failed"): 1, ("hr-users", "users", "completed"): 1}
    assert scraped["feedsync_rows"][("hr-users", "users", "created")] == 90  # not 130
    assert scraped["feedsync_rows"][("hr-users", "users", "read")] == 100  # not 200
    assert ("hr-users",) in scraped["feedsync_last_success_timestamp_seconds"]
