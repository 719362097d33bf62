"""The parse stage's actor: one file of a run, its stored bytes checked, its header checked
against the mapping before any row is read, then staged chunk by chunk (``chunks``); a bad file is
rejected on its own, and the last file parsed moves the run on (the fan-in in workers/runs/route.py).
"""

from __future__ import annotations

import contextlib
import errno
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import structlog
from psycopg.types.json import Jsonb

from schemas.kinds import Connection, KindConfig, config_as, connection_from_json
from schemas.messages import ParseFile
from schemas.providers import FileNameProblem, FileSpec
from schemas.settings import get_settings
from workers import store
from workers.connectors import import_kind
from workers.errors import BadFileError, TransientError
from workers.files.feedreader import FeedReader
from workers.files.objects import Changed, FileStore, Missing, file_store
from workers.files.xlsxreader import XlsxReader
from workers.runs import route
from workers.runs.stage import StageTx, run_stage
from workers.stages import stage_actor
from workers.stages.parse.chunks import parse_chunks

log = structlog.get_logger(__name__)


@stage_actor(ParseFile)
def parse_file(msg: ParseFile) -> None:
    settings = get_settings()
    with store.connect() as conn:
        ctx = store.fetch_one(
            conn,
            """SELECT r.kind, r.config, f.original_path, f.stored_path, f.sha256, rf.status AS file_status,
                      (SELECT max(chunk_no) FROM sync.chunks c WHERE c.run_id = rf.run_id AND c.file_id = rf.file_id)
                        AS last_chunk
               FROM sync.run_files rf JOIN sync.runs r ON r.id = rf.run_id JOIN sync.feed_files f ON f.id = rf.file_id
               WHERE rf.run_id = %s AND rf.file_id = %s""",
            (msg.run_id, msg.file_id),
        )
        if ctx is None:
            raise TransientError(f"file {msg.file_id} is not part of run {msg.run_id} yet")
        resume = None
        if ctx["last_chunk"] is not None:
            resume = store.fetch_one(
                conn,
                "SELECT byte_end, last_line FROM sync.chunks WHERE run_id = %s AND file_id = %s AND chunk_no = %s",
                (msg.run_id, msg.file_id, ctx["last_chunk"]),
            )
    if ctx["file_status"] != "pending":
        return
    label = ctx["original_path"]
    config = connection_from_json(ctx["config"])
    files = file_store(settings)
    try:
        try:
            spec = import_kind(ctx["kind"]).file_spec(config, PurePosixPath(label).name)
        except FileNameProblem as exc:
            raise BadFileError(label, str(exc), "Rename the file and drop it again") from None
        with _stored_copy(files, spec, ctx, label, resume is None) as (opener, local):
            reader = _reader(spec, opener, local, label, config)
            header = reader.header(spec.columns, spec.optional)
            columns = {a: {"column": header.columns[i], "no": i + 1} for a, i in header.positions.items()}
            with store.connect() as conn:
                conn.execute(
                    "UPDATE sync.run_files SET columns = %s WHERE run_id = %s AND file_id = %s",
                    (Jsonb(columns), msg.run_id, msg.file_id),
                )
            finished = parse_chunks(msg, ctx, reader, header, resume, settings.chunk_rows)
    except BadFileError as exc:
        _reject_file(msg, str(exc))
        return
    if finished:
        _finish_file(msg)


