"""A parse delivered again after some of its chunks committed resumes where the last committed chunk
ended, whichever chunk source reads the file: COPY with the Python reader between its blocks, the
xAPI block stager, the Python reader alone (a CSV with CR line breaks), a workbook. The chunks, their
lines and readers, the row errors and the store are those of a parse that never stopped."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from producers import queries
from producers.commands import apply_connections
from schemas.connections import load_connections_toml
from tests.conftest import sql
from tests.contentdata import TOML, report
from tests.stubpipeline import HEADER, Pipeline
from tests.xapidata import CSV_HEADER, connect
from tests.xapidata import people as xapi_people
from workers import failpoints

# None: a parse that never stops; N: the parse's N-th chunk fails (a transient error after its writes,
# before its commit), so the redelivered parse resumes after chunk N-1.
STOPS = [None, 2, 3, 4, 5]


@pytest.fixture
def fail_chunk(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[int | None], None]]:
    def fail(nth: int | None) -> None:
        failpoints.reset()
        monkeypatch.setenv("FEEDSYNC_FAILPOINTS", "" if nth is None else f"parse.chunk=transient#{nth}")

    yield fail
    failpoints.reset()


def people(n: int, start: int = 0) -> str:
    return "".join(f"p{i}@x.com,First{i},Last{i},,Dept {i % 7}\n" for i in range(start, start + n))


def chunks(run_id: int) -> list[tuple[Any, ...]]:
    return sql(
        "SELECT chunk_no, first_line, last_line, rows, reader FROM sync.chunks WHERE run_id = %s ORDER BY chunk_no",
        (run_id,),
    )


def errors(run_id: int) -> list[tuple[Any, ...]]:
    return sorted((e["line"], e["column"], e["code"]) for e in queries.errors(run_id))


def parse_attempts(run_id: int) -> int:
    return int(sql("SELECT attempts FROM sync.stage_runs WHERE run_id = %s AND stage = 'parse'", (run_id,))[0][0])


def status(run_id: int) -> str:
    run = queries.run_detail(run_id)
    assert run is not None
    return str(run["status"])


@pytest.mark.parametrize("stop", STOPS)
def test_copy_blocks_and_python_chunks_resume_at_their_offset(
    pipeline: Pipeline, fail_chunk: Callable[[int | None], None], stop: int | None
) -> None:
    pipeline.settings.chunk_rows = 10
    feed = (
        HEADER
        + people(10)  # lines 2-11: COPY
        + "bad@,Bad,Mail,,X\n"  # line 12: a bad e-mail in a COPY block
        + people(9, 10)  # lines 13-21
        + 'q1@x.com,"Multi\nLine",Name,,X\n'  # lines 22-23: a quoted line break, the Python reader
        + people(8, 19)  # lines 24-31
        + "short@x.com,Only,Three\n"  # line 32: too few fields
        + people(12, 27)  # lines 33-44: COPY again
    )
    fail_chunk(stop)
    run_id = pipeline.import_files(("import/user/internal/users.csv", feed))
    assert status(run_id) == "completed_with_errors"  # the bad rows
    assert chunks(run_id) == [
        (0, 2, 11, 10, "copy"),
        (1, 12, 21, 10, "copy"),
        (2, 22, 32, 10, "python"),
        (3, 33, 42, 10, "copy"),
        (4, 43, 44, 2, "copy"),
    ]
    assert errors(run_id) == [(12, 1, "invalid_email"), (32, None, "field_count")]
    assert sql("SELECT count(*) FROM lms.users")[0][0] == 10 + 9 + 1 + 8 + 12
    assert sql("SELECT first_name FROM lms.users WHERE email = 'q1@x.com'")[0][0] == "Multi\nLine"
    assert parse_attempts(run_id) == (1 if stop is None else 2)


@pytest.mark.parametrize("stop", STOPS)
def test_a_csv_only_the_python_reader_reads_resumes_at_its_offset(
    pipeline: Pipeline, fail_chunk: Callable[[int | None], None], stop: int | None
) -> None:
    pipeline.settings.chunk_rows = 10
    # CR line breaks: COPY cannot read them, so every chunk is the Python reader's.
    feed = (HEADER + people(20) + "short@x.com,Only,Three\n" + people(23, 20)).replace("\n", "\r")
    fail_chunk(stop)
    run_id = pipeline.import_files(("import/user/internal/users.csv", feed))
    assert status(run_id) == "completed_with_errors"  # the bad rows
    assert chunks(run_id) == [
        (0, 2, 11, 10, "python"),
        (1, 12, 21, 10, "python"),
        (2, 22, 31, 10, "python"),
        (3, 32, 41, 10, "python"),
        (4, 42, 45, 4, "python"),
    ]
    assert errors(run_id) == [(22, None, "field_count")]
    assert sql("SELECT count(*) FROM lms.users")[0][0] == 43
    assert parse_attempts(run_id) == (1 if stop is None else 2)


@pytest.mark.parametrize("stop", STOPS)
def test_xapi_blocks_staged_by_the_kind_resume_at_their_offset(
    pipeline: Pipeline, fail_chunk: Callable[[int | None], None], stop: int | None
) -> None:
    connect()
    xapi_people(pipeline)
    pipeline.settings.vector_transform = True
    pipeline.settings.chunk_rows = 10

    def rows(n: int, start: int) -> str:
        return "".join(
            f"{('ann', 'bob')[i % 2]}@x.com,http://adlnet.gov/expapi/verbs/completed,https://x.test/act/{i},"
            f"0.5,true,2026-01-{1 + i % 28:02d}T10:00:00Z\n"
            for i in range(start, start + n)
        )

    feed = (
        CSV_HEADER
        + rows(10, 0)  # lines 2-11: the block stager
        + rows(4, 10)  # lines 12-15
        + 'ann@x.com,http://adlnet.gov/expapi/verbs/completed,"https://x.test/act/\nsplit",0.5,true,\n'  # 16-17
        + rows(15, 14)  # lines 18-32: the Python reader from line 12 to 21, then blocks again
        + rows(14, 29)  # lines 33-46
    )
    fail_chunk(stop)
    run_id = pipeline.import_files(("import/xapi/statements.csv", feed))
    assert status(run_id) == "completed_with_errors"  # the bad rows
    assert chunks(run_id) == [
        (0, 2, 11, 10, "arrow"),
        (1, 12, 22, 10, "python"),
        (2, 23, 32, 10, "arrow"),
        (3, 33, 42, 10, "arrow"),
        (4, 43, 46, 4, "arrow"),
    ]
    assert sql("SELECT count(*) FROM lms.xapi_statements")[0][0] + len(errors(run_id)) == 44
    assert parse_attempts(run_id) == (1 if stop is None else 2)


@pytest.mark.parametrize("stop", STOPS)
def test_a_workbook_resumes_at_its_row(
    pipeline: Pipeline, fail_chunk: Callable[[int | None], None], stop: int | None, tmp_path: Path
) -> None:
    apply_connections(load_connections_toml(TOML))
    pipeline.import_files(("import/user/internal/p.csv", HEADER + "ann@x.com,Ann,A,,S\nbob@x.com,Bob,B,,S\n"))
    pipeline.settings.chunk_rows = 10
    book = report(
        tmp_path / "r.xlsx", [(("ann@x.com", "bob@x.com")[i % 2], 1000 + i, 42825 + i % 30, f"T{i}") for i in range(44)]
    )
    pipeline.drop("import/getabstract/report_export_2017_04_01.xlsx", book)
    fail_chunk(stop)
    run = pipeline.sync("ga")
    assert run["status"] == "completed", run
    assert chunks(run["run_id"]) == [
        (0, 2, 11, 10, "python"),
        (1, 12, 21, 10, "python"),
        (2, 22, 31, 10, "python"),
        (3, 32, 41, 10, "python"),
        (4, 42, 45, 4, "python"),
    ]
    assert sql("SELECT count(*) FROM lms.courses")[0][0] == 44
    assert sql("SELECT count(*) FROM lms.learner_progress")[0][0] == 44
    assert parse_attempts(run["run_id"]) == (1 if stop is None else 2)
