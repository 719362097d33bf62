"""The streaming CSV reader: every bad-input case of a user feed, without a database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from workers.errors import BadFileError
from workers.files.feedreader import FeedReader, RowError

MAPPING = {"email": "Email", "first_name": "First Name"}


def read(tmp_path: Path, data: bytes, **kw: object) -> tuple[list[tuple[int, list[str]]], list[RowError]]:
    p = tmp_path / "feed.csv"
    p.write_bytes(data)
    r = FeedReader(p, "feed.csv", **kw)  # type: ignore[arg-type]
    header = r.header(MAPPING)
    rows: list[Any] = []
    errors: list[Any] = []
    for item in r.records(header):
        (errors if isinstance(item, RowError) else rows).append(item)
    return rows, errors


def test_utf8_bom_is_stripped_and_the_header_matches(tmp_path: Path) -> None:
    rows, errors = read(tmp_path, b"\xef\xbb\xbfEmail,First Name\na@x.com,Ann\n")
    assert rows == [(2, ["a@x.com", "Ann"])] and errors == []


@pytest.mark.parametrize("newline", [b"\r\n", b"\r", b"\n"], ids=["crlf", "cr-only", "lf"])
def test_line_endings_give_the_same_rows_and_line_numbers(tmp_path: Path, newline: bytes) -> None:
    data = newline.join([b"Email,First Name", b"a@x.com,Ann", b'b@x.com,"Bo, Jr"', b"c@x.com,Cy"]) + newline
    rows, errors = read(tmp_path, data)
    assert [r[0] for r in rows] == [2, 3, 4]
    assert rows[1][1] == ["b@x.com", "Bo, Jr"] and errors == []


def test_mixed_line_breaks_as_in_the_alm_sample(tmp_path: Path) -> None:
    rows, _ = read(tmp_path, b"Email,First Name\ra@x.com,Ann\rb@x.com,Bo\r\nc@x.com,Cy\n")
    assert [r[0] for r in rows] == [2, 3, 4]


def test_a_quoted_line_break_keeps_the_record_and_counts_physical_lines(tmp_path: Path) -> None:
    rows, _ = read(tmp_path, b'Email,First Name\na@x.com,"Ann\nMarie"\nb@x.com,Bo\n')
    assert rows == [(2, ["a@x.com", "Ann\nMarie"]), (4, ["b@x.com", "Bo"])]


def test_an_unclosed_quote_is_one_row_error_and_the_following_rows_still_import(tmp_path: Path) -> None:
    data = b'Email,First Name\na@x.com,"Ann\nb@x.com,Bo\nc@x.com,Cy\n'
    rows, errors = read(tmp_path, data)
    assert [(e.line, e.code) for e in errors] == [(2, "unclosed_quote")]
    assert [r[1][0] for r in rows] == ["b@x.com", "c@x.com"]
    assert "double quote" in errors[0].message


def test_an_unclosed_quote_far_from_the_end_is_bounded_by_max_record_lines(tmp_path: Path) -> None:
    body = b"".join(b"u%d@x.com,N%d\n" % (i, i) for i in range(50))
    rows, errors = read(tmp_path, b'Email,First Name\nbad@x.com,"oops\n' + body, max_record_lines=5)
    assert [(e.line, e.code) for e in errors] == [(2, "unclosed_quote")]
    assert len(rows) == 50 and rows[0][0] == 3


def test_a_row_with_too_many_fields_names_the_counts(tmp_path: Path) -> None:
    rows, errors = read(tmp_path, b"Email,First Name\na@x.com,Ann,extra\nb@x.com,Bo\n")
    assert [(e.line, e.code) for e in errors] == [(2, "field_count")]
    assert "3 fields but the header has 2" in errors[0].message
    assert rows == [(3, ["b@x.com", "Bo"])]


def test_invalid_utf8_is_a_row_error_naming_the_column(tmp_path: Path) -> None:
    rows, errors = read(tmp_path, b"Email,First Name\na@x.com,Ren\xe9e\nb@x.com,Bo\n")
    assert [(e.line, e.column_no, e.column_name, e.code) for e in errors] == [(2, 2, "First Name", "bad_encoding")]
    assert rows == [(3, ["b@x.com", "Bo"])]


def test_a_declared_encoding_reads_what_utf8_refuses(tmp_path: Path) -> None:
    rows, errors = read(tmp_path, "Email,First Name\na@x.com,Renée\n".encode("cp1252"), encoding="cp1252")
    assert rows == [(2, ["a@x.com", "Renée"])] and errors == []


def test_a_one_megabyte_field_is_a_row_error_not_a_crash(tmp_path: Path) -> None:
    big = b"x" * 1_048_576
    rows, errors = read(tmp_path, b"Email,First Name\na@x.com," + big + b"\nb@x.com,Bo\n")
    assert [(e.line, e.code) for e in errors] == [(2, "field_too_large")]
    assert rows == [(3, ["b@x.com", "Bo"])]


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary data"),
        (b"PK\x03\x04\x14\x00\x06\x00", "Excel workbook"),
        ("Email,First Name\n".encode("utf-16"), "UTF-16"),
        (b"Mail,First Name\na@x.com,Ann\n", "lacks the mapped column 'Email'"),
    ],
    ids=["empty", "binary", "xlsx", "utf16", "missing-column"],
)
def test_bad_files_are_refused_with_one_sentence_naming_the_file(tmp_path: Path, data: bytes, says: str) -> None:
    with pytest.raises(BadFileError) as exc:
        read(tmp_path, data)
    assert str(exc.value).startswith("feed.csv: ")
    assert says in str(exc.value)


def test_reading_resumes_from_a_record_boundary(tmp_path: Path) -> None:
    p = tmp_path / "feed.csv"
    p.write_bytes(b"Email,First Name\r\n" + b"".join(b"u%d@x.com,N%d\r\n" % (i, i) for i in range(10)))
    r = FeedReader(p, "feed.csv")
    header = r.header(MAPPING)
    it = r.records(header)
    first = [next(it) for _ in range(4)]
    offset, line = r.position
    rest = list(FeedReader(p, "feed.csv").records(header, offset=offset, line_no=line))
    assert [x[0] for x in first + rest] == list(range(2, 12))  # type: ignore[index]
