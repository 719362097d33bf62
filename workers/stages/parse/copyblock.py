"""The COPY chunk source: a block of whole lines goes into the chunk's raw table as it is, and
PostgreSQL parses the CSV in C. The lines of a block COPY could read differently from the Python
reader (``FeedReader.block`` says None) or refuses are read by the source's ``RecordSource``, which
reports each bad row on its own; the next chunk tries COPY again. They meet at record boundaries
(byte offset, line)."""

from __future__ import annotations

from typing import Any

import psycopg
import structlog
from psycopg import sql

from schemas.messages import ParseFile
from workers.connectors import create_raw_chunk
from workers.files.feedreader import Block, FeedReader, Header
from workers.stages.parse.records import RecordSource
from workers.stages.parse.source import ChunkSource, Staged

log = structlog.get_logger(__name__)


class _BlockMismatch(Exception):
    """COPY read a different number of records than the block has lines (a quoted line break)."""


class CopySource(ChunkSource):
    READER = "copy"

    def __init__(
        self, msg: ParseFile, reader: FeedReader, header: Header, chunk_rows: int, records: RecordSource
    ) -> None:
        self.msg, self.reader, self.header, self.chunk_rows, self.records = msg, reader, header, chunk_rows, records
        self._at = (header.data_offset, header.data_line)
        self._block: Block | None = None
        self._prepared: Any = None

    def seek(self, offset: int, line_no: int) -> None:
        self._at = (offset, line_no)

    def _read(self) -> tuple[Block | None, Any]:
        """The block at the current place, and what a block stager prepared of it (here: nothing)."""
        return self.reader.block(*self._at, self.chunk_rows), None

    def next_chunk(self) -> bool:
        self._block, self._prepared = self._read()
        if self._block is None:  # lines COPY could read differently: the Python reader's
            self.records.seek(*self._at)
            return self.records.next_chunk()
        return self._block.lines > 0  # an empty block: the end of the file

    def stage(self, conn: psycopg.Connection[Any], chunk_no: int) -> Staged:
        block = self._block
        if block is not None and block.lines == 0:
            return Staged(None, 0, [], self._at, True, "python")  # the end of the file: no row
        if block is not None:
            if copy_block(conn, self.msg, chunk_no, self.header, block, self.reader):
                return self._staged(block, self.READER)
            # Refused: the same lines go through the Python reader, which reports each bad row.
            self.records.seek(*self._at)
            self.records.next_chunk()
        staged = self.records.stage(conn, chunk_no)
        self.records.close()  # the next chunk tries COPY again
        self._at = staged.end
        return staged

    def _staged(self, block: Block, reader: str) -> Staged:
        """The block staged whole (by COPY or by a block stager)."""
        self._at = (block.end, self._at[1] + block.lines)
        return Staged(block.first_line, block.lines, [], self._at, block.lines < self.chunk_rows, reader)

    def close(self) -> None:
        self.records.close()


def copy_block(
    conn: psycopg.Connection[Any],
    msg: ParseFile,
    chunk_no: int,
    header: Header,
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
