"""COPY of one block of whole lines into the chunk's raw table: PostgreSQL parses the CSV in C."""

from __future__ import annotations

from typing import Any

import psycopg
import structlog
from psycopg import sql

from schemas.messages import ParseFile
from workers.connectors import create_raw_chunk
from workers.files.feedreader import Block, FeedReader

log = structlog.get_logger(__name__)


class _BlockMismatch(Exception):
    """COPY read a different number of records than the block has lines (a quoted line break)."""


def copy_block(
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
