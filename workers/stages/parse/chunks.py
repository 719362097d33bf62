"""Chunk by chunk: each chunk commits on its own with its business key (run, file, chunk) in
sync.chunks, its row errors and its transform message, so a redelivered parse resumes after the
last committed chunk; a concurrent duplicate finds the chunk key taken and stops. The file's chunk
source (``source.ChunkSource``) is chosen once, here, by ``chunk_source``; the loop only drives it.
"""

from __future__ import annotations

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
from workers.files.feedreader import FeedReader, Header, RowError
from workers.files.xlsxreader import XlsxReader
from workers.runs import route
from workers.runs.outbox import OutboxBatch
from workers.stages.parse.blocks import Blocks, BlockSource
from workers.stages.parse.copyblock import CopySource
from workers.stages.parse.records import RecordSource
from workers.stages.parse.source import ChunkSource, Staged

log = structlog.get_logger(__name__)


def chunk_source(
    msg: ParseFile, ctx: dict[str, Any], reader: FeedReader | XlsxReader, header: Header, chunk_no: int, chunk_rows: int
) -> ChunkSource:
    """The file's source, chosen once. A CSV whose encoding and delimiter COPY reads as Python does
    goes to COPY block by block (``CopySource``), and to the kind's block stager first
    (``BlockSource``) when the kind declares one (``BLOCKS``, its extra installed) and the vector
    transform is on. The Python reader (``RecordSource``) reads the rest: a workbook; a file with two
    attributes on one column (the COPY target would need the column twice); a file as wide as a
    table may be (COPY takes every column of the file, the Python reader the mapped ones only).
    A kind with a block stager takes chunks of at most FEEDSYNC_BLOCK_ROWS rows, whatever the source."""
    stager = block_stager(ctx["kind"]) if get_settings().vector_transform else None
    if stager is not None:
        chunk_rows = min(chunk_rows, get_settings().block_rows)
    records = RecordSource(msg, reader, header, chunk_rows)
    if (
        not isinstance(reader, FeedReader)
        or reader.copy_encoding is None
        or len(set(header.positions.values())) != len(header.positions)
        or len(header.columns) >= MAX_TABLE_COLUMNS
    ):
        return records
    if stager is None:
        return CopySource(msg, reader, header, chunk_rows, records)
    columns = {a: {"column": header.columns[i], "no": i + 1} for a, i in header.positions.items()}
    chunk = Chunk(msg.run_id, msg.file_id, chunk_no, ctx["original_path"], columns)
    blocks = Blocks(reader, header, stager, connection_from_json(ctx["config"]), chunk, chunk_rows)
    return BlockSource(msg, reader, header, chunk_rows, records, blocks)


def parse_chunks(
    msg: ParseFile,
    ctx: dict[str, Any],
    reader: FeedReader | XlsxReader,
    header: Header,
    resume: dict[str, Any] | None,
    chunk_rows: int,
) -> bool:
    """Stage the file chunk by chunk from the header, or from where the last committed chunk ended;
    False when another delivery holds a chunk (it goes on with the file)."""
    chunk_no = 0 if ctx["last_chunk"] is None else ctx["last_chunk"] + 1
    source = chunk_source(msg, ctx, reader, header, chunk_no, chunk_rows)
    try:
        if resume is None:
            source.seek(header.data_offset, header.data_line)
        else:
            source.seek(resume["byte_end"], resume["last_line"])
        while True:
            more = source.next_chunk()
            if not more and chunk_no > 0:
                break  # a first chunk with no row is staged all the same: _finish_chunk says so
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
                staged = source.stage(conn, chunk_no)
                _finish_chunk(conn, msg, ctx["original_path"], chunk_no, staged)
                route.send(conn, outbox, "parse", "transform", msg.run_id, file_id=msg.file_id, chunk_no=chunk_no)
            outbox.flush()
            chunk_no += 1
            if staged.exhausted:
                break
        return True
    finally:
        source.close()


def _finish_chunk(conn: psycopg.Connection[Any], msg: ParseFile, file_name: str, chunk_no: int, staged: Staged) -> None:
    """Record a staged chunk: its row errors, and its lines, end and reader in its sync.chunks row."""
    if chunk_no == 0 and staged.first_line is None:
        raise BadFileError(
            file_name,
            "the file has a header but no data rows, so nothing was imported from it",
            "Check that the export ran completely and drop the file again",
        )
    if staged.errors:
        _insert_row_errors(conn, msg, file_name, staged.errors)
    failpoints.hit("parse.chunk")
    offset, line_no = staged.end
    conn.execute(
        """UPDATE sync.chunks SET first_line = %s, last_line = %s, byte_end = %s, rows = %s, reader = %s
           WHERE run_id = %s AND file_id = %s AND chunk_no = %s""",
        (
            staged.first_line or line_no,
            line_no,
            offset,
            staged.good + len(staged.errors),
            staged.reader,
            msg.run_id,
            msg.file_id,
            chunk_no,
        ),
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
