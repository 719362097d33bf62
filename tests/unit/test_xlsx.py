"""Workbooks: Excel serial dates read as dates, and every hostile workbook refused with one clear
sentence before it can cost unbounded memory or time."""

from __future__ import annotations

import io
import tracemalloc
import zipfile
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import msoffcrypto.format.ooxml
import pytest
from openpyxl import Workbook

from schemas.settings import Settings
from tests.workbooks import read_all, refused, rewrite
from workers.files.feedreader import RowError


def workbook(path: Path, rows: list[list[object]], sheets: int = 1) -> Path:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["email", "dataId", "downloadDate", "mainTitle"])
    for r in rows:
        ws.append(r)
    for i in range(1, sheets):
        wb.create_sheet(f"s{i}")
    wb.save(path)
    return path


def test_serial_numbers_and_date_cells_both_read_as_dates(tmp_path: Path) -> None:
    path = workbook(
        tmp_path / "r.xlsx",
        [["a@x.com", 27980, 42825, "Value"], ["b@x.com", 27981, datetime(2017, 3, 31), "Other"], [None] * 4],
    )
    assert read_all(path) == [
        (2, ["a@x.com", "27980", "2017-03-31", "Value"]),
        (3, ["b@x.com", "27981", "2017-03-31", "Other"]),
    ]


def test_a_zip_bomb_is_refused_from_its_declared_sizes(tmp_path: Path) -> None:
    good = workbook(tmp_path / "good.xlsx", [["a@x.com", 1, 42825, "T"]])
    with zipfile.ZipFile(good) as z:
        sheet = z.read("xl/worksheets/sheet1.xml")
    padded = sheet.replace(b"<sheetData>", b"<sheetData>" + b" " * (64 << 20))
    bomb = rewrite(good, tmp_path / "bomb.xlsx", {"xl/worksheets/sheet1.xml": padded})
    assert bomb.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        message = refused(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "xl/worksheets/sheet1.xml unpacks" in message and "a zip bomb" in message
    assert peak < 16 << 20, f"refusing the bomb took {peak >> 20} MB"


def test_a_sheet_filled_to_excels_last_row_is_refused_before_reading_it(tmp_path: Path) -> None:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["email", "dataId", "downloadDate", "mainTitle"])
    ws.cell(row=1_048_576, column=1, value="last@x.com")
    wb.save(tmp_path / "full.xlsx")
    message = refused(tmp_path / "full.xlsx")
    assert "has 1048576 rows (Excel's last row: the export was probably cut off)" in message
    assert "Export a shorter period" in message


def test_rows_past_the_limit_are_refused_while_streaming_when_the_sheet_hides_its_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = workbook(tmp_path / "good.xlsx", [[f"p{i}@x.com", i, 42825, "T"] for i in range(60)])
    with zipfile.ZipFile(good) as z:
        sheet = z.read("xl/worksheets/sheet1.xml")
    start = sheet.index(b"<dimension")
    hidden = sheet[:start] + sheet[sheet.index(b"/>", start) + 2 :]
    path = rewrite(good, tmp_path / "hidden.xlsx", {"xl/worksheets/sheet1.xml": hidden})
    monkeypatch.setenv("FEEDSYNC_XLSX_MAX_ROWS", "50")
    assert "has more than the 50 rows a report may have (its size was not declared" in refused(path, Settings())


def test_thousands_of_sheets_are_refused(tmp_path: Path) -> None:
    path = workbook(tmp_path / "many.xlsx", [["a@x.com", 1, 42825, "T"]], sheets=2000)
    assert "the workbook has 2000 sheets; a report has one (at most 100 are read)" in refused(path)


def test_a_password_protected_workbook_is_refused(tmp_path: Path) -> None:
    plain = workbook(tmp_path / "plain.xlsx", [["a@x.com", 1, 42825, "T"]])
    locked = tmp_path / "locked.xlsx"
    with open(plain, "rb") as src, open(locked, "wb") as dst:
        msoffcrypto.format.ooxml.OOXMLFile(src).encrypt("secret", dst)
    assert "password-protected (encrypted)" in refused(locked)


@pytest.fixture
def corrupt_files(tmp_path: Path) -> Iterator[dict[str, Path]]:
    good = workbook(tmp_path / "good.xlsx", [["a@x.com", 1, 42825, "T"]])
    data = good.read_bytes()
    truncated = tmp_path / "truncated.xlsx"
    truncated.write_bytes(data[: len(data) // 2])
    text = tmp_path / "text.xlsx"
    text.write_text("email,dataId\na@x.com,1\n")
    flipped = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        info = z.getinfo("xl/worksheets/sheet1.xml")
    middle = info.header_offset + 30 + len(info.filename) + info.compress_size // 2
    flipped[middle] ^= 0xFF
    damaged = tmp_path / "damaged.xlsx"
    damaged.write_bytes(bytes(flipped))
    no_workbook = tmp_path / "noworkbook.xlsx"
    with zipfile.ZipFile(no_workbook, "w") as z:
        z.writestr("hello.txt", "not a workbook")
    yield {"truncated": truncated, "text": text, "damaged": damaged, "no_workbook": no_workbook}


def test_corrupt_files_are_refused_with_a_sentence_each(corrupt_files: dict[str, Path]) -> None:
    assert "not an .xlsx workbook (it is not a zip container) or it is corrupt" in refused(corrupt_files["truncated"])
    assert "not an .xlsx workbook" in refused(corrupt_files["text"])
    assert "the workbook is corrupt" in refused(corrupt_files["damaged"])
    assert "xl/workbook.xml is missing" in refused(corrupt_files["no_workbook"])


def test_the_header_must_name_the_required_columns(tmp_path: Path) -> None:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["email", "dataId", "when"])
    ws.append(["a@x.com", 1, 42825])
    wb.save(tmp_path / "r.xlsx")
    assert "the header lacks the mapped columns 'downloadDate', 'mainTitle'" in refused(tmp_path / "r.xlsx")


def test_an_excel_serial_is_the_day_excel_shows(tmp_path: Path) -> None:
    # 60 is Excel's phantom 1900-02-29; 61 is 1900-03-01 and 1 is 1900-01-01 (the 1900 leap-year bug).
    path = workbook(tmp_path / "r.xlsx", [["a@x.com", 1, 1, "T"], ["b@x.com", 2, 61, "T"]])
    rows = read_all(path)
    assert [r[1][2] for r in rows if not isinstance(r, RowError)] == [
        date(1900, 1, 1).isoformat(),
        date(1900, 3, 1).isoformat(),
    ]
