"""Starting a run: one active run per connection, the oldest queued first; claiming its files and
sending its first stage (fetch, parse or export) by the route table; the next queued run after one ends.
"""

from __future__ import annotations

from datetime import date
from pathlib import PurePosixPath
from typing import Any

import psycopg
import structlog

from schemas.states import TriggerType
from workers import store
from workers.connectors import import_kind, kind_of
from workers.rows import RunRow, read_run
from workers.runs import bundles, lifecycle, record, route
from workers.runs.create import lock_connection
from workers.runs.outbox import OutboxBatch

log = structlog.get_logger(__name__)


_ACTIVE = ("in_progress", "awaiting_approval")


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
        route.send(conn, outbox, "plan", "export", run_id)
        return
    if run.trigger is not TriggerType.UNDO and getattr(run.config, "fetched", False):
        # An API source: the fetch stage pulls the feed and queues its parse (workers/stages/fetch.py).
        lifecycle.start(conn, run_id)
        import_kind(run.kind).create_staging(conn, run_id, run.config)
        route.send(conn, outbox, "plan", "fetch", run_id)
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
        route.send(conn, outbox, "plan", "parse", run_id, file_id=f["id"])
    bundles.note_what_was_taken(conn, run, {PurePosixPath(f["original_path"]).name for f in files})
    if not files:
        record.note(conn, run_id, "no new files to import", keep=True)
        route.send(conn, outbox, "plan", "load", run_id)
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
            record.note(conn, run.id, f"{gone['n']} file(s) in the window were removed after their retention period")
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
