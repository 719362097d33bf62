"""Chunk by chunk: each chunk commits on its own with its business key (run, file, chunk) in
sync.chunks, its row errors and its transform message, so a redelivered parse resumes after the
last committed chunk; a concurrent duplicate finds the chunk key taken and stops. A chunk is read
by one of three readers, chosen per block: the kind's block stager (``blocks``: xapi's pyarrow
path), COPY of the block as it is (``copyblock``), or the Python reader (``records``), which reads
every block the others refuse or could read differently and reports each bad row on its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import structlog

from schemas.kinds import connection_from_json
from schemas.messages import ParseFile
from schemas.settings import get_settings
from workers import failpoints, store
from workers.connectors import MAX_TABLE_COLUMNS, block_stager
from workers.connectors.checks import Chunk
from workers.errors import BadFileError
from workers.files.feedreader import Block, FeedReader, RowError
from workers.files.xlsxreader import XlsxReader
from workers.runs import route
from workers.runs.outbox import OutboxBatch
from workers.stages.parse.blocks import Blocks
from workers.stages.parse.copyblock import copy_block
from workers.stages.parse.records import copy_records

log = structlog.get_logger(__name__)


def parse_chunks(
    msg: ParseFile,
    ctx: dict[str, Any],
    reader: FeedReader | XlsxReader,
    header: Any,
    resume: dict[str, Any] | None,
    chunk_rows: int,
) -> bool:
    """Chunk by chunk: a block of whole lines is staged by the kind itself when it can (xapi:
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
                and not copy_block(conn, msg, chunk_no, header, block, copier)
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
