"""Run lifecycle in PostgreSQL: create (coalescing queued triggers), start (one active run per
connection), fan-in (the last finished chunk moves the run on), cancel, and the next queued run.

All state lives in the database; any worker on any host can take any step.
"""

from __future__ import annotations

from datetime import date
from pathlib import PurePosixPath
from typing import Any

import psycopg
import structlog
from psycopg import sql
from psycopg.types.json import Jsonb

from schemas.messages import ExportRun, FetchRun, FinalizeRun, LoadRun, ParseFile, SyncDue
from schemas.states import AccessMode, TriggerType
from workers import store
from workers.connectors import import_kind, kind_of
from workers.rows import ConnectionRow, RunRow, read_run
from workers.runs import bundles, lifecycle
from workers.runs.outbox import OutboxBatch

log = structlog.get_logger(__name__)

_ACTIVE = ("in_progress", "awaiting_approval")
# Advisory lock class of a run's gate: stage transactions hold it shared, a cancel exclusively.
_RUN_GATE = 7303


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


def try_start(conn: psycopg.Connection[Any], run_id: int, outbox: OutboxBatch) -> str:
    """Start a queued run unless its connection already has one applying changes.

    Returns 'started', 'waiting' (another run is active; the run stays queued until that one
    finishes) or 'not_queued'."""
    run = store.fetch_one(conn, "SELECT connection_id FROM sync.runs WHERE id = %s", (run_id,))
    if run is None:
        return "not_queued"
    lock_connection(conn, run["connection_id"])
    # Read the status again under the lock: a concurrent caller may have started it meanwhile.
    run = store.fetch_one(conn, "SELECT connection_id, status FROM sync.runs WHERE id = %s", (run_id,))
    if run is None or run["status"] != "queued":
        return "not_queued"
    other = store.fetch_one(
        conn,
        "SELECT id FROM sync.runs WHERE connection_id = %s AND status = ANY(%s) AND id <> %s LIMIT 1",
        (run["connection_id"], list(_ACTIVE), run_id),
    )
    if other is not None:
        return "waiting"
    # Only the oldest queued run may start, so triggers apply in the order they came (a bundle
    # still waiting for its files is not in line: workers/runs/bundles.py).
    older = store.fetch_one(
        conn,
        "SELECT id FROM sync.runs WHERE connection_id = %s AND status = 'queued' AND waiting_for IS NULL "
        "AND id < %s LIMIT 1",
        (run["connection_id"], run_id),
    )
    if older is not None:
        return "waiting"
    _start(conn, run_id, outbox)
    return "started"


def _start(conn: psycopg.Connection[Any], run_id: int, outbox: OutboxBatch) -> None:
    run = read_run(conn, run_id, lock="NO KEY UPDATE")
    assert run is not None
    if kind_of(run.kind).EXPORT:
        # An export reads the store, not files: its one stage goes at once.
        lifecycle.start(conn, run_id)
        outbox.add(conn, ExportRun(run_id=run_id), f"export:{run_id}")
        return
    if run.trigger is not TriggerType.UNDO and getattr(run.config, "fetched", False):
        # An API source: the fetch stage pulls the feed and queues its parse (workers/stages/fetch.py).
        lifecycle.start(conn, run_id)
        import_kind(run.kind).create_staging(conn, run_id, run.config)
        outbox.add(conn, FetchRun(run_id=run_id), f"fetch:{run_id}")
        return
    files = _claim_files(conn, run)
    # Oldest first: undated files (course metadata) before dated feeds, dated feeds by the date in
    # their name (then the name, which carries the time of day where there is one), the rest in the
    # order they arrived.
    files.sort(key=lambda f: (f["file_date"] or date.min, PurePosixPath(f["original_path"]).name, f["registered_at"]))
    lifecycle.start(conn, run_id)
    kind = import_kind(run.kind)
    kind.create_staging(conn, run_id, run.config)
    for ordinal, f in enumerate(files):
        conn.execute(
            "INSERT INTO sync.run_files (run_id, file_id, ordinal) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
            (run_id, f["id"], ordinal),
        )
        outbox.add(conn, ParseFile(run_id=run_id, file_id=f["id"]), f"parse:{run_id}:{f['id']}")
    bundles.note_what_was_taken(conn, run, {PurePosixPath(f["original_path"]).name for f in files})
    if not files:
        conn.execute("UPDATE sync.runs SET note = coalesce(note, 'no new files to import') WHERE id = %s", (run_id,))
        outbox.add(conn, LoadRun(run_id=run_id), f"load:{run_id}")
    log.info("run started", run_id=run_id, files=len(files))


