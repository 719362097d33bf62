"""Retention of processed feed files: user feeds (personal data) are removed as soon as their run
has ended, content feeds after ``FEEDSYNC_CONTENT_RETENTION_DAYS`` (7), or the connection's
``retention_days``. The periodic sweep also removes old run journals (``journal.purge``).

A file is removed only when every run that read it has ended and committed (a file in a running
``--since`` window or rerun stays), counted from the last of those runs on the database clock.
The row is marked first and committed, then the file is unlinked; a sweep finishes any unlink a
crash interrupted. Files read only by dry runs wait for their real run.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import structlog
from psycopg import sql

from schemas.connections import MAX_RETENTION_DAYS
from schemas.settings import get_settings
from workers import store
from workers.connectors import kind_of
from workers.files.objects import FileStore, FileStoreError, file_store
from workers.runs import journal, people_files

log = structlog.get_logger(__name__)

_DUE = sql.SQL("""
    WITH ended AS (
        SELECT rf.file_id, max(r.finished_at) FILTER (WHERE NOT r.dry_run) AS last_run,
               bool_or(r.finished_at IS NULL) AS running
        FROM sync.run_files rf JOIN sync.runs r ON r.id = rf.run_id
        JOIN sync.feed_files f ON f.id = rf.file_id AND f.connection_id = %(connection)s
        WHERE %(run)s::bigint IS NULL OR rf.file_id IN (SELECT file_id FROM sync.run_files WHERE run_id = %(run)s)
        GROUP BY rf.file_id)
    SELECT f.id FROM sync.feed_files f
    JOIN ended e ON e.file_id = f.id
    WHERE f.connection_id = %(connection)s AND f.removed_at IS NULL AND f.status <> 'registered' AND NOT e.running
      AND e.last_run + make_interval(days => %(days)s::int) <= sync.clock()
      AND (regexp_replace(f.original_path, '^.*/', '') = ANY(%(names)s::text[])) = %(people)s
""")


def sweep(*, run_id: int | None = None, at: datetime | None = None) -> list[str]:
    """Remove the stored files that are due (only those of ``run_id`` if given); returns their paths
    relative to the drop dir. ``at`` sets the database clock for this sweep (tests).

    Connection by connection and file by file: one that cannot be swept is logged and the others
    go on."""
    settings = get_settings()
    with store.connect() as conn:
        connections = store.fetch_all(
            conn,
            """SELECT DISTINCT c.id, c.name, c.kind, c.config, c.config ->> 'retention_days' AS retention_days
               FROM sync.connections c JOIN sync.feed_files f ON f.connection_id = c.id
               WHERE f.removed_at IS NULL AND f.status <> 'registered'
                 AND (%s::bigint IS NULL OR f.id IN (SELECT file_id FROM sync.run_files WHERE run_id = %s))
               ORDER BY c.id""",
            (run_id, run_id),
        )
    removed: list[dict[str, Any]] = []
    for c in connections:
        days = _retention_days(c, settings.content_retention_days)
        if days is None:
            continue
        # People files go at once, unless the connection asked to keep its files (retention_days).
        people = people_files.names(c["kind"], c["config"]) if c["retention_days"] is None else []
        try:
            removed += _mark_due(c["id"], days, run_id, at, people, people=False)
            if people:
                removed += _mark_due(c["id"], 0, run_id, at, people, people=True)
        except psycopg.Error as exc:
            log.error(
                "retention sweep failed for one connection; the others go on", connection=c["name"], error=str(exc)
            )
    with store.connect() as conn:
        # Unlinks a crash left undone: marked removed, still on disk.
        leftovers = store.fetch_all(
            conn,
            "SELECT stored_path FROM sync.feed_files WHERE removed_at > clock_timestamp() - interval '1 day'",
        )
    for row in removed:
        log.info("processed feed removed", file_id=row["id"], path=row["original_path"])
    files = file_store(settings)
    for path in {r["stored_path"] for r in [*removed, *leftovers]}:
        if files.remote:
            _delete(files, path)
        else:
            _unlink(settings.stored_file(path))
    if run_id is None:  # the periodic sweep: run journals too (they hold rows as they were)
        try:
            journal.purge(at=at)
        except psycopg.Error as exc:
            log.error("run journal retention failed; it is tried again at the next sweep", error=str(exc))
    return [r["original_path"] for r in removed]


def _retention_days(connection: dict[str, Any], content_days: int) -> int | None:
    """The connection's retention in days, or None (its files are kept) for a value that is not a
    whole number within bounds: stored before apply bounded it, it must not stop the others."""
    raw = connection["retention_days"]
    if raw is None:
        kind = kind_of(connection["kind"])
        default = None if kind.EXPORT else kind.RETENTION_DAYS
        return content_days if default is None else default
    try:
        days = int(raw)
    except ValueError:
        days = -1
    if not 0 <= days <= MAX_RETENTION_DAYS:
        log.error(
            "retention_days out of bounds; this connection's files are kept until it is applied again",
            connection=connection["name"],
            maximum=MAX_RETENTION_DAYS,
        )
        return None
    return days


def _mark_due(
    connection_id: int, days: int, run_id: int | None, at: datetime | None, names: list[str], *, people: bool
) -> list[dict[str, Any]]:
    """Mark removed the connection's files due after ``days``: those named in ``names`` if
    ``people``, the others if not."""
    with store.connect() as conn:
        if at is not None:
            conn.execute("SELECT set_config('feedsync.clock', %s, true)", (at.isoformat(),))
        return store.fetch_all(
            conn,
            sql.SQL(
                """UPDATE sync.feed_files SET removed_at = clock_timestamp()
                   WHERE id IN ({}) AND removed_at IS NULL
                   RETURNING id, stored_path, original_path"""
            ).format(_DUE),
            {"run": run_id, "connection": connection_id, "days": days, "names": names, "people": people},
        )


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:  # one file that cannot be removed never stops the others
        log.error(
            "could not remove a processed feed file; it is tried again at the next sweep",
            path=path.name,
            error=exc.strerror,
        )


def _delete(files: FileStore, key: str) -> None:
    """Remove one object; a store that does not answer now is tried again at the next sweep (the
    row stays marked removed for a day, and the sweep deletes what is still there)."""
    try:
        files.delete(key)
    except FileStoreError as exc:
        log.error("a removed file could not be deleted from the object store; tried again later", error=str(exc))
