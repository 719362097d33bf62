"""Parse: stream one file into per-chunk staging tables with COPY, chunk by chunk.

The header is checked against the mapping before any row is read. Each chunk commits on its own
with its business key (run, file, chunk) in sync.chunks, its row errors and its transform
message, so a redelivered parse resumes after the last committed chunk; a concurrent duplicate
finds the chunk key taken and stops.
"""

from __future__ import annotations

import contextlib
import errno
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import psycopg
import structlog
from psycopg import sql
from psycopg.types.json import Jsonb

from schemas.kinds import Connection, KindConfig, config_as, connection_from_json
from schemas.messages import ParseFile
from schemas.providers import FileNameProblem, FileSpec
from schemas.settings import get_settings
from workers import failpoints, store
from workers.connectors import MAX_TABLE_COLUMNS, block_stager, create_raw_chunk, import_kind
from workers.connectors.checks import Chunk
from workers.errors import BadFileError, TransientError
from workers.files.feedreader import Block, FeedReader, RowError
from workers.files.objects import Changed, FileStore, Missing, file_store
from workers.files.xlsxreader import XlsxReader
from workers.runs import route
from workers.runs.outbox import OutboxBatch
from workers.runs.stage import StageTx, run_stage
from workers.stages import stage_actor
from workers.stages.blocks import Blocks
from workers.stages.records import copy_records

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
            finished = _parse_chunks(msg, ctx, reader, header, resume, settings.chunk_rows)
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


def _parse_chunks(
    msg: ParseFile,
    ctx: dict[str, Any],
    reader: FeedReader | XlsxReader,
    header: Any,
    resume: dict[str, Any] | None,
    chunk_rows: int,
) -> bool:
    """Chunk by chunk: a block of whole lines is staged by the kind itself when it can (users:
    validated in the worker, one COPY of typed rows), else goes to COPY (FORMAT csv) as it is, so
    PostgreSQL parses it in C; a block COPY could read differently or refuses is read by the Python
    reader, which reports each bad row on its own. They meet at record boundaries (byte offset, line)."""
    attributes = list(header.positions)  # the attributes present in this file, in table-column order
    chunk_no = 0 if ctx["last_chunk"] is None else ctx["last_chunk"] + 1
    offset, line_no = (
        (header.data_offset, header.data_line) if resume is None else (resume["byte_end"], resume["last_line"])
    )
    # Two attributes on one column would need the column twice in the COPY target; COPY takes every
    # column of the file, so a file wider than a table may be goes to the Python reader, which keeps
    # the mapped columns only.
    copier = (
        reader
        if isinstance(reader, FeedReader)
        and reader.copy_encoding is not None
        and len(set(header.positions.values())) == len(attributes)
        and len(header.columns) < MAX_TABLE_COLUMNS
        else None
    )
    stager = block_stager(ctx["kind"]) if copier is not None and get_settings().vector_transform else None
    blocks = None
    if stager is not None and copier is not None:
        columns = {a: {"column": header.columns[i], "no": i + 1} for a, i in header.positions.items()}
        chunk = Chunk(msg.run_id, msg.file_id, chunk_no, ctx["original_path"], columns)
        blocks = Blocks(copier, header, stager, connection_from_json(ctx["config"]), chunk, chunk_rows)
    try:
        return _chunk_loop(msg, ctx, reader, header, copier, blocks, chunk_no, offset, line_no, chunk_rows)
    finally:
        if blocks is not None:
            blocks.close()


def _chunk_loop(
    msg: ParseFile,
    ctx: dict[str, Any],
    reader: FeedReader | XlsxReader,
    header: Any,
    copier: FeedReader | None,
    blocks: Blocks | None,
    chunk_no: int,
    offset: int,
    line_no: int,
    chunk_rows: int,
) -> bool:
    attributes = list(header.positions)  # the attributes present in this file, in table-column order
    records: Iterator[Any] | None = None  # the Python reader's, while it is in use
    while True:
        block, prepared = _next_block(blocks, copier, offset, line_no, chunk_rows)
        if block is not None and block.lines == 0:
            if chunk_no > 0:
                break
            block = None  # a header and nothing else: the Python reader says so below
        ahead = None
        if block is None:
            if records is None:
                records = reader.records(header, offset=offset, line_no=line_no)
            # Look one record ahead, so a file whose rows fill the last chunk exactly gets no empty chunk.
            ahead = next(records, None)
            if ahead is None and chunk_no > 0:
                break
        outbox = OutboxBatch()
        with store.connect() as conn:
            claimed = conn.execute(
                """INSERT INTO sync.chunks (run_id, file_id, chunk_no, first_line, last_line, byte_end, rows)
                   VALUES (%s, %s, %s, 0, 0, 0, 0) ON CONFLICT DO NOTHING""",
                (msg.run_id, msg.file_id, chunk_no),
            ).rowcount
            if not claimed:
                log.info("another delivery is parsing this file; stopping", chunk_no=chunk_no)
                return False
            staged = blocks.write(conn, chunk_no, prepared) if blocks is not None and prepared is not None else None
            if (
                staged is None
                and block is not None
                and copier is not None
                and not _copy_block(conn, msg, chunk_no, header, block, copier)
            ):
                # Refused: the same lines go through the Python reader, which reports each bad row.
                records = reader.records(header, offset=offset, line_no=line_no)
                ahead = next(records, None)
                block = None
            first_line: int | None
            errors: list[RowError] = []
            if block is not None:
                first_line, good = block.first_line, block.lines
                offset, line_no = block.end, line_no + block.lines
                exhausted = block.lines < chunk_rows
            else:
                assert records is not None
                first_line, good, errors, exhausted = copy_records(
                    conn, msg, chunk_no, attributes, header, records, ahead, chunk_rows
                )
                offset, line_no = reader.position
                if copier is not None:
                    records = None  # the next chunk tries COPY again
            read_by = "python" if block is None else "copy" if staged is None else "arrow"
            _finish_chunk(
                conn, msg, ctx["original_path"], chunk_no, (first_line, line_no, offset), good, errors, read_by
            )
            route.send(conn, outbox, "parse", "transform", msg.run_id, file_id=msg.file_id, chunk_no=chunk_no)
        outbox.flush()
        chunk_no += 1
        if exhausted:
            break
    return True


