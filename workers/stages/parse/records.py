"""The Python reader's chunk source: records into a chunk's raw table, every bad row reported on
its own line and column. It reads every workbook, every CSV COPY cannot take (see
``chunks.chunk_source``), and for ``CopySource`` the blocks COPY refused or could read differently.

PostgreSQL's text cannot hold a NUL character. COPY refuses a block with a NUL byte, but the
Python reader reads one (a CSV's NUL past the sniff at the file's start, a workbook's ``_x0000_``),
so each record's mapped fields are checked here: a NUL is a row error on its line and column, not
a COPY that fails the whole file on every attempt.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from itertools import chain
from operator import itemgetter
from typing import Any

import psycopg

from schemas.messages import ParseFile
from workers.connectors import copy_statement, create_raw_chunk
from workers.files.feedreader import FeedReader, Header, RowError
from workers.files.xlsxreader import XlsxReader
from workers.stages.parse.source import ChunkSource, Staged


class RecordSource(ChunkSource):
    """Records from the reader's iterator, one chunk of ``chunk_rows`` after another; it looks one
    record ahead, so a file whose rows fill the last chunk exactly gets no empty chunk."""

    def __init__(self, msg: ParseFile, reader: FeedReader | XlsxReader, header: Header, chunk_rows: int) -> None:
        self.msg, self.reader, self.header, self.chunk_rows = msg, reader, header, chunk_rows
        self.attributes = list(header.positions)  # the attributes present in this file, in table-column order
        self._at = (header.data_offset, header.data_line)
        self._records: Iterator[Any] | None = None
        self._ahead: Any = None

    def seek(self, offset: int, line_no: int) -> None:
        self.close()
        self._at = (offset, line_no)

    def next_chunk(self) -> bool:
        if self._records is None:
            self._records = self.reader.records(self.header, offset=self._at[0], line_no=self._at[1])
        self._ahead = next(self._records, None)
        return self._ahead is not None

    def stage(self, conn: psycopg.Connection[Any], chunk_no: int) -> Staged:
        assert self._records is not None, "stage() before next_chunk()"
        first_line, good, errors, exhausted = copy_records(
            conn, self.msg, chunk_no, self.attributes, self.header, self._records, self._ahead, self.chunk_rows
        )
        self._ahead = None
        self._at = self.reader.position
        return Staged(first_line, good, errors, self._at, exhausted, "python")

    def close(self) -> None:
        """Drop the records iterator (closing the file it reads); the next chunk reads from where this one ended."""
        if isinstance(self._records, Generator):
            self._records.close()
        self._records = None


def copy_records(
    conn: psycopg.Connection[Any],
    msg: ParseFile,
    chunk_no: int,
    attributes: list[str],
    header: Header,
    records: Iterator[Any],
    ahead: Any,
    chunk_rows: int,
) -> tuple[int | None, int, list[RowError], bool]:
    """Up to chunk_rows records from the Python reader into the chunk's raw table (the mapped
    columns only): (first line, good rows, row errors, whether the file ended)."""
    positions = [header.positions[a] for a in attributes]
    project = itemgetter(*positions) if len(positions) > 1 else (lambda row: (row[positions[0]],))
    table = create_raw_chunk(conn, msg.run_id, msg.file_id, chunk_no, attributes)
    errors: list[RowError] = []
    good = 0
    first_line = None
    exhausted = False
    with conn.cursor() as cur, cur.copy(copy_statement(table, attributes)) as copy:
        for item in chain([] if ahead is None else [ahead], records):
            if isinstance(item, RowError):
                errors.append(item)
                line = item.line
            else:
                line, fields = item
                values = project(fields)
                if any("\x00" in v for v in values):
                    errors.append(nul_error(line, fields, positions, header.columns))
                else:
                    copy.write_row((line, *values))
                    good += 1
            if first_line is None:
                first_line = line
            if good + len(errors) >= chunk_rows:
                break
        else:
            exhausted = True
    return first_line, good, errors, exhausted


def nul_error(line: int, fields: list[str], positions: list[int], columns: list[str]) -> RowError:
    """The row error of a record whose mapped field at the first such position holds a NUL."""
    at = min(p for p in positions if "\x00" in fields[p])
    return RowError(
        line,
        at + 1,
        columns[at] if at < len(columns) else None,
        "nul_character",
        "the field holds a NUL character (byte 0x00), which cannot be stored; remove it from the export "
        "(it is often a sign of a binary or UTF-16 file) and drop the file again",
    )