@contextlib.contextmanager
def _stored_copy(
    files: FileStore, spec: FileSpec, ctx: dict[str, Any], label: str, fresh: bool
) -> Iterator[tuple[Callable[[], BinaryIO], Path | None]]:
    """How the stored bytes are opened, checked to be the bytes registered: all of them read and hashed
    before the first chunk (``fresh``); a resumed parse checks the object's recorded SHA-256 and
    pins its version (ETag) instead, and reads from its offset only. A workbook from the object store
    is copied to a temporary file first (a zip is read from its end)."""
    key, sha256 = ctx["stored_path"], ctx["sha256"]
    gone = "the file is no longer where feedsync stored it (processed feeds are removed after their run)"
    try:
        if fresh:
            files.verify(key, sha256)
        files.open(key, sha256).close()
        if spec.format == "xlsx" and files.remote:
            with tempfile.NamedTemporaryFile(prefix="feedsync-", suffix=".xlsx") as tmp:
                with files.open(key, sha256) as f:
                    shutil.copyfileobj(f, tmp, 1 << 20)
                tmp.flush()
                copy = Path(tmp.name)

                def reopen() -> BinaryIO:
                    return copy.open("rb")

                yield reopen, copy
            return
    except Missing:
        raise BadFileError(label, gone, "Drop the file again") from None
    except Changed:
        raise BadFileError(
            label,
            "the stored file changed after feedsync took it (its SHA-256 no longer matches); nothing of it is imported",
            "Drop the file again",
        ) from None
    except IsADirectoryError:
        raise BadFileError(label, "the stored file cannot be opened as a plain file", "Drop the file again") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise BadFileError(
                label, "the stored file cannot be opened as a plain file", "Drop the file again"
            ) from None
        raise
    yield (lambda: files.open(key, sha256)), (None if files.remote else get_settings().stored_file(key))


def _reader(
    spec: FileSpec, opener: Callable[[], BinaryIO], local: Path | None, label: str, config: KindConfig
) -> FeedReader | XlsxReader:
    settings = get_settings()
    if spec.format == "xlsx":
        assert local is not None  # a workbook from the object store is copied to a temporary file first
        return XlsxReader(local, label, settings, dates=spec.dates)
    connection = config_as(Connection, config)
    return FeedReader(
        Path(label),
        label,
        encoding=spec.encoding or connection.encoding,
        delimiter=spec.delimiter or connection.delimiter,
        max_record_lines=settings.max_record_lines,
        max_field_chars=settings.max_field_chars,
        max_columns=settings.max_columns,
        opener=opener,
    )


def _finish_file(msg: ParseFile) -> None:
    def body(tx: StageTx) -> None:
        totals = store.fetch_one(
            tx.conn,
            "SELECT count(*) AS chunks, coalesce(sum(rows), 0) AS rows FROM sync.chunks "
            "WHERE run_id = %s AND file_id = %s",
            (msg.run_id, msg.file_id),
        )
        assert totals is not None
        tx.conn.execute(
            """UPDATE sync.run_files SET status = 'parsed', chunks = %s, rows_read = %s
               WHERE run_id = %s AND file_id = %s AND status = 'pending'""",
            (totals["chunks"], totals["rows"], msg.run_id, msg.file_id),
        )
        tx.counts = {"chunks": int(totals["chunks"]), "rows": int(totals["rows"])}
        tx.after_success.append(lambda t: route.advance_if_ready(t.conn, msg.run_id, t.outbox, frm="parse"))

    run_stage(msg, body)


def _reject_file(msg: ParseFile, error: str) -> None:
    """A bad file: nothing of it is imported; the run goes on with its other files."""
    log.warning("file rejected", error=error)

    def body(tx: StageTx) -> None:
        f = store.fetch_one(tx.conn, "SELECT original_path FROM sync.feed_files WHERE id = %s", (msg.file_id,))
        assert f is not None
        tx.conn.execute(
            """UPDATE sync.run_files SET status = 'rejected', error = %s, chunks = 0, rows_read = 0
               WHERE run_id = %s AND file_id = %s AND status = 'pending'""",
            (error, msg.run_id, msg.file_id),
        )
        tx.conn.execute(
            """INSERT INTO sync.row_errors (run_id, file_id, file_name, code, message, rejected)
               VALUES (%s, %s, %s, 'bad_file', %s, false)""",
            (msg.run_id, msg.file_id, f["original_path"], error),
        )
        tx.counts = {"rejected_file": 1}
        tx.after_success.append(lambda t: route.advance_if_ready(t.conn, msg.run_id, t.outbox, frm="parse"))

    run_stage(msg, body)
