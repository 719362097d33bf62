"""Fetch: a run of a connection with an API source (``source = "msgraph"`` or ``"salesforce"``)
pulls every page into a feed file, registers it as the run's one file, and queues its parse.

From there the run is the same run as for a dropped file: mapping, validation, row errors at the
record's line, thresholds and approval, dry run, undo, history, retention.

1. The pages are pulled outside any transaction (a pull can take minutes, and a transaction held
   that long would hold the run's gate and the connection's bookkeeping), into
   ``<store>/fetching/run-<id>/``; ``workers.sources.fetch`` writes it whole or not at all.
2. The stage's one transaction moves the file into the store (``fetched/<connection>/…``, outside
   the ``files/`` tree the intake's orphan recovery puts back into the drop dir), records it in
   ``sync.feed_files`` (SHA-256, size; ``original_path`` ``api/<source>/<connection>-<time>.csv``
   says where it came from), ``sync.file_drops`` and ``sync.run_files``, adds the fetch's pages,
   records, requests and duration to the run's counts, and queues the parse.

A fetch cut off mid-way raises FetchError (a TerminalError): the ledger fails the run with its one
sentence, no file is registered and no load ever runs, so a full feed deactivates nobody on the
strength of half a directory. A redelivered message of a fetch that already succeeded, or of a
cancelled run, pulls nothing (checked first) or throws its pull away (checked again in the
transaction).
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import PurePosixPath

import structlog
from psycopg.types.json import Jsonb

from schemas.messages import FetchRun, ParseFile
from schemas.settings import get_settings
from schemas.states import RunStatus, StageStatus
from workers import store
from workers.files.objects import FileStore, LocalStore, file_store
from workers.rows import RunRow, read_run
from workers.runs.ledger import StageTx, run_stage
from workers.sources import FetchResult, FetchSpec, fetch
from workers.sources.preview import spec_of
from workers.stages import stage_actor

log = structlog.get_logger(__name__)


@stage_actor(FetchRun)
def fetch_run(msg: FetchRun) -> None:
    settings = get_settings()
    with store.connect() as conn:
        run = read_run(conn, msg.run_id)
        done = store.fetch_one(
            conn,
            "SELECT 1 FROM sync.stage_runs WHERE run_id = %s AND stage = 'fetch' AND part = '' AND status = %s",
            (msg.run_id, StageStatus.SUCCEEDED.value),
        )
    if run is None or run.status != RunStatus.IN_PROGRESS or done is not None:
        log.info("fetch not needed: the run has ended or was fetched already", run_id=msg.run_id)
        return
    spec = spec_of(run.connection_name, run.config)
    work = settings.store_dir / "fetching" / f"run-{msg.run_id}"
    shutil.rmtree(work, ignore_errors=True)  # a pull an earlier attempt left half-way
    work.mkdir(parents=True)
    try:
        result = fetch(spec, settings, work / f"{run.connection_name}.csv")
        stored_rel = PurePosixPath(
            "fetched", run.connection_name, f"run-{msg.run_id}-{result.sha256[:16]}", f"{run.connection_name}.csv"
        )
        files = file_store(settings)
        try:
            registered = run_stage(msg, lambda tx: _register(tx, run, spec, result, files, stored_rel))
        except BaseException:
            if not _recorded(stored_rel):  # stored in a transaction that did not commit: no row names it
                files.delete(stored_rel.as_posix())
            raise
        if not registered:
            files.delete(stored_rel.as_posix())
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _recorded(stored_rel: PurePosixPath) -> bool:
    with store.connect() as conn:
        return (
            store.fetch_one(conn, "SELECT 1 FROM sync.feed_files WHERE stored_path = %s", (stored_rel.as_posix(),))
            is not None
        )


def _register(
    tx: StageTx, run: RunRow, spec: FetchSpec, result: FetchResult, files: FileStore, stored_rel: PurePosixPath
) -> None:
    now = datetime.now(UTC)
    original = f"api/{spec.source}/{run.connection_name}-{now.strftime('%Y%m%dT%H%M%S')}.csv"
    row = store.fetch_one(
        tx.conn,
        # A dry run's pull is a preview: finalize removes it, where a dropped file would wait for the
        # real run (the real run pulls again).
        """INSERT INTO sync.feed_files (connection_id, original_path, stored_path, sha256, size_bytes, file_date,
                                        status, preview)
           VALUES (%s, %s, %s, %s, %s, %s, 'claimed', %s) RETURNING id""",
        (
            run.connection_id,
            original,
            stored_rel.as_posix(),
            result.sha256,
            result.path.stat().st_size,
            now.date(),
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
        "INSERT INTO sync.run_files (run_id, file_id, ordinal) VALUES (%s, %s, 0) ON CONFLICT DO NOTHING",
        (run.id, file_id),
    )
    fetched = {
        "fetched_pages": result.pages,
        "fetched_records": result.rows,
        "fetch_requests": result.requests,
        "fetch_ms": round(result.duration_s * 1000),
    }
    tx.conn.execute("UPDATE sync.runs SET counts = counts || %s WHERE id = %s", (Jsonb(fetched), run.id))
    tx.outbox.add(tx.conn, ParseFile(run_id=run.id, file_id=file_id), f"parse:{run.id}:{file_id}")
    tx.counts = {"pages": result.pages, "records": result.rows, "requests": result.requests}
    if isinstance(files, LocalStore):
        stored = files.path(stored_rel.as_posix())
        stored.parent.mkdir(parents=True, exist_ok=True)
        os.replace(result.path, stored)
    else:
        files.put(stored_rel.as_posix(), result.path, result.sha256)
    tx.after_commit.append(lambda: log.info("fetched feed registered", run_id=run.id, file_id=file_id))
