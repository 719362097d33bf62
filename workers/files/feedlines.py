"""A feed file as lines for ``csv.reader`` (workers/files/feedreader.py): decoded one by one, counted in
lines and bytes so every record's line number and byte offset are known, and any line break a file
uses (CRLF, LF, or CR alone) taken as one."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO


class RecordTooLong(Exception):
    """A record ran past ``max_lines`` lines: most likely a quote that never closes."""


class Lines:
    """Iterator of decoded lines for csv.reader, counting lines and bytes and keeping the lines of
    the record being read, so a broken record can be pushed back all but its first line."""

    __slots__ = ("_it", "bad", "encoding", "line_no", "max_lines", "offset", "pushback", "rec")

    def __init__(self, it: Iterator[bytes], encoding: str, max_lines: int, line_no: int, offset: int) -> None:
        self._it = it
        self.encoding = encoding
        self.max_lines = max_lines
        self.line_no = line_no
        self.offset = offset
        self.rec: list[tuple[bytes, str]] = []
        self.pushback: list[bytes] = []
        self.bad = False

    def __iter__(self) -> Lines:
        return self

    def __next__(self) -> str:
        raw = self.pushback.pop() if self.pushback else next(self._it)
        try:
            text = raw.decode(self.encoding)
        except UnicodeDecodeError:
            text = raw.decode(self.encoding, "replace")
            self.bad = True
        self.line_no += 1
        self.offset += len(raw)
        self.rec.append((raw, text))
        if len(self.rec) > self.max_lines:
            raise RecordTooLong
        return text

    def start_record(self) -> int:
        self.rec.clear()
        self.bad = False
        return self.line_no + 1

    def rewind_after_first_line(self) -> None:
        """Forget the broken record except its first line: the rest is read again."""
        rest = self.rec[1:]
        for raw, _ in reversed(rest):
            self.pushback.append(raw)
            self.line_no -= 1
            self.offset -= len(raw)
        self.rec.clear()


_ANY_BREAK = re.compile(rb"\r\n|\r|\n")


def universal_lines(f: BinaryIO, block: int = 1 << 20) -> Iterator[bytes]:
    """Lines split at CRLF, CR or LF, terminators kept: for files that use CR alone (old Mac
    exports) or mix line breaks. Plain LF and CRLF files take the faster ``iter(f)``."""
    tail = b""
    while data := f.read(block):
        buf = tail + data
        start = 0
        for m in _ANY_BREAK.finditer(buf):
            if m.end() == len(buf) and buf.endswith(b"\r"):
                break  # a CR at the end of the block may be the first half of a CRLF
            yield buf[start : m.end()]
            start = m.end()
        tail = buf[start:]
    if tail:
        yield tail
