"""Registering a file taken from the drop dir: is it a duplicate, and if not, its row, its
feed_arrived message (outbox, same transaction) and its move into the store.

Two intakes of one connection decide in turn (an advisory lock), so the same bytes dropped twice
at once are one file and one duplicate.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import structlog

from producers import safefile
from schemas.messages import FeedArrived
from schemas.settings import Settings
from workers import store
from workers.files.disk import sha256_fd
from workers.files.objects import file_store
from workers.runs.outbox import OutboxBatch

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
        SELECT r.id, r.status, r.undone_by FROM sync.runs r
        WHERE r.connection_id = %(c)s AND NOT r.dry_run
          AND EXISTS (SELECT 1 FROM sync.run_files rf WHERE rf.run_id = r.id)
        ORDER BY r.started_at DESC NULLS LAST, r.id DESC LIMIT 1),
    imported AS (
        SELECT rf.file_id, l.id AS run_id FROM latest l JOIN sync.run_files rf ON rf.run_id = l.id
        -- An undone run's changes were taken back: its bytes would change something again.
        WHERE rf.status = 'parsed' AND l.status IN ('completed', 'completed_with_errors')
          AND l.undone_by IS NULL)
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
    return register_together(settings, [(path, rel, checked)], connection, announce)[0]


def register_together(
    settings: Settings,
    files: list[tuple[Path, PurePosixPath, os.stat_result]],
    connection: dict[str, Any],
    announce: bool,
) -> list[tuple[str, int | None]]:
    """Register ``files`` (path, path relative to the drop dir, its checked lstat()) in one
    transaction: all of them or none, so one run claims them all (producers.deliveries)."""
    opened: list[_Opened] = []
    try:
        for path, rel, checked in files:
            fd = safefile.open_checked(path, checked, settings.drop_dir)
            opened.append(_Opened(fd, path, rel, "", 0))
            digest, size = sha256_fd(fd)
            after = os.fstat(fd)
            if (after.st_size, after.st_mtime_ns) != (checked.st_size, checked.st_mtime_ns):
                return [("not_ready", None)] * len(files)  # written to while it was hashed
            opened[-1] = _Opened(fd, path, rel, digest, size)
        return _record(settings, opened, connection, announce)
    finally:
        for o in opened:
            os.close(o.fd)


@dataclass(frozen=True)
class _Opened:
    fd: int
    path: Path
    rel: PurePosixPath
    digest: str
    size: int


def _record(
    settings: Settings, opened: list[_Opened], connection: dict[str, Any], announce: bool
) -> list[tuple[str, int | None]]:
    outbox = OutboxBatch()
    results: list[tuple[str, int | None]] = []
    moved: list[tuple[Path, Path]] = []
    with store.connect() as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_INTAKE_LOCK, int(connection["id"])))
        for o in opened:
            # Another intake may have taken it while this one waited for the lock.
            if not safefile.same_file(os.lstat(o.path), os.fstat(o.fd)):
                raise FileNotFoundError(o.path)
        # A delivery is one feed: a part whose bytes the last run imported (a part that did not
        # change) imports again with the others, or the run would read the other parts alone and a
        # full feed would deactivate that part's people. Only a delivery that is all repeats is one.
        again = len(opened) > 1 and not all(
            store.fetch_one(conn, _DUPLICATE_OF, {"c": connection["id"], "h": o.digest}) for o in opened
        )
        try:
            for o in opened:
                results.append(_record_one(settings, conn, o, connection, announce, outbox, moved, again=again))
            # Moved inside the transaction: if the commit fails the files go back, and a process
            # killed between move and commit leaves orphans that recover_orphans() puts back.
            conn.commit()
        except BaseException:
            for stored, path in reversed(moved):
                safefile.move_back(stored, path)
            raise
    if file_store(settings).remote:
        # The object store holds them now: the watcher's disk keeps no file a worker elsewhere needs.
        for stored, _ in moved:
            if stored.is_relative_to(settings.store_dir / "files"):
                stored.unlink(missing_ok=True)
    outbox.flush()
    for (outcome, file_id), o in zip(results, opened, strict=True):
        if outcome == "registered":
            log.info(
                "file registered", connection=connection["name"], path=o.rel.as_posix(), file_id=file_id, size=o.size
            )
    return results


def _record_one(
    settings: Settings,
    conn: Any,
    o: _Opened,
    connection: dict[str, Any],
    announce: bool,
    outbox: OutboxBatch,
    moved: list[tuple[Path, Path]],
    *,
    again: bool = False,
) -> tuple[str, int | None]:
    existing = store.fetch_one(conn, _DUPLICATE_OF, {"c": connection["id"], "h": o.digest})
    if existing is not None and not (again and existing["imported_by"] is not None):
        conn.execute(
            "INSERT INTO sync.file_drops (connection_id, file_id, path, duplicate, duplicate_of_run) "
            "VALUES (%s, %s, %s, true, %s)",
            (connection["id"], existing["id"], o.rel.as_posix(), existing["imported_by"]),
        )
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        target = settings.store_dir / _stored_rel("duplicates", connection["name"], stamp, o.rel.name)
        safefile.move_opened(o.fd, o.path, target)
        moved.append((target, o.path))
        log.info(
            "duplicate file: the same bytes as a file waiting or imported last; not imported again",
            connection=connection["name"],
            path=o.rel.as_posix(),
            file_id=existing["id"],
            imported_by=existing["imported_by"],
        )
        return "duplicate", int(existing["id"])
    stored_rel = _stored_rel("files", connection["name"], o.digest[:16], o.rel.name)
    row = store.fetch_one(
        conn,
        """INSERT INTO sync.feed_files (connection_id, original_path, stored_path, sha256, size_bytes, file_date)
           VALUES (%s, %s, %s, %s, %s, %s) RETURNING id""",
        (connection["id"], o.rel.as_posix(), stored_rel.as_posix(), o.digest, o.size, file_date(o.rel.name)),
    )
    assert row is not None
    file_id = int(row["id"])
    conn.execute(
        "INSERT INTO sync.file_drops (connection_id, file_id, path, duplicate) VALUES (%s, %s, %s, false)",
        (connection["id"], file_id, o.rel.as_posix()),
    )
    if announce:
        outbox.add(
            conn,
            FeedArrived(
                connection=connection["name"],
                file_id=file_id,
                path=o.rel.as_posix(),
                sha256=o.digest,
                size=o.size,
                detected_at=datetime.now(UTC),
            ),
            f"arrived:{file_id}",
        )
    stored = settings.store_dir / stored_rel
    safefile.move_opened(o.fd, o.path, stored)
    moved.append((stored, o.path))
    # Into the object store before the commit, so no run can read a file that is not there yet; a
    # commit that fails leaves an object no row names, put again by the next intake of those bytes.
    file_store(settings).put(stored_rel.as_posix(), stored, o.digest)
    return "registered", file_id
