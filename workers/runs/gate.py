"""A run's gate and its cancel: stages enter a run under its gate (shared), a cancel closes it
(exclusive), so a cancelled run's late messages do nothing; a run's staging tables are dropped here.
"""

from __future__ import annotations

from typing import Any

import psycopg
import structlog
from psycopg import sql

from workers import store
from workers.runs import lifecycle
from workers.runs.create import lock_connection

log = structlog.get_logger(__name__)


# Advisory lock class of a run's gate: stage transactions hold it shared, a cancel exclusively.
_RUN_GATE = 7303


def drop_stage_tables(conn: psycopg.Connection[Any], run_id: int) -> int:
    """Drop every staging table of a run (its typed table and any raw chunk left behind)."""
    names = [
        r["tablename"]
        for r in store.fetch_all(
            conn,
            "SELECT tablename FROM pg_tables WHERE schemaname = 'stage' AND tablename ~ %s",
            (rf"^[a-z]+_{run_id}(_|$)",),
        )
    ]
    for name in names:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS stage.{}").format(sql.Identifier(name)))
    return len(names)


def enter_run(conn: psycopg.Connection[Any], run_id: int) -> str | None:
    """The run's status, read under its gate (held shared to the end of the transaction), so a
    cancel either waits for this transaction or is seen by it. Stages call it before their work:
    a message for a cancelled run then does nothing. Shared, so stages of one run never wait for
    each other (a row lock here is what deadlocked the fan-in)."""
    conn.execute("SELECT pg_advisory_xact_lock_shared(%s, %s::int)", (_RUN_GATE, run_id))
    row = store.fetch_one(conn, "SELECT status FROM sync.runs WHERE id = %s", (run_id,))
    return None if row is None else str(row["status"])


def close_gate(conn: psycopg.Connection[Any], run_id: int, *, wait: bool = True) -> bool:
    """Hold the run's gate exclusively to the end of the transaction: no stage of it is in flight
    or starts meanwhile. Take it before the connection's lock (stages take the gate, then the
    connection's lock); with ``wait=False``, False if a stage holds it now."""
    if wait:
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s::int)", (_RUN_GATE, run_id))
        return True
    row = store.fetch_one(conn, "SELECT pg_try_advisory_xact_lock(%s, %s::int) AS ok", (_RUN_GATE, run_id))
    return bool(row and row["ok"])


def cancel_run(conn: psycopg.Connection[Any], run_id: int, *, by: str, reason: str | None) -> dict[str, Any] | None:
    """End a queued, held or in-progress run as ``cancelled``, audited in sync.run_actions.

    Returns {connection_id, from_status, cancelled}; ``cancelled`` is False when the run had already
    ended (then ``from_status`` is its status). None if there is no such run. Waits for the run's
    stage transactions in flight; those that come later see the status and do nothing. Its files
    end as a rejected run's do (a dry run's wait for the real run), its staging is dropped. The
    caller starts the connection's next run and sweeps the files after the commit."""
    close_gate(conn, run_id)
    run = store.fetch_one(conn, "SELECT connection_id, status FROM sync.runs WHERE id = %s", (run_id,))
    if run is None:
        return None
    lock_connection(conn, run["connection_id"])
    why = f"cancelled by {by}" + (f": {reason}" if reason else "")
    row = lifecycle.cancel(conn, run_id, why)
    if row is None:
        current = store.fetch_one(conn, "SELECT connection_id, status FROM sync.runs WHERE id = %s", (run_id,))
        assert current is not None
        return {"connection_id": current["connection_id"], "from_status": current["status"], "cancelled": False}
    conn.execute(
        """INSERT INTO sync.run_actions (run_id, action, from_status, reason, done_by)
           VALUES (%s, 'cancel', %s, %s, %s)""",
        (run_id, row["from_status"], reason, by),
    )
    conn.execute(
        """UPDATE sync.stage_runs SET status = 'failed', error = 'run cancelled', finished_at = clock_timestamp()
           WHERE run_id = %s AND status IN ('running', 'retrying')""",
        (run_id,),
    )
    conn.execute(
        """UPDATE sync.feed_files f SET status = CASE WHEN %(dry)s THEN 'registered' ELSE 'rejected' END
           FROM sync.run_files rf WHERE rf.run_id = %(run)s AND f.id = rf.file_id AND f.status = 'claimed'""",
        {"run": run_id, "dry": row["dry_run"]},
    )
    drop_stage_tables(conn, run_id)
    log.warning("run cancelled", run_id=run_id, from_status=row["from_status"], by=by)
    return {"connection_id": row["connection_id"], "from_status": row["from_status"], "cancelled": True}
