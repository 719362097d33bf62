"""Creating a run: the one place a run is inserted (coalescing queued triggers of one kind), and
the connection's lock that serialises a connection's run bookkeeping.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import psycopg
import structlog
from psycopg.types.json import Jsonb

from schemas.messages import SyncDue
from schemas.states import AccessMode, TriggerType
from workers import store
from workers.rows import ConnectionRow
from workers.runs.outbox import OutboxBatch

log = structlog.get_logger(__name__)


def lock_connection(conn: psycopg.Connection[Any], connection_id: int) -> None:
    """Serialises run bookkeeping of one connection (held to the end of the transaction)."""
    conn.execute("SELECT pg_advisory_xact_lock(7301, %s::int)", (connection_id,))


def live_connection(conn: psycopg.Connection[Any], name: str) -> dict[str, Any] | None:
    return store.fetch_one(
        conn,
        "SELECT id, name, kind, config, enabled FROM sync.connections WHERE name = %s AND deleted_at IS NULL",
        (name,),
    )


def create_run(
    conn: psycopg.Connection[Any],
    connection: ConnectionRow,
    trigger: TriggerType,
    outbox: OutboxBatch,
    *,
    since: date | None = None,
    access: AccessMode = AccessMode.ONLINE,
    dry_run: bool = False,
    rerun_of: int | None = None,
    undo_of: int | None = None,
    undo_skip_conflicts: bool = False,
    coalesce: bool = True,
    join_any: bool = False,
    hold: bool = False,
) -> tuple[int, bool]:
    """Queue a run and its plan message. Returns (run_id, created).

    A trigger that finds a queued run of its kind joins it instead of queueing another; with
    ``join_any`` (a dropped file) it joins a queued run of any kind, which will claim the file.
    With ``hold`` the run is queued without its plan message (a bundle waiting for its files:
    workers/runs/bundles.py releases it)."""
    lock_connection(conn, connection.id)
    if coalesce:
        queued = store.fetch_one(
            conn,
            """SELECT id FROM sync.runs WHERE connection_id = %(c)s AND status = 'queued' AND started_at IS NULL
                 AND (%(any)s OR (trigger = %(t)s AND since IS NOT DISTINCT FROM %(since)s
                                  AND access_mode = %(access)s AND dry_run = %(dry)s))
               ORDER BY id LIMIT 1""",
            {
                "c": connection.id,
                "t": trigger.value,
                "since": since,
                "access": access.value,
                "dry": dry_run,
                "any": join_any,
            },
        )
        if queued is not None:
            return queued["id"], False
    row = store.fetch_one(
        conn,
        """INSERT INTO sync.runs (connection_id, connection_name, kind, trigger, access_mode, dry_run, since,
                                  rerun_of, config, undo_of, undo_skip_conflicts, note)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
        (
            connection.id,
            connection.name,
            connection.kind,
            trigger.value,
            access.value,
            dry_run,
            since,
            rerun_of,
            Jsonb(connection.stored_config),
            undo_of,
            undo_skip_conflicts,
            None if undo_of is None else f"undo of run {undo_of}",
        ),
    )
    assert row is not None
    run_id = int(row["id"])
    if hold:
        return run_id, True
    _queue_plan(conn, run_id, connection, trigger, since, access, dry_run, outbox)
    return run_id, True


def _queue_plan(
    conn: psycopg.Connection[Any],
    run_id: int,
    connection: ConnectionRow,
    trigger: TriggerType,
    since: date | None,
    access: AccessMode,
    dry_run: bool,
    outbox: OutboxBatch,
) -> None:
    outbox.add(
        conn,
        SyncDue(
            connection=connection.name,
            trigger=trigger,
            run_id=run_id,
            since=since,
            access=access,
            dry_run=dry_run,
        ),
        f"plan:{run_id}",
    )
