"""Fetch of a bundle kind with an API source (the hierarchy kind with ``source = "workday"``): every
file of the bundle, pulled into the run's work folder, is registered in one transaction as the
run's files (``api/<source>/<connection>-<time>/<file name>``, so each is the part of the bundle its
name says) and queued for parse, as the files of a dropped bundle are. A pull cut off anywhere
registers nothing.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import structlog

from schemas.messages import FetchRun
from workers import store
from workers.files.objects import FileStore, LocalStore
from workers.rows import RunRow
from workers.runs import record, route
from workers.runs.stage import StageTx, run_stage
from workers.sources.pull import FetchResult

log = structlog.get_logger(__name__)

Pulled = list[tuple[str, FetchResult]]


def register_bundle(msg: FetchRun, run: RunRow, source: str, pulled: Pulled, files: FileStore) -> None:
    """Store the pulled files and register them as the run's, or (the run ended meanwhile) throw them away."""
    stamp = datetime.now(UTC)
    stored = [_stored_rel(run, msg.run_id, name, result) for name, result in pulled]
    try:
        registered = run_stage(msg, lambda tx: _register(tx, run, source, pulled, stored, files, stamp))
    except BaseException:
        for rel in stored:
            if not recorded(rel):  # stored in a transaction that did not commit: no row names it
                files.delete(rel.as_posix())
        raise
    if not registered:
        for rel in stored:
            files.delete(rel.as_posix())


def _stored_rel(run: RunRow, run_id: int, name: str, result: FetchResult) -> PurePosixPath:
    return PurePosixPath("fetched", run.connection_name, f"run-{run_id}-{result.sha256[:16]}", name)


def recorded(stored_rel: PurePosixPath) -> bool:
    """A stored file a feed_files row names (its transaction committed)."""
    with store.connect() as conn:
        return (
            store.fetch_one(conn, "SELECT 1 FROM sync.feed_files WHERE stored_path = %s", (stored_rel.as_posix(),))
            is not None
        )


def _register(
    tx: StageTx,
    run: RunRow,
    source: str,
    pulled: Pulled,
    stored: list[PurePosixPath],
    files: FileStore,
    stamp: datetime,
) -> None:
    folder = f"api/{source}/{run.connection_name}-{stamp.strftime('%Y%m%dT%H%M%S')}"
    ids: list[int] = []
    for ordinal, ((name, result), rel) in enumerate(zip(pulled, stored, strict=True)):
        original = f"{folder}/{name}"
        ids.append(register_file(tx, run, original, rel, result, stamp, ordinal))
    results = [r for _, r in pulled]
    pages, records, requests = (sum(getattr(r, a) for r in results) for a in ("pages", "rows", "requests"))
    record.add_counts(
        tx.conn,
        run.id,
        {
            "fetched_pages": pages,
            "fetched_records": records,
            "fetch_requests": requests,
            "fetch_ms": round(sum(r.duration_s for r in results) * 1000),
        },
    )
    for file_id in ids:
        route.send(tx.conn, tx.outbox, "fetch", "parse", run.id, file_id=file_id)
    tx.counts = {"pages": pages, "records": records, "requests": requests}
    for (_, result), rel in zip(pulled, stored, strict=True):
        _put(files, result.path, rel, result.sha256)
    tx.after_commit.append(lambda: log.info("fetched bundle registered", run_id=run.id, files=len(ids)))


def _put(files: FileStore, path: Path, rel: PurePosixPath, sha256: str) -> None:
    if isinstance(files, LocalStore):
        target = files.path(rel.as_posix())
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
    else:
        files.put(rel.as_posix(), path, sha256)


def register_file(
    tx: StageTx, run: RunRow, original: str, stored: PurePosixPath, result: FetchResult, stamp: datetime, ordinal: int
) -> int:
    """A pulled file as one of the run's files: in sync.feed_files (claimed; a dry run's is a preview,
    which finalize removes), sync.file_drops and sync.run_files. Returns its id."""
    row = store.fetch_one(
        tx.conn,
        """INSERT INTO sync.feed_files (connection_id, original_path, stored_path, sha256, size_bytes, file_date,
                                        status, preview)
           VALUES (%s, %s, %s, %s, %s, %s, 'claimed', %s) RETURNING id""",
        (
            run.connection_id,
            original,
            stored.as_posix(),
            result.sha256,
            result.path.stat().st_size,
            stamp.date(),
            run.dry_run,
        ),
    )
    assert row is not None
    file_id = int(row["id"])
    tx.conn.execute(
        "INSERT INTO sync.file_drops (connection_id, file_id, path, duplicate) VALUES (%s, %s, %s, false)",
        (run.connection_id, file_id, original),
    )
    tx.conn.execute(
        "INSERT INTO sync.run_files (run_id, file_id, ordinal) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
        (run.id, file_id, ordinal),
    )
    return file_id
