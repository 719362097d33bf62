"""Retention of processed feed files: user feeds (personal data) are removed as soon as their run
has ended, content feeds after ``FEEDSYNC_CONTENT_RETENTION_DAYS`` (7), or the connection's
``retention_days``.

A file is removed only when every run that read it has ended and committed (a file in a running
``--since`` window or rerun stays), counted from the last of those runs on the database clock.
The row is marked first and committed, then the file is unlinked; a sweep finishes any unlink a
crash interrupted. Files read only by dry runs wait for their real run.
"""

from __future__ import annotations

import contextlib
import os
from datetime import datetime
from pathlib import Path

import structlog

from schemas.settings import get_settings
from workers import store

log = structlog.get_logger(__name__)

_DUE = """
    WITH ended AS (
        SELECT rf.file_id, max(r.finished_at) FILTER (WHERE NOT r.dry_run) AS last_run,
               bool_or(r.finished_at IS NULL) AS running
        FROM sync.run_files rf JOIN sync.runs r ON r.id = rf.run_id
        WHERE %(run)s::bigint IS NULL OR rf.file_id IN (SELECT file_id FROM sync.run_files WHERE run_id = %(run)s)
        GROUP BY rf.file_id)
    SELECT f.id FROM sync.feed_files f
    JOIN ended e ON e.file_id = f.id
    JOIN sync.connections c ON c.id = f.connection_id
    WHERE f.removed_at IS NULL AND f.status <> 'registered' AND NOT e.running
      AND e.last_run + make_interval(days => coalesce((c.config ->> 'retention_days')::int,
                                                      CASE c.kind WHEN 'users' THEN 0 ELSE %(content_days)s END))
          <= sync.clock()
"""


def sweep(*, run_id: int | None = None, at: datetime | None = None) -> list[str]:
    """Remove the stored files that are due (only those of ``run_id`` if given); returns their paths
    relative to the drop dir. ``at`` sets the database clock for this sweep (tests)."""
    settings = get_settings()
    with store.connect() as conn:
        if at is not None:
            conn.execute("SELECT set_config('feedsync.clock', %s, true)", (at.isoformat(),))
        rows = store.fetch_all(
            conn,
            f"""UPDATE sync.feed_files SET removed_at = clock_timestamp()
                WHERE id IN ({_DUE}) AND removed_at IS NULL
                RETURNING id, stored_path, original_path""",
            {"run": run_id, "content_days": settings.content_retention_days},
        )
        # Unlinks a crash left undone: marked removed, still on disk.
        leftovers = store.fetch_all(
            conn,
            "SELECT stored_path FROM sync.feed_files WHERE removed_at > clock_timestamp() - interval '1 day'",
        )
    for row in rows:
        log.info("processed feed removed", file_id=row["id"], path=row["original_path"])
    for path in {r["stored_path"] for r in [*rows, *leftovers]}:
        _unlink(settings.drop_dir / path)
    return [r["original_path"] for r in rows]


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
