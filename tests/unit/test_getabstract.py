"""getAbstract usage reports: each row creates its summary as a course once and records the
learner's completion on the download date; a hostile workbook is one rejected file."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from openpyxl import Workbook

from producers.commands import apply_connections
from schemas.connections import load_connections_toml
from tests.conftest import sql
from tests.contentdata import COLUMNS, TOML, report
from tests.stubpipeline import HEADER, Pipeline


def run_sync(pipeline: Pipeline) -> dict[str, Any]:
    return pipeline.sync("ga")


def test_a_report_creates_summaries_once_and_records_completions(pipeline: Pipeline, tmp_path: Path) -> None:
    apply_connections(load_connections_toml(TOML))
    pipeline.import_files(("import/user/internal/p.csv", HEADER + "ann@x.com,Ann,A,,S\nbob@x.com,Bob,B,,S\n"))
    first = report(
        tmp_path / "1.xlsx",
        [("ann@x.com", 27980, 42825, "Value"), ("bob@x.com", 27980, 42826, "Value"), ("Bob@x.com", 5, 42826, "Grit")],
    )
    pipeline.drop("import/getabstract/report_export_2017_04_01_175342.xlsx", first)
    run = run_sync(pipeline)
    assert run["status"] == "completed", run
    assert run["content"] == {"courses_created": 2, "courses_updated": 0, "courses_retired": 0, "progress_written": 3}
    assert sql("SELECT external_id, title, asset_format, category FROM lms.courses ORDER BY external_id") == [
        ("27980", "Value", "Audio", "Sales"),
        ("5", "Grit", "Audio", "Sales"),
    ]
    assert sql(
        "SELECT u.email, c.external_id, p.status, p.completed_on FROM lms.learner_progress p"
        " JOIN lms.users u ON u.id = p.user_id JOIN lms.courses c ON c.id = p.course_id ORDER BY 1, 2"
    ) == [
        ("ann@x.com", "27980", "completed", date(2017, 3, 31)),
        ("bob@x.com", "27980", "completed", date(2017, 4, 1)),
        ("bob@x.com", "5", "completed", date(2017, 4, 1)),
    ]
    # A later report renames the summary and repeats Ann on a later day: the course is not rewritten
    # by a usage report, and Ann's first completion stands; only her last access moves.
    pipeline.drop(
        "import/getabstract/report_export_2017_04_08.xlsx",
        report(tmp_path / "2.xlsx", [("ann@x.com", 27980, 42832, "Value (2nd ed.)")]),
    )
    run = run_sync(pipeline)
    assert run["content"] == {"courses_created": 0, "courses_updated": 0, "courses_retired": 0, "progress_written": 1}
    assert sql("SELECT title FROM lms.courses WHERE external_id = '27980'") == [("Value",)]
    assert sql(
        "SELECT p.completed_on, p.last_accessed_on FROM lms.learner_progress p JOIN lms.users u ON u.id = p.user_id"
        " JOIN lms.courses c ON c.id = p.course_id WHERE u.email = 'ann@x.com'"
    ) == [(date(2017, 3, 31), date(2017, 4, 7))]


def test_a_hostile_workbook_is_a_rejected_file_and_the_run_says_why(pipeline: Pipeline, tmp_path: Path) -> None:
    apply_connections(load_connections_toml(TOML))
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(COLUMNS)
    ws.cell(row=1_048_576, column=1, value=1)
    wb.save(tmp_path / "full.xlsx")
    pipeline.drop("import/getabstract/report_export_2017_04_01.xlsx", (tmp_path / "full.xlsx").read_bytes())
    pipeline.drop("import/getabstract/report-2017.xlsx", b"not even a zip")
    run = run_sync(pipeline)
    assert run["status"] == "failed"
    errors = {f["file"].rsplit("/", 1)[1]: f["error"] for f in run["files"]}
    assert "has 1048576 rows (Excel's last row" in errors["report_export_2017_04_01.xlsx"]
    assert "is not a getAbstract report name; name it report_export_yyyy_MM_dd.xlsx" in errors["report-2017.xlsx"]
    assert sql("SELECT count(*) FROM lms.courses")[0][0] == 0
