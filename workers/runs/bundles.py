"""A bundle waits for its files: the one place that decides it.

A kind whose ``expected_files`` names a bundle (hierarchy: org.csv, pos.csv, user.csv) imports the
files together. A dropped file of an incomplete bundle queues its run *held*: ``sync.runs.waiting_for``
lists the files still missing, the history shows the run as queued saying so, and no plan message
is sent (a held run is not in line: ``runs.try_start`` and ``runs.start_next`` pass it over). The
drop that completes the bundle releases it (its plan message, sent once). A run started another
way (on schedule, on demand) takes the files present and says which had not arrived.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import psycopg

from schemas.messages import SyncDue
from schemas.states import TriggerType
from workers import store
from workers.connectors import import_kind
from workers.rows import ConnectionRow, RunRow
from workers.runs.outbox import OutboxBatch


def missing_files(conn: psycopg.Connection[Any], connection: ConnectionRow) -> list[str]:
    """For a bundle kind: the expected files that have not arrived (are not registered and waiting)."""
    expected = import_kind(connection.kind).expected_files(connection.config)
    if expected is None:
        return []
    waiting = {
        PurePosixPath(r["original_path"]).name
        for r in store.fetch_all(
            conn,
            "SELECT original_path FROM sync.feed_files WHERE connection_id = %s AND status = 'registered'",
            (connection.id,),
        )
    }
    return [name for name in expected.values() if name not in waiting]


def wait_or_release(
    conn: psycopg.Connection[Any],
    run_id: int,
    connection: ConnectionRow,
    missing: list[str],
    outbox: OutboxBatch,
    *,
    created: bool,
) -> None:
    """After a dropped file queued (``created``) or joined run ``run_id`` (held if ``missing``):
    a run still missing files says what it waits for; one that has them all is released."""
    if missing:
        # A joined run that is not held (already released) is not held again.
        conn.execute(
            "UPDATE sync.runs SET waiting_for = %s, note = %s WHERE id = %s AND (waiting_for IS NOT NULL OR %s)",
            (missing, f"waiting for the bundle: {', '.join(missing)} not arrived yet", run_id, created),
        )
    elif release(conn, run_id, connection, outbox):
        conn.execute(
            "UPDATE sync.runs SET note = 'bundle complete: every expected file arrived' WHERE id = %s", (run_id,)
        )


def release(conn: psycopg.Connection[Any], run_id: int, connection: ConnectionRow, outbox: OutboxBatch) -> bool:
    """Send the plan message of a held run (once: the guard is its waiting_for)."""
    row = store.fetch_one(
        conn,
        "UPDATE sync.runs SET waiting_for = NULL WHERE id = %s AND waiting_for IS NOT NULL RETURNING trigger",
        (run_id,),
    )
    if row is None:
        return False
    outbox.add(
        conn, SyncDue(connection=connection.name, trigger=TriggerType(row["trigger"]), run_id=run_id), f"plan:{run_id}"
    )
    return True


def note_what_was_taken(conn: psycopg.Connection[Any], run: RunRow, names: set[str]) -> None:
    """A bundle run started with some of its files (``names``): its note says which were not there."""
    expected = import_kind(run.kind).expected_files(run.config)
    if expected is None or not names:
        return
    missing = [n for n in expected.values() if n not in names]
    if missing:
        took = ", ".join(sorted(names))
        conn.execute(
            "UPDATE sync.runs SET note = %s WHERE id = %s",
            (f"bundle incomplete: took {took}; {', '.join(missing)} had not arrived", run.id),
        )
