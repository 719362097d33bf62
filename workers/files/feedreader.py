"""Streaming CSV reading with line numbers a person can find in a text editor.

The file is read as bytes, line by line, so memory stays bounded by one record and the byte offset
of every record boundary is known: a parse that is redelivered after a crash seeks to the end of
its last committed chunk instead of starting over. Each line is decoded on its own, so one line
with bytes that are not valid in the file's encoding is one row error, not a failed file.

A record whose quoted field never closes would swallow the rest of the file; a record longer than
``max_record_lines`` lines is therefore reported as an unclosed quote and reading resumes on the
line after the one where it started.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import BinaryIO

from workers.errors import BadFileError
from workers.files.feedlines import Lines, RecordTooLong, universal_lines

_SNIFF_BYTES = 65_536


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    column_no: int | None
    column_name: str | None
    code: str
    message: str
    value: str | None = None


@dataclass(frozen=True, slots=True)
class Block:
    """Whole lines of a feed that PostgreSQL's COPY (FORMAT csv) reads as ``records()`` would:
    one record per line, the first on line ``first_line``."""

    data: bytes
    first_line: int
    lines: int
    end: int  # byte offset just past the block


# Python codec name -> PostgreSQL encoding, for the encodings COPY converts exactly as Python does.
_COPY_ENCODINGS = {
    "utf-8": "UTF8",
    "utf-8-sig": "UTF8",
    "cp1250": "WIN1250",
    "cp1251": "WIN1251",
    "cp1252": "WIN1252",
    "iso8859-1": "LATIN1",
    "iso8859-2": "LATIN2",
    "iso8859-15": "LATIN9",
}


@dataclass(frozen=True, slots=True)
class Header:
    columns: list[str]
    positions: dict[str, int]  # mapped attribute -> 0-based column index
    data_offset: int  # byte offset of the first data line
    data_line: int  # line number of the header's last line


def _header_name(raw: str) -> str:
    name = raw.strip()
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = name[1:-1].strip()
    return name


def match_columns(
    label: str,
    columns: list[str],
    mapping: dict[str, str],
    optional: frozenset[str] = frozenset(),
    *,
    max_columns: int,
) -> dict[str, int]:
    """attribute -> 0-based position of its column; an optional attribute's column may be absent.

    Linear in the header's width, which is bounded first. The header's own cells are never part of
    a message: in a file without a header line they are the first person's data."""
    if len(columns) > max_columns:
        raise BadFileError(
            label,
            f"line 1: the header has more than the {max_columns} columns a feed may have",
            "Export only the columns the connection maps, or raise FEEDSYNC_MAX_COLUMNS",
        )
    first: dict[str, int] = {}
    twice: set[str] = set()
    for i, column in enumerate(columns):
        if column in first:
            twice.add(column)
        else:
            first[column] = i
    positions: dict[str, int] = {}
    missing = []
    for attribute, column in mapping.items():
        if column in first:
            positions[attribute] = first[column]
        elif attribute not in optional:
            missing.append(column)
    if missing:
        names = ", ".join(repr(m) for m in missing)
        raise BadFileError(
            label,
            f"line 1: the header lacks the mapped column{'s' if len(missing) > 1 else ''} {names} "
            f"(line 1 has {len(columns)} column{'s' if len(columns) != 1 else ''}; a file without a header "
            "line lacks them all)",
            "Add the column to the file (or a header line naming the columns), or change the connection's "
            "mapping, and drop the file again",
        )
    dupes = sorted(twice & set(mapping.values()))
    if dupes:
        raise BadFileError(
            label,
            f"line 1: the header names the mapped column {dupes[0]!r} more than once",
            "Rename or remove the extra column",
        )
    return positions


