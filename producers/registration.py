"""Registering a file taken from the drop dir: is it a duplicate, and if not, its row, its
feed_arrived message (outbox, same transaction) and its move into the store.

Two intakes of one connection decide in turn (an advisory lock), so the same bytes dropped twice
at once are one file and one duplicate.
"""

from __future__ import annotations

import os
import re
import secrets
from datetime import UTC, date, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import structlog

from producers import safefile
from schemas.messages import FeedArrived
from schemas.settings import Settings
from workers import store
from workers.files import sha256_fd
from workers.outbox import OutboxBatch

log = structlog.get_logger(__name__)

_DATE_IN_NAME = re.compile(r"(?<!\d)(\d{4})[-_]?(\d{2})[-_]?(\d{2})(?!\d)")


def file_date(name: str) -> date | None:
    m = _DATE_IN_NAME.search(name)
    if not m:
        return None
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


# Which connection's intake runs: two intakes of one connection decide "duplicate or not" in turn.
_INTAKE_LOCK = 7301

# The same bytes are a duplicate while they wait to be imported (registered, or claimed by a dry
# run that gives them back), and when they are a file the connection's latest run read, that run
# completed (with or without row errors) and did not reject the file: dropping the latest feed
# again changes nothing. Bytes of a file a later run read (an older feed dropped again to repair
# the damage of a newer one), of a rejected file, or of a run that failed, was rejected or did not
# finish, import again.
_DUPLICATE_OF = """
    WITH latest AS (
        SELECT r.id, r.status FROM sync.runs r
        WHERE r.connection_id = %(c)s AND NOT r.dry_run
          AND EXISTS (SELECT 1 FROM sync.run_files rf WHERE rf.run_id = r.id)
        ORDER BY r.started_at DESC NULLS LAST, r.id DESC LIMIT 1),
    imported AS (
        SELECT rf.file_id, l.id AS run_id FROM latest l JOIN sync.run_files rf ON rf.run_id = l.id
        WHERE rf.status = 'parsed' AND l.status IN ('completed', 'completed_with_errors'))
    SELECT f.id, (SELECT i.run_id FROM imported i WHERE i.file_id = f.id) AS imported_by
    FROM sync.feed_files f
    WHERE f.connection_id = %(c)s AND f.sha256 = %(h)s
      AND (f.status = 'registered'
           OR EXISTS (SELECT 1 FROM sync.run_files rf JOIN sync.runs r ON r.id = rf.run_id
                      WHERE rf.file_id = f.id AND r.dry_run AND r.finished_at IS NULL)
           OR EXISTS (SELECT 1 FROM imported i WHERE i.file_id = f.id))
    ORDER BY f.id DESC LIMIT 1
"""


def _stored_rel(kind: str, connection: str, tag: str, name: str) -> PurePosixPath:
    # A folder per file keeps the name as it was dropped (a name that fills the filesystem's limit
    # has no room for a prefix) and lets the same bytes be stored again after an older feed.
    return PurePosixPath(kind, connection, f"{tag}-{secrets.token_hex(4)}", name)


def register(
    settings: Settings,
    path: Path,
    rel: PurePosixPath,
    connection: dict[str, Any],
    announce: bool,
    checked: os.stat_result,
) -> tuple[str, int | None]:
    fd = safefile.open_checked(path, checked, settings.drop_dir)
    try:
        digest, size = sha256_fd(fd)
        after = os.fstat(fd)
        if (after.st_size, after.st_mtime_ns) != (checked.st_size, checked.st_mtime_ns):
            return "not_ready", None  # written to while it was hashed
        return _record(settings, fd, path, rel, connection, announce, digest, size)
    finally:
        os.close(fd)


def _record(
    settings: Settings,
    fd: int,
    path: Path,
    rel: PurePosixPath,
    connection: dict[str, Any],
    announce: bool,
    digest: str,
    size: int,
) -> tuple[str, int | None]:
    outbox = OutboxBatch()
    with store.connect() as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_INTAKE_LOCK, int(connection["id"])))
        existing = store.fetch_one(conn, _DUPLICATE_OF, {"c": connection["id"], "h": digest})
        if existing is not None:
            conn.execute(
                "INSERT INTO sync.file_drops (connection_id, file_id, path, duplicate, duplicate_of_run) "
                "VALUES (%s, %s, %s, true, %s)",
                (connection["id"], existing["id"], rel.as_posix(), existing["imported_by"]),
            )
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
            safefile.move_opened(
                fd, path, settings.store_dir / _stored_rel("duplicates", connection["name"], stamp, rel.name)
            )
            log.info(
                "duplicate file: the same bytes as a file waiting or imported last; not imported again",
                connection=connection["name"],
                path=rel.as_posix(),
                file_id=existing["id"],
                imported_by=existing["imported_by"],
            )
            return "duplicate", int(existing["id"])
        stored_rel = _stored_rel("files", connection["name"], digest[:16], rel.name)
        row = store.fetch_one(
            conn,
            """INSERT INTO sync.feed_files (connection_id, original_path, stored_path, sha256, size_bytes, file_date)
               VALUES (%s, %s, %s, %s, %s, %s) RETURNING id""",
            (connection["id"], rel.as_posix(), stored_rel.as_posix(), digest, size, file_date(rel.name)),
        )
        assert row is not None
        file_id = int(row["id"])
        conn.execute(
            "INSERT INTO sync.file_drops (connection_id, file_id, path, duplicate) VALUES (%s, %s, %s, false)",
            (connection["id"], file_id, rel.as_posix()),
        )
        if announce:
            outbox.add(
                conn,
                FeedArrived(
                    connection=connection["name"],
                    file_id=file_id,
                    path=rel.as_posix(),
                    sha256=digest,
                    size=size,
                    detected_at=datetime.now(UTC),
                ),
                f"arrived:{file_id}",
            )
        # Moved inside the transaction: if the commit fails the file goes back, and a process killed
        # between move and commit leaves an orphan that recover_orphans() puts back on the next scan.
        stored = settings.store_dir / stored_rel
        safefile.move_opened(fd, path, stored)
        try:
            conn.commit()
        except Exception:
            safefile.move_back(stored, path)
            raise
    outbox.flush()
    log.info("file registered", connection=connection["name"], path=rel.as_posix(), file_id=file_id, size=size)
    return "registered", file_id
