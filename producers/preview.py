"""``feedsync sync CONNECTION --dry-run --file PATH``: the plan of a file that is not in the drop
dir. On a connection that imports on arrival, a file dropped to be previewed would be applied by
the watcher first; this one is copied into the store for a dry run of its own (it never waits for a
real run, and the connection's waiting files stay where they are) and removed when that run ends."""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path, PurePosixPath

from producers import registration, safefile
from schemas.settings import Settings
from schemas.states import AccessMode, TriggerType
from workers import store
from workers.files.disk import sha256_fd
from workers.files.objects import file_store
from workers.rows import ConnectionRow
from workers.runs import record
from workers.runs.create import create_run, live_connection
from workers.runs.outbox import OutboxBatch


class PreviewError(Exception):
    """A file that cannot be previewed; ``str()`` is the sentence for the admin."""


def preview(settings: Settings, name: str, path: Path, access: AccessMode = AccessMode.ONLINE) -> int:
    """Queue a dry run of ``path`` alone for connection ``name``; returns the run id."""
    if not path.is_file():
        raise PreviewError(f"{path}: no such file")
    with store.connect() as conn:
        connection = live_connection(conn, name)
    if connection is None:
        raise PreviewError(f"no connection named {name!r}; see `feedsync connections list`")
    stored_rel = PurePosixPath("previews", name, secrets.token_hex(8), path.name)
    stored = settings.store_dir / stored_rel
    stored.parent.mkdir(parents=True)
    shutil.copyfile(path, stored)
    fd = os.open(stored, os.O_RDONLY)
    try:
        digest, size = sha256_fd(fd)
    finally:
        os.close(fd)
    files = file_store(settings)
    if files.remote:  # the workers that parse it may be on other hosts
        files.put(stored_rel.as_posix(), stored, digest)
        shutil.rmtree(stored.parent)
    outbox = OutboxBatch()
    try:
        with store.connect() as conn:
            row = store.fetch_one(
                conn,
                """INSERT INTO sync.feed_files (connection_id, original_path, stored_path, sha256, size_bytes,
                                               file_date, status, preview)
                   VALUES (%s, %s, %s, %s, %s, %s, 'claimed', true) RETURNING id""",
                (connection["id"], path.name, stored_rel.as_posix(), digest, size, registration.file_date(path.name)),
            )
            assert row is not None
            run_id, _ = create_run(
                conn,
                ConnectionRow.of(connection),
                TriggerType.ON_DEMAND,
                outbox,
                access=access,
                dry_run=True,
                coalesce=False,
            )
            # Attached before the run starts: it reads this file and nothing else (workers/runs/start.py).
            conn.execute(
                "INSERT INTO sync.run_files (run_id, file_id, ordinal) VALUES (%s, %s, 0)", (run_id, row["id"])
            )
            record.note(conn, run_id, f"preview of {safefile.escaped(path.name)}: a dry run of this file alone")
    except Exception:
        shutil.rmtree(stored.parent, ignore_errors=True)
        raise
    outbox.flush()
    return run_id
