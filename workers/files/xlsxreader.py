"""Streaming XLSX reading that a hostile workbook cannot turn into unbounded memory or time.

Before openpyxl parses anything, the container is checked: an encrypted (password-protected) or
legacy workbook is an OLE file, not a zip; a zip bomb shows in its members' declared sizes (and
zipfile never inflates a member past its declared size, failing on the CRC instead). Then the
workbook is opened in openpyxl's read-only mode, which parses the sheet as a stream: only the shared
strings are held in memory, and their size is capped too. The sheet count, the declared dimension
and, while streaming, the real row count are bounded by settings.

The interface is FeedReader's: ``header`` then ``records`` yielding (row number, fields) with the
Excel row number as the line, and ``position`` (row, row) for resuming after a committed chunk.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from openpyxl.utils.datetime import from_excel
from openpyxl.utils.exceptions import CellCoordinatesException, InvalidFileException

from schemas.settings import Settings
from workers.errors import BadFileError
from workers.files.feedreader import Header, RowError, match_columns

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_BOMB_MIN_BYTES = 1 << 20  # a small part may compress very well without being a bomb
EXCEL_MAX_ROWS = 1_048_576

#: What openpyxl raises for a workbook whose parts are broken, all meaning "this file is malformed":
#: XML that does not parse (ElementTree's ParseError and lxml's XMLSyntaxError are SyntaxErrors), a
#: cell whose value does not fit its type (ValueError, e.g. text in a number cell), a reference to a
#: shared string, style or part that is not there (KeyError, IndexError), a missing workbook part
#: (IOError), a broken zip member. Their text may quote a cell's value, so it is never shown.
MALFORMED: tuple[type[BaseException], ...] = (
    SyntaxError,
    ValueError,
    LookupError,
    TypeError,
    AttributeError,
    OSError,
    EOFError,
    zlib.error,
    zipfile.BadZipFile,
    InvalidFileException,
    CellCoordinatesException,
)


class XlsxReader:
    def __init__(self, path: Path, label: str, settings: Settings, dates: frozenset[str] = frozenset()) -> None:
        self.path = path
        self.label = label
        self.settings = settings
        self.dates = dates  # attributes whose numbers are Excel serial dates
        self._row = 0
        self._wb: Any = None

    # -- checks before parsing ------------------------------------------------------------------
    def _bad(self, problem: str, fix: str) -> BadFileError:
        return BadFileError(self.label, problem, fix)

    def _check_container(self) -> None:
        with open(self.path, "rb") as f:
            magic = f.read(8)
        if magic == _OLE_MAGIC:
            raise self._bad(
                "the workbook is password-protected (encrypted) or in the old .xls format, so it cannot be read",
                "Remove the password (or save it as an .xlsx workbook) and drop it again",
            )
        if not zipfile.is_zipfile(self.path):
            raise self._bad(
                "the file is not an .xlsx workbook (it is not a zip container) or it is corrupt",
                "Export the report again as .xlsx and drop it again",
            )
        s = self.settings
        try:
            with zipfile.ZipFile(self.path) as z:
                infos = z.infolist()
                names = {i.filename for i in infos}
                total = sum(i.file_size for i in infos)
                limit = s.xlsx_max_unpacked_mb << 20
                if total > limit:
                    raise self._bad(
                        f"the workbook unpacks to {total >> 20} MB, more than the {s.xlsx_max_unpacked_mb} MB allowed "
                        "(a zip bomb, or a report far larger than usual)",
                        "Export a shorter period, or raise FEEDSYNC_XLSX_MAX_UNPACKED_MB if the file is genuine",
                    )
                for i in infos:
                    if i.file_size > _BOMB_MIN_BYTES and i.file_size > s.xlsx_max_ratio * max(i.compress_size, 1):
                        raise self._bad(
                            f"the part {i.filename} unpacks {i.file_size // max(i.compress_size, 1)} times larger "
                            f"than it is stored (more than {s.xlsx_max_ratio}): a zip bomb",
                            "Do not import this file; export the report again from the provider",
                        )
                strings = next((i for i in infos if i.filename.lower() == "xl/sharedstrings.xml"), None)
                if strings is not None and strings.file_size > s.xlsx_max_shared_strings_mb << 20:
                    raise self._bad(
                        f"the workbook's shared strings unpack to {strings.file_size >> 20} MB, more than the "
                        f"{s.xlsx_max_shared_strings_mb} MB held in memory while reading",
                        "Export a shorter period, or raise FEEDSYNC_XLSX_MAX_SHARED_STRINGS_MB",
                    )
                if "xl/workbook.xml" not in names:
                    raise self._bad(
                        "the zip holds no workbook (xl/workbook.xml is missing): it is not an .xlsx file",
                        "Export the report again as .xlsx and drop it again",
                    )
                bad = z.testzip() if total <= 64 << 20 else None  # a cheap CRC check for ordinary sizes
                if bad is not None:
                    raise self._bad(
                        f"the workbook is corrupt (the part {bad} fails its checksum)", "Export the report again"
                    )
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise self._bad(f"the workbook is corrupt ({exc})", "Export the report again and drop it again") from None

    def _malformed(self, where: str, exc: BaseException) -> BadFileError:
        return self._bad(
            f"the workbook is corrupt: {where} cannot be read ({type(exc).__name__})",
            "Open it in Excel or LibreOffice, save it again as .xlsx and drop it again",
        )

    @contextmanager
    def _parsing(self, where: str) -> Iterator[None]:
        try:
            yield
        except MALFORMED as exc:
            raise self._malformed(where, exc) from None

    def _sheet(self) -> Any:
        self._check_container()
        s = self.settings
        with self._parsing("its parts"):
            self._wb = load_workbook(self.path, read_only=True, data_only=True)
            sheets = self._wb.sheetnames
            if not sheets:
                raise self._bad("the workbook has no sheet", "Export the report again")
            ws = self._wb.worksheets[0]
            rows, cols = ws.max_row, ws.max_column  # declared by the sheet's dimension, if it has one
        if len(sheets) > s.xlsx_max_sheets:
            raise self._bad(
                f"the workbook has {len(sheets)} sheets; a report has one (at most {s.xlsx_max_sheets} are read)",
                "Export the report again; keep the data on the first sheet",
            )
        if rows is not None:
            self._check_rows(ws.title, rows)
        if cols is not None and cols > s.max_columns:
            raise self._bad(
                f"sheet {ws.title!r} declares {cols} columns, more than the {s.max_columns} a feed may have",
                "Export the report again with only its own columns, or raise FEEDSYNC_MAX_COLUMNS",
            )
        # Stream to the real end: a dimension may lie, and the row limit is enforced as we go.
        ws.reset_dimensions()
        return ws

    def _check_rows(self, title: str, rows: int) -> None:
        limit = self.settings.xlsx_max_rows
        if rows >= EXCEL_MAX_ROWS or rows > limit:
            cut = " (Excel's last row: the export was probably cut off)" if rows >= EXCEL_MAX_ROWS else ""
            raise self._bad(
                f"sheet {title!r} has {rows} rows{cut}, more than the {limit} a report may have",
                "Export a shorter period so the report fits, or raise FEEDSYNC_XLSX_MAX_ROWS",
            )

    def close(self) -> None:
        if self._wb is not None:
            self._wb.close()
            self._wb = None

    # -- reading -------------------------------------------------------------------------------
    def header(self, mapping: dict[str, str], optional: frozenset[str] = frozenset()) -> Header:
        ws = self._sheet()
        # One column past the limit, so a wider header is seen (and refused) without reading it all.
        width = self.settings.max_columns + 1
        try:
            with self._parsing(f"sheet {ws.title!r} row 1"):
                first = next(ws.iter_rows(min_row=1, max_row=1, max_col=width, values_only=True), None)
                columns = [] if first is None else [_text(v).strip() for v in first]
        finally:
            self.close()
        if first is None:
            raise self._bad("the first sheet is empty", "Export the report again")
        while columns and not columns[-1]:
            columns.pop()
        positions = match_columns(self.label, columns, mapping, optional, max_columns=self.settings.max_columns)
        return Header(columns, positions, 1, 1)

    def records(
        self, header: Header, *, offset: int | None = None, line_no: int | None = None
    ) -> Iterator[tuple[int, list[str]] | RowError]:
        ws = self._sheet()
        dates = {i for a, i in header.positions.items() if a in self.dates}
        epoch = self._wb.epoch
        ncols = len(header.columns)
        start = (offset or header.data_offset) + 1
        self._row = start - 1
        try:
            for row_no, values in enumerate(ws.iter_rows(min_row=start, max_col=ncols, values_only=True), start):
                self._row = row_no
                if row_no > self.settings.xlsx_max_rows:
                    raise self._bad(
                        f"sheet {ws.title!r} has more than the {self.settings.xlsx_max_rows} rows a report may have "
                        "(its size was not declared, so they were counted)",
                        "Export a shorter period so the report fits, or raise FEEDSYNC_XLSX_MAX_ROWS",
                    )
                if all(v is None or v == "" for v in values):
                    continue  # an empty row carries no record
                fields = [_date_text(v, epoch) if i in dates else _text(v) for i, v in enumerate(values)]
                fields.extend([""] * (ncols - len(fields)))
                yield row_no, fields
        except MALFORMED as exc:
            # openpyxl parses the sheet as it streams, so a broken part shows only when it is reached.
            raise self._malformed(f"sheet {ws.title!r} after row {self._row}", exc) from None
        finally:
            self.close()

    @property
    def position(self) -> tuple[int, int]:
        return self._row, self._row


def _text(v: Any) -> str:
    """A cell as the text a CSV export would hold."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, datetime):
        return v.date().isoformat() if v.time() == time() else v.isoformat()
    if isinstance(v, timedelta):
        return str(v)
    return str(v)


def _date_text(v: Any, epoch: datetime) -> str:
    """An Excel serial number (an unformatted date cell) as an ISO date; anything else as text."""
    if isinstance(v, int | float) and not isinstance(v, bool) and 0 < v < 2_958_466:  # up to 9999-12-31
        day = from_excel(v, epoch)
        return (day.date() if isinstance(day, datetime) else day).isoformat() if day is not None else ""
    if isinstance(v, date):
        return (v.date() if isinstance(v, datetime) else v).isoformat()
    return _text(v)
