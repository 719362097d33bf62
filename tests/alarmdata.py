"""What the alarm and alert tests share: users connections with a [connections.expect] and a
[connections.notify], failed runs written as the pipeline leaves them, and a flood of open alerts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from producers import alarms
from producers.commands import apply_connections
from schemas.connections import load_connections_toml
from tests.conftest import sql
from tests.stubpipeline import USERS_TOML
from tests.unit.alarmhelp import utc


def connections(names: list[str], tables: str, expect: str = "max_failed_runs = 1\n") -> None:
    """Users connections with these names, each with ``tables`` (its [connections.notify], say; a
    ``{name}`` in it is the connection's name) and ``expect`` as its [connections.expect]."""
    top, mapping = USERS_TOML.split("[connections.mapping]")
    text = ""
    for name in names:
        one = top.replace('name = "hr-users"', f'name = "{name}"').replace("internal", name)
        text += one + tables.replace("{name}", name) + "\n[connections.mapping]" + mapping
        text += "\n[connections.expect]\n" + expect
    apply_connections(load_connections_toml(text))


def failed(name: str, at: Any) -> None:
    sql(
        """INSERT INTO sync.runs (connection_id, connection_name, kind, trigger, status, config, created_at,
                                  started_at, finished_at, counts)
           SELECT id, name, kind, 'scheduled', 'failed', config, %s, %s, %s, '{}' FROM sync.connections
           WHERE name = %s AND deleted_at IS NULL""",
        (at, at, at, name),
    )


T0 = utc(2026, 11, 1, 12, 0)


def flood() -> None:
    """Alerts 1 (failed_runs) and 2 (dead_letter) on hr-a, 3 (failed_runs) on hr-b, 4 (failed_runs) on lms-c."""
    connections(["hr-a", "hr-b", "lms-c"], "")
    for name in ("hr-a", "hr-b", "lms-c"):
        failed(name, T0)
    (run_id,) = sql("SELECT id FROM sync.runs WHERE connection_name = 'hr-a'")[0]
    sql(
        """INSERT INTO sync.dead_letters (message_id, queue_name, actor_name, run_id, message, error, attempts)
           VALUES ('m-1', 'load', 'load_run', %s, '{}', 'stage failed', 5)""",
        (run_id,),
    )
    assert alarms.evaluate(at=T0 + timedelta(minutes=1)) is not None


def states() -> list[tuple[int, str, str | None]]:
    return [(int(i), s, by) for i, s, by in sql("SELECT id, state, acknowledged_by FROM sync.alerts ORDER BY id")]
