"""Exports: golden files per kind (header byte for byte, a quoted cell with quotes and line breaks,
UTF-8 without BOM, LF line ends), a csv-module round trip equal to the database, and file names."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

from tests.conftest import DbToday, sql
from tests.data import SINCE
from tests.stubpipeline import Pipeline
from tests.unit.exportdata import STATEMENT, TRICKY_TITLE, export_connections, exported, learning, people, read_rows

GOLDEN = Path(__file__).parent / "golden"

TRANSCRIPT_HEADER = (
    "Name,email,Adobe ID,User Unique ID,Learning plan Name,LP/Certification/Course,Type,Course,LO Unique ID,"
    "Instance,Selection Criteria,Module,Version,Delivery Type,Language,Comment,Enrollment Date (UTC TimeZone),"
    "Started Date (UTC TimeZone),Completion Date (UTC TimeZone),Deadline (UTC TimeZone),Overdue,Status,"
    "Progress %,Time Spent(minutes),Grade,Quiz Score,Quiz_score_max,Highest_Quiz_score,Highest_Quiz_score_max,"
    "Attempts Taken,Maximum Allowed Attempts,userState,department,Manager Name,Enrollment Count,Started Count,"
    "Completion Count,Due in N Days,Due in N Days for User,Count of (Progress Greater than N %),"
    "Count of (Progress Greater than N %) for User,Training ID,Training or Module Duration (mins)\n"
)
SKILLS_HEADER = (
    "Name,email,Adobe ID,User Unique ID,Skill,Skill Level,Credits Required,Credits Earned,Completion Percentage,"
    "Date Assigned (UTC TimeZone),Date Achieved (UTC TimeZone),userState,department,Manager Name\n"
)
XAPI_HEADER = "User Name,User Email,TimeStamp,Activity IRI,Verb IRI,Statement JSON,Manager Name,department,userState\n"


def export_all(pipeline: Pipeline) -> dict[str, Path]:
    export_connections()
    people(pipeline)
    learning()
    files = {}
    for name in ("transcripts", "skills", "xapi"):
        run = pipeline.sync(name, SINCE)
        assert run["status"] == "completed", run
        files[name] = exported(pipeline, run)
    return files


def assert_golden(path: Path, golden: str, header: str) -> None:
    data = path.read_bytes()
    assert data.startswith(header.encode("utf-8")), "header differs from ALM's, byte for byte"
    assert not data.startswith(b"\xef\xbb\xbf"), "UTF-8 without a BOM"
    assert b"\r" not in data, "LF line ends, also inside quoted cells"
    assert data == (GOLDEN / golden).read_bytes()


def test_the_transcript_export_matches_its_golden_file_with_alm_columns_and_one_row_per_person_and_course(
    pipeline: Pipeline,
) -> None:
    today = DbToday()
    path = export_all(pipeline)["transcripts"]
    assert path.name in today.names("learner_transcript_2026-11-01_to_{}.csv")
    assert path.parent == pipeline.settings.export_dir / "export" / "transcripts"
    assert_golden(path, "learner_transcript.csv", TRANSCRIPT_HEADER)


def test_the_skills_export_matches_its_golden_file(pipeline: Pipeline) -> None:
    today = DbToday()
    path = export_all(pipeline)["skills"]
    assert path.name in today.names("skill_achievements_2026-11-01_to_{}.csv")
    assert_golden(path, "skill_achievements.csv", SKILLS_HEADER)


def test_the_xapi_export_matches_its_golden_file_with_the_statement_as_one_quoted_cell(pipeline: Pipeline) -> None:
    today = DbToday()
    path = export_all(pipeline)["xapi"]
    assert path.name in today.names("xapi_activity_2026-11-01_to_{}.csv")
    assert_golden(path, "xapi_activity.csv", XAPI_HEADER)
    (row,) = read_rows(path)
    assert row["Statement JSON"] == STATEMENT  # quotes and line breaks come back as stored
    assert row["TimeStamp"] == "2026-11-20T09:59:58.500Z"


def test_each_export_read_back_with_the_csv_module_equals_the_database(pipeline: Pipeline) -> None:
    files = export_all(pipeline)
    transcript = [
        (r["Name"], r["email"], r["Course"], r["LO Unique ID"], r["Status"], r["Completion Date (UTC TimeZone)"],
         r["Quiz Score"], r["Time Spent(minutes)"], r["department"], r["Manager Name"], r["userState"])
        for r in read_rows(files["transcripts"])
    ]  # fmt: skip
    expected = sql(
        """SELECT concat_ws(' ', u.first_name, u.last_name), u.email, c.title, c.external_id,
                  initcap(replace(p.status, '_', ' ')), coalesce(p.completed_on::text, ''), coalesce(p.score::text, ''),
                  coalesce(p.time_spent_minutes::text, ''), u.attributes ->> 'department',
                  coalesce(m.first_name || ' ' || m.last_name, ''), 'ACTIVE'
           FROM lms.learner_progress p JOIN lms.users u ON u.id = p.user_id JOIN lms.courses c ON c.id = p.course_id
           LEFT JOIN lms.users m ON m.id = u.manager_id ORDER BY p.user_id, p.course_id"""
    )
    assert transcript == [tuple(r) for r in expected]
    assert TRICKY_TITLE in {t[2] for t in transcript}
    skills = [(r["email"], r["Skill"], r["Date Achieved (UTC TimeZone)"]) for r in read_rows(files["skills"])]
    assert skills == [
        tuple(r)
        for r in sql(
            """SELECT u.email, s.name, us.achieved_on::text FROM lms.user_skills us
               JOIN lms.users u ON u.id = us.user_id JOIN lms.skills s ON s.id = us.skill_id
               ORDER BY us.user_id, s.name_key"""
        )
    ]
    xapi = [(r["User Email"], r["Activity IRI"], r["Verb IRI"], r["Statement JSON"]) for r in read_rows(files["xapi"])]
    assert xapi == [
        tuple(r) for r in sql("SELECT actor_email, object_id, verb_id, statement::text FROM lms.xapi_statements")
    ]


def test_a_zipped_export_holds_the_csv_under_its_own_name(pipeline: Pipeline) -> None:
    import zipfile

    from producers.commands import apply_connections
    from schemas.connections import load_connections_toml

    apply_connections(load_connections_toml('[[connections]]\nname = "tz"\nkind = "transcript_export"\nzip = true\n'))
    people(pipeline)
    learning()
    today = DbToday()
    run = pipeline.sync("tz", SINCE)
    path = exported(pipeline, run)
    assert path.name in today.names("learner_transcript_2026-11-01_to_{}.zip")
    with zipfile.ZipFile(path) as zf:
        assert zf.namelist() == [path.with_suffix(".csv").name]
        inner = zf.read(path.with_suffix(".csv").name)
    assert inner == (GOLDEN / "learner_transcript.csv").read_bytes()
    import hashlib

    assert run["export"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert run["export"]["bytes"] == path.stat().st_size


def test_the_run_records_rows_bytes_and_sha256_of_the_file_and_the_history_shows_them(pipeline: Pipeline) -> None:
    import hashlib

    from producers import queries

    path = export_all(pipeline)["transcripts"]
    (row,) = [r for r in queries.history("transcripts")]
    assert row["export"]["rows"] == 2
    assert row["export"]["bytes"] == path.stat().st_size
    assert row["export"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert row["export"]["window_from"].startswith("2026-11-01T00:00:00")
    assert not list(path.parent.glob("*.part")), "no partial file stays behind"
    assert next(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))[0] == "Name"


def test_an_exports_window_and_file_name_take_the_date_from_the_database_clock_only(pipeline: Pipeline) -> None:
    """The host's clock says 23:59:58 on another day; the window and the file's name follow PostgreSQL's."""
    import time_machine

    today = DbToday()
    host = datetime(2031, 6, 30, 23, 59, 58, tzinfo=UTC)
    with time_machine.travel(host, tick=False):
        path = export_all(pipeline)["transcripts"]
    assert path.name in today.names("learner_transcript_2026-11-01_to_{}.csv")
    (end,) = sql("SELECT max(window_to) FROM sync.exports WHERE file_name = %s", (path.name,))[0]
    assert end.date() in today.dates() and end.date() != host.date()