def _next_block(
    blocks: Blocks | None, copier: FeedReader | None, offset: int, line_no: int, chunk_rows: int
) -> tuple[Block | None, Any]:
    """The next block for COPY, with what the block stager prepared of it (if the kind has one);
    no block where only the Python reader reads the file."""
    if blocks is not None:
        return blocks.get(offset, line_no)
    return (copier.block(offset, line_no, chunk_rows) if copier is not None else None), None


def _finish_chunk(
    conn: psycopg.Connection[Any],
    msg: ParseFile,
    file_name: str,
    chunk_no: int,
    lines: tuple[int | None, int, int],
    good: int,
    errors: list[RowError],
    read_by: str,
) -> None:
    """Record a staged chunk: its row errors, and its lines, end and reader in its sync.chunks row.
    ``lines``: the chunk's first line (None: it had no row), the last line read and the byte offset after it."""
    first_line, line_no, offset = lines
    if chunk_no == 0 and first_line is None:
        raise BadFileError(
            file_name,
            "the file has a header but no data rows, so nothing was imported from it",
            "Check that the export ran completely and drop the file again",
        )
    if errors:
        _insert_row_errors(conn, msg, file_name, errors)
    failpoints.hit("parse.chunk")
    conn.execute(
        """UPDATE sync.chunks SET first_line = %s, last_line = %s, byte_end = %s, rows = %s, reader = %s
           WHERE run_id = %s AND file_id = %s AND chunk_no = %s""",
        (first_line or line_no, line_no, offset, good + len(errors), read_by, msg.run_id, msg.file_id, chunk_no),
    )


class _BlockMismatch(Exception):
    """COPY read a different number of records than the block has lines (a quoted line break)."""


def _insert_row_errors(conn: psycopg.Connection[Any], msg: ParseFile, file_name: str, errors: list[RowError]) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO sync.row_errors (run_id, file_id, file_name, line, column_no, column_name,
                                            code, message, value, rejected)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, true)""",
            [
                (msg.run_id, msg.file_id, file_name, e.line, e.column_no, e.column_name, e.code, e.message, e.value)
                for e in errors
            ],
        )


def _copy_block(
    conn: psycopg.Connection[Any],
    msg: ParseFile,
    chunk_no: int,
    header: Any,
    block: Block,
    reader: FeedReader,
) -> bool:
    """COPY one block into the chunk's raw table, every column of the file (COPY cannot skip one),
    the mapped ones named by their attribute. False, with nothing left behind, when COPY refuses
    the block or reads a record across lines."""
    names = {i: a for a, i in header.positions.items()}
    columns = [names.get(i, f"_c{i + 1}") for i in range(len(header.columns))]
    try:
        with conn.transaction():
            table = create_raw_chunk(conn, msg.run_id, msg.file_id, chunk_no, columns, first_line=block.first_line)
            idents = sql.SQL(", ").join(map(sql.Identifier, columns))
            with conn.cursor() as cur:
                # FORCE_NOT_NULL: an empty field is '' as from the Python reader, not NULL.
                with cur.copy(
                    sql.SQL(
                        "COPY {t} ({cols}) FROM STDIN "
                        "(FORMAT csv, DELIMITER {d}, ENCODING {e}, FORCE_NOT_NULL ({cols}))"
                    ).format(t=table, cols=idents, d=sql.Literal(reader.delimiter), e=sql.Literal(reader.copy_encoding))
                ) as copy:
                    copy.write(block.data)
                if cur.rowcount != block.lines:
                    raise _BlockMismatch
    # DataError covers what COPY refuses: a bad field count or quote (BadCopyFileFormat), bad bytes.
    except (psycopg.errors.DataError, _BlockMismatch) as exc:
        log.info("block read by the Python reader instead of COPY", chunk_no=chunk_no, reason=type(exc).__name__)
        return False
    return True


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
