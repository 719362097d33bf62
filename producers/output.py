"""What the CLI prints: text safe for a terminal, CSV safe for a spreadsheet.

File names, row values and messages come from HR systems and the people who name files. A name
holding an escape sequence could rewrite the admin's terminal, a bidi override could disguise it,
and a CSV cell starting with ``=`` is run as a formula by the spreadsheet that opens the error
report (OWASP "CSV injection").
"""

from __future__ import annotations

import csv
import json
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

from workers.files.cells import csv_cell

# Control (Cc), format (Cf: bidi overrides, zero-width), surrogate, private use, line and paragraph
# separators: shown as escapes, never sent to the terminal as they are.
_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})


def _escape(ch: str) -> str:
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def printable(value: object) -> str:
    """``value`` as text for a terminal: control and format characters as escapes (``\\x1b``)."""
    text = "" if value is None else str(value)
    if text.isprintable():  # the common case, at C speed
        return text
    return "".join(_escape(ch) if unicodedata.category(ch) in _UNPRINTABLE else ch for ch in text)


def printable_lines(value: object) -> str:
    """Like ``printable``, keeping line breaks (a message of several lines)."""
    return "\n".join(printable(line) for line in str(value).split("\n"))


def _json_escape(ch: str) -> str:
    code = ord(ch)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def json_text(data: Any) -> str:
    """JSON for a terminal or a pipe: non-ASCII text stays readable, but every control or format
    character inside a string is a ``\\u`` escape (json.dumps leaves C1 controls and bidi
    overrides raw). The parsed value is unchanged."""
    text = json.dumps(data, indent=2, default=str, ensure_ascii=False)
    if text.isprintable():
        return text
    # json.dumps escapes every character below U+0020 inside strings: a raw one is layout.
    return "".join(
        _json_escape(ch) if ord(ch) >= 0x20 and unicodedata.category(ch) in _UNPRINTABLE else ch for ch in text
    )


def write_csv(out: TextIO, fieldnames: list[str], rows: Iterable[Mapping[str, Any]]) -> None:
    """A CSV meant for people: every cell through ``csv_cell``."""
    w = csv.DictWriter(out, fieldnames=fieldnames, extrasaction="ignore")
    w.writeheader()
    for row in rows:
        w.writerow({k: csv_cell(row.get(k)) for k in fieldnames})