class FeedReader:
    """Reads one feed file: ``header()`` first (checks the mapping before any row), then
    ``records()`` from any record boundary."""

    def __init__(
        self,
        path: Path,
        label: str,
        *,
        encoding: str = "utf-8",
        delimiter: str = ",",
        max_record_lines: int = 200,
        max_field_chars: int = 65_536,
        max_columns: int = 500,
        opener: Callable[[], BinaryIO] | None = None,
    ) -> None:
        self.path = path
        # How the bytes are opened: the file at ``path``, or a ranged reader over the object store.
        self._open: Callable[[], BinaryIO] = opener or (lambda: path.open("rb"))
        self.label = label
        self.encoding = encoding
        self.delimiter = delimiter
        self.max_record_lines = max_record_lines
        self.max_field_chars = max_field_chars
        self.max_columns = max_columns
        self._mixed_breaks = False
        self._bom = 0
        # A quote with ordinary characters on both sides: neither a field's opening or closing quote
        # nor half of a doubled one. Searched from the quote itself, which is fast.
        d = re.escape(delimiter.encode())
        self._stray_quote = re.compile(b'"(?<=[^' + d + b'"\n]")[^' + d + b'"\r\n]')

    # -- file-level checks -------------------------------------------------------------------
    def _sniff(self, f: BinaryIO) -> None:
        head = f.read(_SNIFF_BYTES)
        f.seek(0)
        fix_csv = "Export the data again as a CSV text file (UTF-8) and drop it again"
        if not head:
            raise BadFileError(self.label, "the file is empty (0 bytes)", fix_csv + " with a header line")
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            raise BadFileError(self.label, "the file is UTF-16 encoded", "Save it as CSV UTF-8 and drop it again")
        if head.startswith(b"PK\x03\x04"):
            raise BadFileError(self.label, "the file is a ZIP archive or an Excel workbook, not a CSV file", fix_csv)
        nul = head.find(b"\x00")
        if nul >= 0:
            raise BadFileError(
                self.label,
                f"the file holds binary data (a NUL byte at byte {nul + 1}), so it is not a CSV file",
                fix_csv,
            )
        if self.encoding.replace("-", "").replace("_", "").lower() in {"utf8", "utf8sig"} and head.startswith(
            codecs.BOM_UTF8
        ):
            self._bom = len(codecs.BOM_UTF8)
        # A CR not followed by LF means CR-only or mixed line breaks (the sniff may cut a CRLF).
        self._mixed_breaks = re.search(rb"\r(?!\n)", head[:-1]) is not None

    def _lines_from(self, f: BinaryIO, offset: int) -> Iterator[bytes]:
        f.seek(offset)
        return universal_lines(f) if self._mixed_breaks else iter(f)

    def _csv(self, lines: Lines) -> Iterator[list[str]]:
        return csv.reader(lines, delimiter=self.delimiter, strict=True)

    def header(self, mapping: dict[str, str], optional: frozenset[str] = frozenset()) -> Header:
        """Read and check the header: every mapped column must be there (but the ``optional``
        attributes'), before any row is read."""
        csv.field_size_limit(self.max_field_chars)
        with self._open() as f:
            self._sniff(f)
            lines = Lines(self._lines_from(f, self._bom), self.encoding, self.max_record_lines, 0, self._bom)
            lines.start_record()
            try:
                columns = next(self._csv(lines))
            except StopIteration:
                raise BadFileError(
                    self.label, "the file has no header line", "Add a header line naming the columns"
                ) from None
            except (csv.Error, RecordTooLong) as exc:
                raise BadFileError(
                    self.label,
                    f"line 1: the header line cannot be read as CSV ({exc or 'unclosed quote'})",
                    "Fix the header line so it lists the column names separated by the delimiter",
                ) from None
            if lines.bad:
                raise BadFileError(
                    self.label,
                    f"line 1: the header is not valid {self.encoding}",
                    f"Save the file as {self.encoding} or set encoding on the connection",
                )
            # A space before a quoted name (`a, "b"`) leaves the quotes in the field; they are not
            # part of the name (Totara's own fixtures have such headers).
            stripped = [_header_name(c) for c in columns]
            positions = match_columns(self.label, stripped, mapping, optional, max_columns=self.max_columns)
            return Header(stripped, positions, lines.offset, lines.line_no)

    # -- records -------------------------------------------------------------------------------
    def records(
        self, header: Header, *, offset: int | None = None, line_no: int | None = None
    ) -> Iterator[tuple[int, list[str]] | RowError]:
        """Yield (line, fields) for each good record and RowError for each bad one.

        ``position`` after each yield is the (byte offset, line number) just past that record.
        """
        csv.field_size_limit(self.max_field_chars)
        start = header.data_offset if offset is None else offset
        lines_seen = header.data_line if line_no is None else line_no
        ncols = len(header.columns)
        with self._open() as f:
            lines = Lines(self._lines_from(f, start), self.encoding, self.max_record_lines, lines_seen, start)
            self._lines = lines
            reader = self._csv(lines)
            while True:
                first = lines.start_record()
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except RecordTooLong:
                    lines.rewind_after_first_line()
                    reader = self._csv(lines)
                    yield RowError(
                        first,
                        None,
                        None,
                        "unclosed_quote",
                        f"a quoted field starting on this line does not close within {self.max_record_lines} "
                        'lines; add the missing double quote (") or remove the stray one',
                    )
                    continue
                except csv.Error as exc:
                    text = str(exc)
                    lines.rewind_after_first_line()
                    reader = self._csv(lines)
                    if "field larger than field limit" in text:
                        yield RowError(
                            first,
                            None,
                            None,
                            "field_too_large",
                            f"a field is longer than {self.max_field_chars} characters; shorten it "
                            "(or raise FEEDSYNC_MAX_FIELD_CHARS)",
                        )
                    elif "unexpected end of data" in text or "EOF" in text:
                        yield RowError(
                            first,
                            None,
                            None,
                            "unclosed_quote",
                            "a quoted field starting on this line is not closed before the end of the file; "
                            'add the missing double quote (") or remove the stray one',
                        )
                    else:
                        yield RowError(
                            first,
                            None,
                            None,
                            "malformed_csv",
                            f"the line is not valid CSV ({text}); quote fields that contain the delimiter, "
                            "a quote or a line break",
                        )
                    continue
                if not row:
                    continue  # a blank line carries no record
                if lines.bad:
                    col = next((i for i, v in enumerate(row) if "\ufffd" in v), None)
                    yield RowError(
                        first,
                        None if col is None else col + 1,
                        None if col is None or col >= ncols else header.columns[col],
                        "bad_encoding",
                        f"the line holds bytes that are not valid {self.encoding}; save the file as "
                        f"{self.encoding} (or set encoding on the connection to the file's real encoding)",
                    )
                    continue
                if len(row) != ncols:
                    yield RowError(
                        first,
                        None,
                        None,
                        "field_count",
                        f"the line has {len(row)} fields but the header has {ncols}; quote fields that contain "
                        f"the delimiter {self.delimiter!r}, or add the missing fields",
                    )
                    continue
                yield first, row

    @property
    def position(self) -> tuple[int, int]:
        return self._lines.offset, self._lines.line_no

    # -- blocks for COPY ---------------------------------------------------------------------------
    @property
    def copy_encoding(self) -> str | None:
        """The PostgreSQL name of the file's encoding when blocks can be handed to COPY, else None."""
        if self._mixed_breaks or len(self.delimiter.encode()) != 1 or self.delimiter in '"\r\n':
            return None
        return _COPY_ENCODINGS.get(codecs.lookup(self.encoding).name)

    def block(self, offset: int, line_no: int, max_lines: int) -> Block | None:
        """Up to ``max_lines`` lines from ``offset`` (just past line ``line_no``) as one block for COPY,
        or None when COPY could read them differently from ``records()``: a field longer than the
        limit, a quoted field spanning lines, a blank line, or a quote inside an unquoted field
        (``Robert "Bob" Smith``: COPY would drop the quotes, the csv module keeps them). The
        caller then reads those lines with ``records()``, which reports each such row on its own.
        An empty block means the end of the file."""
        with self._open() as f:
            f.seek(offset)
            lines = list(islice(f, max_lines))
        data = b"".join(lines)
        if not lines:
            return Block(data, line_no + 1, 0, offset)
        if (
            max(map(len, lines)) > self.max_field_chars
            or data.count(b'"') % 2
            or not lines[0].strip()
            or b"\n\n" in data
            or b"\n\r\n" in data
            or self._stray_quote.search(data)
        ):
            return None
        return Block(data, line_no + 1, len(lines), offset + len(data))