def _claim_files(conn: psycopg.Connection[Any], run: RunRow) -> list[dict[str, Any]]:
    """The files a run imports, marked claimed.

    - rerun: the files of the run it reruns, as they are now; a file dropped again under the same
      name since then (the fixed one) takes the old one's place;
    - a ``since`` window: every dated file from that day to today, imported before or not;
    - otherwise: every file registered and waiting;
    - a preview (``sync --dry-run --file``): only the file attached to it when it was queued.
    """
    if run.trigger is TriggerType.UNDO:
        return []  # an undo reads the run journal, not files
    attached = store.fetch_all(
        conn,
        """SELECT f.id, f.original_path, f.file_date, f.registered_at FROM sync.run_files rf
           JOIN sync.feed_files f ON f.id = rf.file_id WHERE rf.run_id = %s AND f.preview""",
        (run.id,),
    )
    if attached:
        return attached
    if run.trigger is TriggerType.RERUN:
        return store.fetch_all(
            conn,
            """WITH used AS (
                   SELECT f.original_path, f.id FROM sync.run_files rf JOIN sync.feed_files f ON f.id = rf.file_id
                   WHERE rf.run_id = %(of)s),
               chosen AS (
                   SELECT coalesce(
                       (SELECT n.id FROM sync.feed_files n
                        WHERE n.connection_id = %(c)s AND n.original_path = u.original_path AND n.id > u.id
                          AND n.status = 'registered' ORDER BY n.id DESC LIMIT 1),
                       u.id) AS id
                   FROM used u)
               UPDATE sync.feed_files f SET status = 'claimed' FROM chosen WHERE f.id = chosen.id
               RETURNING f.id, f.original_path, f.file_date, f.registered_at""",
            {"of": run.rerun_of, "c": run.connection_id},
        )
    if run.since is not None:
        # Files past their retention are gone; the run says so rather than failing on them.
        gone = store.fetch_one(
            conn,
            """SELECT count(*) AS n FROM sync.feed_files WHERE connection_id = %s AND removed_at IS NOT NULL
                 AND file_date BETWEEN %s AND (sync.clock() AT TIME ZONE 'UTC')::date""",
            (run.connection_id, run.since),
        )
        if gone and gone["n"]:
            conn.execute(
                "UPDATE sync.runs SET note = %s WHERE id = %s",
                (f"{gone['n']} file(s) in the window were removed after their retention period", run.id),
            )
        # The dated feeds of the window, imported before or not, and any new undated file (metadata).
        return store.fetch_all(
            conn,
            """UPDATE sync.feed_files SET status = 'claimed'
               WHERE connection_id = %s AND removed_at IS NULL
                 AND ((status IN ('registered', 'imported')
                       AND file_date BETWEEN %s AND (sync.clock() AT TIME ZONE 'UTC')::date)
                      OR (status = 'registered' AND file_date IS NULL))
               RETURNING id, original_path, file_date, registered_at""",
            (run.connection_id, run.since),
        )
    return store.fetch_all(
        conn,
        """UPDATE sync.feed_files SET status = 'claimed' WHERE connection_id = %s AND status = 'registered'
           RETURNING id, original_path, file_date, registered_at""",
        (run.connection_id,),
    )


def advance_if_ready(conn: psycopg.Connection[Any], run_id: int, outbox: OutboxBatch) -> bool:
    """Fan-in: counts distinct finished chunk rows under a row lock on the run; the last finisher
    queues the load. Safe to call from every parse and transform completion.

    NO KEY UPDATE, not UPDATE: a stage has already taken KEY SHARE on the run's row (the foreign
    keys of the rows it wrote), and two stages each upgrading to UPDATE deadlocked (seen in the 1M
    bench, each costing a retry); NO KEY UPDATE still serializes the finishers."""
    conn.execute("SELECT 1 FROM sync.runs WHERE id = %s FOR NO KEY UPDATE", (run_id,))
    files = store.fetch_one(
        conn,
        """SELECT count(*) FILTER (WHERE status = 'pending') AS pending,
                  coalesce(sum(chunks) FILTER (WHERE status = 'parsed'), 0) AS chunks
           FROM sync.run_files WHERE run_id = %s""",
        (run_id,),
    )
    assert files is not None
    if files["pending"]:
        return False
    done = store.fetch_one(
        conn,
        "SELECT count(*) AS n FROM sync.stage_runs WHERE run_id = %s AND stage = 'transform' AND status = 'succeeded'",
        (run_id,),
    )
    assert done is not None
    if done["n"] < files["chunks"]:
        return False
    outbox.add(conn, LoadRun(run_id=run_id), f"load:{run_id}")
    return True


def queue_finalize(conn: psycopg.Connection[Any], run_id: int, outbox: OutboxBatch) -> None:
    outbox.add(conn, FinalizeRun(run_id=run_id), f"finalize:{run_id}")


def start_next(conn: psycopg.Connection[Any], connection_id: int, outbox: OutboxBatch) -> int | None:
    """After a run ends: start the oldest queued run of the same connection, if any."""
    lock_connection(conn, connection_id)
    nxt = store.fetch_one(
        conn,
        "SELECT id FROM sync.runs WHERE connection_id = %s AND status = 'queued' AND waiting_for IS NULL "
        "ORDER BY id LIMIT 1",
        (connection_id,),
    )
    if nxt is None:
        return None
    if try_start(conn, nxt["id"], outbox) == "started":
        return int(nxt["id"])
    return None


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
