"""A file without a header line has a person's data on line 1: the sentence that rejects it names
the file, line 1 and the missing mapped columns (the connection's own names), never a cell of it,
and neither does any log line. The file is read once: a bad file is never retried."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from openpyxl import Workbook

from producers import queries
from producers.commands import apply_connections
from schemas.connections import load_connections_toml
from tests.conftest import sql
from tests.contentdata import TOML
from tests.stubpipeline import HEADER, Pipeline

EMAIL, SSN, SALARY = "ann.private@x.com", "078-05-1120", "98765"
PRIVATE = (EMAIL, SSN, SALARY)


def assert_private(run_id: int, caplog: pytest.LogCaptureFixture) -> str:
    """The run failed on a bad file, read once; returns the file's sentence after checking that
    neither it, the run's error, the stored errors nor any log line holds a value of line 1."""
    run = queries.run_detail(run_id)
    assert run is not None and run["status"] == "failed"
    (f,) = run["files"]
    assert f["status"] == "rejected"
    texts = [run["error"], f["error"], *(e["message"] for e in queries.errors(run_id)), caplog.text]
    assert caplog.records, "the worker's log lines were captured"
    for text in texts:
        for value in PRIVATE:
            assert value not in text
    parse = sql("SELECT status, attempts FROM sync.stage_runs WHERE stage = 'parse' AND run_id = %s", (run_id,))
    assert parse == [("succeeded", 1)]
    assert sql("SELECT count(*) FROM sync.dead_letters")[0][0] == 0
    return str(f["error"])


def test_a_headerless_csv_is_rejected_without_its_first_row_in_the_error_or_the_log(
    pipeline: Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert HEADER == "Email,First Name,Last Name,Manager Email,Department\n"
    feed = f"{EMAIL},Ann,Private,{SSN},{SALARY}\nbob@x.com,Bob,B,,Sales\n"
    run_id = pipeline.import_files(("import/user/internal/users.csv", feed))
    error = assert_private(run_id, caplog)
    assert error.startswith("import/user/internal/users.csv: line 1: the header lacks the mapped columns ")
    assert all(repr(c) in error for c in HEADER.strip().split(","))  # the connection's own column names
    assert error.endswith(
        "(line 1 has 5 columns; a file without a header line lacks them all). Add the column to the file "
        "(or a header line naming the columns), or change the connection's mapping, and drop the file again"
    )


def test_a_headerless_workbook_is_rejected_without_its_first_row_in_the_error_or_the_log(
    pipeline: Pipeline, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    apply_connections(load_connections_toml(TOML))
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append([1, EMAIL, EMAIL, "Ann", SSN, 27980, "en", 42825, 0.5, SALARY, "Sales", "Audio", "PULL"])
    wb.save(tmp_path / "r.xlsx")
    pipeline.drop("import/getabstract/report_export_2017_04_01.xlsx", (tmp_path / "r.xlsx").read_bytes())
    run = pipeline.sync("ga")
    assert "line 1: the header lacks the mapped columns 'email', 'dataId'" in assert_private(run["run_id"], caplog)
