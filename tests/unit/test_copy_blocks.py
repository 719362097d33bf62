"""Parse hands whole-line blocks of a users feed to PostgreSQL's COPY and falls back to the Python
reader for a block COPY would read differently: the store and the row errors are the same either way."""

from __future__ import annotations

import pytest

from producers import queries
from tests.conftest import sql
from tests.stubpipeline import HEADER, Pipeline


@pytest.fixture
def block() -> str:
    """The reader a clean block of a users feed is recorded with (users have one path: COPY, then SQL)."""
    return "copy"


def people(n: int, start: int = 0) -> str:
    return "".join(f"p{i}@x.com,First{i},Last{i},,Dept {i % 7}\n" for i in range(start, start + n))


def chunk_sources(run_id: int) -> list[tuple[int, int, str]]:
    return sql("SELECT first_line, last_line, reader FROM sync.chunks WHERE run_id = %s ORDER BY chunk_no", (run_id,))


def test_blocks_and_fallback_chunks_meet_at_the_right_lines(pipeline: Pipeline, block: str) -> None:
    pipeline.settings.chunk_rows = 10
    feed = (
        HEADER
        + people(10)  # lines 2-11: a clean block
        + "bad@,Bad,Mail,,X\n"  # line 12: valid CSV, invalid e-mail: reported from a COPY block
        + people(9, 10)  # lines 13-21
        + 'q1@x.com,"Multi\nLine",Name,,X\n'  # lines 22-23: a quoted line break, COPY is not used
        + people(8, 19)  # lines 24-31
        + "short@x.com,Only,Three\n"  # line 32: too few fields, COPY refuses the block
        + people(12, 27)  # lines 33-44
    )
    run_id = pipeline.import_files(("import/user/internal/users.csv", feed))
    errors = sorted((e["line"], e["code"]) for e in queries.errors(run_id))
    assert errors == [(12, "invalid_email"), (32, "field_count")]
    # Every good row is in, the multi-line value intact, and no line is read twice or skipped.
    assert sql("SELECT count(*) FROM lms.users")[0][0] == 10 + 9 + 1 + 8 + 12
    assert sql("SELECT first_name FROM lms.users WHERE email = 'q1@x.com'")[0][0] == "Multi\nLine"
    # Two blocks by COPY; the block with the line break and the short line by the Python reader
    # (ten records); COPY again from the line after.
    assert chunk_sources(run_id) == [
        (2, 11, block),
        (12, 21, block),
        (22, 32, "python"),
        (33, 42, block),
        (43, 44, block),
    ]


def test_a_quote_inside_an_unquoted_field_is_kept_as_the_csv_module_reads_it(pipeline: Pipeline, block: str) -> None:
    # COPY would read `Robert "Bob"` as `Robert Bob`; the block goes to the Python reader instead.
    feed = HEADER + 'rb@x.com,Robert "Bob",Smith,,X\n' + people(3)
    run_id = pipeline.import_files(("import/user/internal/users.csv", feed))
    assert sql("SELECT first_name FROM lms.users WHERE email = 'rb@x.com'")[0][0] == 'Robert "Bob"'
    assert [c[2] for c in chunk_sources(run_id)] == ["python"]


def test_empty_and_quoted_empty_fields_read_the_same_as_from_the_python_reader(pipeline: Pipeline, block: str) -> None:
    feed = HEADER + 'e1@x.com,,"",,""\n' + "e2@x.com,Eve,,,\n"
    run_id = pipeline.import_files(("import/user/internal/users.csv", feed))
    assert queries.errors(run_id) == [] and [c[2] for c in chunk_sources(run_id)] == [block]
    assert sql("SELECT email, first_name, last_name, attributes FROM lms.users ORDER BY email") == [
        ("e1@x.com", None, None, {}),
        ("e2@x.com", "Eve", None, {}),
    ]


def test_a_windows_1252_feed_goes_through_copy_with_its_encoding(pipeline: Pipeline, block: str) -> None:
    pipeline.settings.chunk_rows = 2
    feed = (HEADER + "zoe@x.com,Zoë,Müller,,Café\n" + people(3)).encode("cp1252")
    sql("UPDATE sync.connections SET config = jsonb_set(config, '{encoding}', '\"cp1252\"')")
    run_id = pipeline.import_files(("import/user/internal/users.csv", feed))
    assert queries.errors(run_id) == []
    assert [c[2] for c in chunk_sources(run_id)] == [block, block]
    assert sql("SELECT first_name, last_name, attributes FROM lms.users WHERE email = 'zoe@x.com'") == [
        ("Zoë", "Müller", {"department": "Café"})
    ]


def test_crlf_lines_and_a_last_line_without_a_break_go_through_copy(pipeline: Pipeline, block: str) -> None:
    feed = (HEADER + people(3)).replace("\n", "\r\n") + "last@x.com,Last,One,,X"
    run_id = pipeline.import_files(("import/user/internal/users.csv", feed))
    assert queries.errors(run_id) == [] and [c[2] for c in chunk_sources(run_id)] == [block]
    assert sql("SELECT email, last_name, attributes FROM lms.users ORDER BY email")[0] == (
        "last@x.com",
        "One",
        {"department": "X"},
    )
    # No carriage return left at the end of the last column.
    assert sql("SELECT count(*) FROM lms.users WHERE strpos(attributes ->> 'department', chr(13)) > 0") == [(0,)]
    assert sql("SELECT DISTINCT attributes ->> 'department' FROM lms.users WHERE email LIKE 'p%' ORDER BY 1") == [
        ("Dept 0",),
        ("Dept 1",),
        ("Dept 2",),
    ]


def test_bytes_not_valid_utf8_are_a_row_error_on_their_line_and_the_block_still_imports(
    pipeline: Pipeline, block: str
) -> None:
    pipeline.settings.chunk_rows = 4
    feed = (HEADER + people(2)).encode() + b"bad@x.com,B\xe9a,Bad,,X\n" + people(3, 2).encode()
    run_id = pipeline.import_files(("import/user/internal/users.csv", feed))
    assert sorted((e["line"], e["code"]) for e in queries.errors(run_id)) == [(4, "bad_encoding")]
    assert sql("SELECT count(*) FROM lms.users")[0][0] == 5
    # COPY refused the first block (lines 2-5); the Python reader took it, then COPY the rest.
    assert [c[2] for c in chunk_sources(run_id)] == ["python", block]
