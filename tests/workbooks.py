"""XLSX workbooks for the reader tests: rewriting a workbook's parts to make it malformed, and
reading one through XlsxReader to the refusal it gives."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from schemas.settings import Settings
from workers.errors import BadFileError
from workers.files.feedreader import RowError
from workers.files.xlsxreader import XlsxReader

COLUMNS = {"email": "email", "data_id": "dataId", "download_date": "downloadDate", "title": "mainTitle"}


def rewrite(src: Path, dst: Path, replace: dict[str, bytes]) -> Path:
    """Copy a workbook's zip, replacing some parts (deflated, as Excel stores them)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, replace.get(info.filename, zin.read(info.filename)))
    return dst


def read_all(path: Path, settings: Settings | None = None) -> list[tuple[int, list[str]] | RowError]:
    reader = XlsxReader(path, path.name, settings or Settings(), dates=frozenset({"download_date"}))
    header = reader.header(COLUMNS)
    return list(reader.records(header))


def refused(path: Path, settings: Settings | None = None) -> str:
    with pytest.raises(BadFileError) as exc:
        read_all(path, settings)
    return str(exc.value)
