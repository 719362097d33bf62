"""Blocks of a CSV feed in the worker, with pyarrow: read as the line reader would read them, and
written to PostgreSQL by one COPY. Kinds that stage a clean block themselves (``BlockStager``:
users, xapi) share these; each maps and validates its own columns."""

from __future__ import annotations

import codecs
import io
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from psycopg import sql

from schemas.settings import get_settings
from workers.connectors.contract import RawBlock

# Control characters other than tab and line breaks: jsonb needs them escaped as \\uXXXX, which
# the escaping below does not do; such a (rare) block takes the SQL path. (bytes.translate that
# deletes them is three times faster than a regex search over the block.)
_CONTROL = bytes(range(0x00, 0x09)) + b"\x0b\x0c" + bytes(range(0x0E, 0x20))
_JSON_ESCAPES = [("\\", "\\\\"), ('"', '\\"'), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r")]


def _memory_pool(name: str) -> pa.MemoryPool:
    """The pool FEEDSYNC_ARROW_MEMORY_POOL names; the system's where pyarrow was built without it."""
    try:
        return {"jemalloc": pa.jemalloc_memory_pool, "mimalloc": pa.mimalloc_memory_pool}[name]()
    except (KeyError, NotImplementedError):
        return pa.system_memory_pool()


# At import, before any block is read.
pa.set_memory_pool(_memory_pool(get_settings().arrow_memory_pool))


def read_block(block: RawBlock) -> pa.Table | None:
    """The block's mapped columns as text, exactly as the line reader would read them, or None."""
    if len(block.data.translate(None, _CONTROL)) != len(block.data):
        return None
    names = [f"c{i}" for i in range(block.columns)]
    encoding = codecs.lookup(block.encoding).name
    # UTF-8 is read natively (and checked); other encodings are decoded by Python's codec.
    encoding = "utf8" if encoding in ("utf-8", "utf-8-sig") else encoding
    wanted = sorted(set(block.positions.values()))
    try:
        table = pa_csv.read_csv(
            io.BytesIO(block.data),
            # One thread, one block: a chunk is small, and the parse's other thread prepares the next.
            read_options=pa_csv.ReadOptions(
                column_names=names, encoding=encoding, use_threads=False, block_size=len(block.data) + 1
            ),
            parse_options=pa_csv.ParseOptions(
                delimiter=block.delimiter,
                quote_char='"',
                double_quote=True,
                escape_char=False,
                newlines_in_values=True,
                ignore_empty_lines=False,
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types={names[i]: pa.string() for i in wanted},
                include_columns=[names[i] for i in wanted],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    # Never the exception's text in a log: pyarrow quotes the row it could not read.
    except (pa.ArrowException, UnicodeDecodeError):
        return None
    if table.num_rows != block.lines:
        return None
    return table


def json_string(values: pa.Array) -> pa.Array:
    """Each value as a JSON string literal, NULL as null."""
    out = values
    for plain, escaped in _JSON_ESCAPES:
        if pc.any(pc.match_substring(out, plain)).as_py():  # seldom: a search is cheaper than a copy
            out = pc.replace_substring(out, plain, escaped)
    quoted = pc.binary_join_element_wise('"', out, '"', "")
    return pc.fill_null(quoted, "null")


def copy_csv(conn: psycopg.Connection[Any], table: sql.Composed, rows: pa.Table) -> None:
    """COPY rows into table as CSV written straight into the COPY, never whole in memory. Strings
    are always quoted, NULLs never: COPY reads "" as '' and an empty field as NULL."""
    columns = sql.SQL(", ").join(map(sql.Identifier, rows.column_names))
    with (
        conn.cursor() as cur,
        cur.copy(sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(table, columns)) as copy,
    ):
        pa_csv.write_csv(rows, _CopyFile(copy), pa_csv.WriteOptions(include_header=False))


class _CopyFile(io.RawIOBase):
    """A COPY as a file pyarrow writes CSV to."""

    def __init__(self, copy: Any) -> None:
        self._copy = copy

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._copy.write(bytes(data))
        return len(data)
