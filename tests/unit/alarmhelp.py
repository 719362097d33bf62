"""What the alarm tests share: a users connection with an ``[connections.expect]``, its history
written as the pipeline leaves it (runs, files, dead letters at chosen times on the database
clock), and the alerts read back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from psycopg.types.json import Jsonb

from producers import alarms, alerts, notifier
from producers.commands import apply_connections
from schemas.connections import load_connections_toml
from tests.conftest import sql
from tests.stubpipeline import USERS_TOML

#: When the test connection was created: before every deadline the tests look at.
ARMED = datetime(2026, 1, 1, tzinfo=UTC)
NAME = "hr-users"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def connect(expect: str, extra: str = "", armed: datetime = ARMED) -> None:
    """The users connection of tests/stubpipeline.py with ``expect`` as its [connections.expect]."""
    top, mapping = USERS_TOML.split("[connections.mapping]")
    text = top + extra + "\n[connections.mapping]" + mapping + "\n[connections.expect]\n" + expect
    apply_connections(load_connections_toml(text))
    sql("UPDATE sync.connections SET created_at = %s WHERE name = %s", (armed, NAME))


def run(
    finished: datetime | None,
    status: str = "completed",
    *,
    read: int = 100,
    files: int = 1,
    files_rejected: int = 0,
    started: datetime | None = None,
    dry_run: bool = False,
) -> int:
    """A run of the connection as finalize records it, finished at ``finished`` (None: not ended)."""
    started = started or finished
    counts = {"read": read, "files": files, "files_rejected": files_rejected, "created": 0, "rejected": 0}
    (row,) = sql(
        """INSERT INTO sync.runs (connection_id, connection_name, kind, trigger, status, dry_run, config,
                                  created_at, started_at, finished_at, counts)
           SELECT id, name, kind, 'scheduled', %s, %s, config, %s, %s, %s, %s FROM sync.connections
           WHERE name = %s AND deleted_at IS NULL RETURNING id""",
        (status, dry_run, started, started, finished, Jsonb(counts), NAME),
    )
    return int(row[0])


def file_arrived(at: datetime, name: str = "users.csv") -> None:
    sql(
        """INSERT INTO sync.feed_files (connection_id, original_path, stored_path, sha256, size_bytes, registered_at)
           SELECT id, %s, %s, md5(%s), 10, %s FROM sync.connections WHERE name = %s AND deleted_at IS NULL""",
        (f"import/user/internal/{name}", f"store/{name}", f"{name}{at}", at, NAME),
    )


def evaluate(at: datetime) -> alarms.Evaluation:
    """One scheduler round: the evaluation, then the notifier's round that sends what it queued."""
    result = alarms.evaluate(at=at)
    assert result is not None, "no other evaluation runs in these tests"
    notifier.deliver(60)
    return result


def open_alerts() -> list[tuple[str, str]]:
    """(kind, state) of the open alerts."""
    return sorted((a["kind"], a["state"]) for a in alerts.list_alerts())


def every_alert() -> list[dict[str, Any]]:
    return sorted(alerts.list_alerts(include_resolved=True), key=lambda a: int(a["id"]))
