"""Exports as ALM writes them: each export's header is ALM's documented column list (Learner
Transcript, Skill Transcript, xAPI activity report), with the account's time zone in the date
headers; the values take ALM's forms (status strings, Progress %, userState, ISO days and instants
in the account's zone); CR LF line ends as ALM's own report has them, when asked; the optional
User Unique ID and LO Unique ID columns. Sources: /work/shared/reference/wave2-anchors.md §1.2-1.4
(learner-transcript-csv.md) and the xAPI report sample in ../shared/samples/alm/xapi-report."""

from __future__ import annotations

import re
from datetime import date

import pytest

from producers.commands import apply_connections
from schemas.connections import ConfigError, load_connections_toml
from schemas.exports import ExportConnection
from tests.conftest import SAMPLES
from tests.stubpipeline import Pipeline
from tests.unit.exportdata import exported, learning, people, read_rows

pytestmark = pytest.mark.conformance

SINCE = date(2026, 11, 1)
XAPI_REPORT = (
    SAMPLES / "alm" / "xapi-report" / "xapireport8842560559890766717csv_unzipped" / "xapiReport8842560559890766717.csv"
)

#: ALM's Learner Transcript columns, in document order ("Interpret the Learner Transcript CSV"):
#: <tz> is the account's time zone; the profile (group-able Active Field) columns follow userState.
TRANSCRIPT_DOC = [
    "Name",
    "email",
    "Adobe ID",
    "User Unique ID",
    "Learning plan Name",
    "LP/Certification/Course",
    "Type",
    "Course",
    "LO Unique ID",
    "Instance",
    "Selection Criteria",
    "Module",
    "Version",
    "Delivery Type",
    "Language",
    "Comment",
    "Enrollment Date (<tz> TimeZone)",
    "Started Date (<tz> TimeZone)",
    "Completion Date (<tz> TimeZone)",
    "Deadline (<tz> TimeZone)",
    "Overdue",
    "Status",
    "Progress %",
    "Time Spent(minutes)",
    "Grade",
    "Quiz Score",
    "Quiz_score_max",
    "Highest_Quiz_score",
    "Highest_Quiz_score_max",
    "Attempts Taken",
    "Maximum Allowed Attempts",
    "userState",
]
TRANSCRIPT_AFTER_PROFILE = [
    "Manager Name",
    "Enrollment Count",
    "Started Count",
    "Completion Count",
    "Due in N Days",
    "Due in N Days for User",
    "Count of (Progress Greater than N %)",
    "Count of (Progress Greater than N %) for User",
    "Training ID",
    "Training or Module Duration (mins)",
]
#: The Skill Transcript sheet's columns.
SKILLS_DOC = [
    "Name",
    "email",
    "Adobe ID",
    "User Unique ID",
    "Skill",
    "Skill Level",
    "Credits Required",
    "Credits Earned",
    "Completion Percentage",
    "Date Assigned (<tz> TimeZone)",
    "Date Achieved (<tz> TimeZone)",
    "userState",
]
#: Only where the account enables them (learner-transcript-csv.md).
OPTIONAL = {"User Unique ID", "LO Unique ID"}

STATUSES = {"Not started", "In Progress", "Completed", "Unenrolled"}
USER_STATES = {"ACTIVE", "SUSPENDED", "DELETED"}
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def connections(extra: str) -> None:
    apply_connections(
        load_connections_toml(
            f"""
[[connections]]
name = "transcripts"
kind = "transcript_export"
{extra}

[[connections]]
name = "skills"
kind = "skills_export"
{extra}

[[connections]]
name = "xapi"
kind = "xapi_export"
{extra}
"""
        )
    )


def export(pipeline: Pipeline, name: str) -> bytes:
    run = pipeline.sync(name, SINCE)
    assert run["status"] == "completed", run
    return exported(pipeline, run).read_bytes()


def documented(columns: list[str], tz: str, *, unique_ids: bool = True) -> list[str]:
    return [c.replace("<tz>", tz) for c in columns if unique_ids or c not in OPTIONAL]


@pytest.mark.parametrize(("tz", "unique_ids"), [("UTC", True), ("Asia/Calcutta", False)])
def test_each_exports_header_is_alms_documented_columns_in_the_accounts_time_zone(
    pipeline: Pipeline, tz: str, unique_ids: bool
) -> None:
    connections(f'timezone = "{tz}"\nunique_ids = {str(unique_ids).lower()}')
    people(pipeline)
    learning()
    transcript = export(pipeline, "transcripts").decode("utf-8").split("\n", 1)[0].split(",")
    assert transcript == [
        *documented(TRANSCRIPT_DOC, tz, unique_ids=unique_ids),
        "department",
        *TRANSCRIPT_AFTER_PROFILE,
    ]
    skills = export(pipeline, "skills").decode("utf-8").split("\n", 1)[0].split(",")
    assert skills == [*documented(SKILLS_DOC, tz, unique_ids=unique_ids), "department", "Manager Name"]


def test_transcript_values_take_alms_forms(pipeline: Pipeline) -> None:
    connections("")
    people(pipeline)
    learning()
    path = pipeline.settings.export_dir / "t.csv"
    path.write_bytes(export(pipeline, "transcripts"))
    rows = read_rows(path)
    assert {r["Status"] for r in rows} <= STATUSES and {r["userState"] for r in rows} <= USER_STATES
    for r in rows:
        for column in ("Started Date (UTC TimeZone)", "Completion Date (UTC TimeZone)"):
            assert r[column] == "" or DAY.match(r[column]), (column, r[column])
        # Progress % on every row in progress (ALM shows it), 100 when completed; a whole number.
        expected = {"Completed": "100", "Not started": "0"}.get(r["Status"])
        assert r["Progress %"].isdigit() and (expected is None or r["Progress %"] == expected), r
    by_status = {r["Status"]: r for r in rows}
    assert set(by_status) == {"Completed", "In Progress"}


def test_the_xapi_export_with_crlf_ends_its_lines_as_almss_report_and_writes_instants_in_the_zone(
    pipeline: Pipeline,
) -> None:
    connections('line_ends = "crlf"\ntimezone = "Asia/Calcutta"')
    people(pipeline)
    learning()
    data = export(pipeline, "xapi")
    sample = XAPI_REPORT.read_bytes()
    header = sample.split(b"\r\n", 1)[0]
    assert data.startswith(header.replace(b",profile,", b",department,") + b"\r\n")
    # Every row ends in CR LF; the line breaks inside the quoted statement stay as stored.
    body = data.split(b"\r\n", 1)[1]
    assert body.endswith(b"\r\n") and body.count(b"\r\n") == 1
    path = pipeline.settings.export_dir / "x.csv"
    path.write_bytes(data)
    (row,) = read_rows(path)
    assert row["TimeStamp"] == "2026-11-20T15:29:58.500+05:30"  # 09:59:58.5 UTC in India


def test_unenrolled_can_be_chosen_alone_and_a_time_zone_must_exist() -> None:
    config = load_connections_toml('[[connections]]\nname = "t"\nkind = "transcript_export"\nstatus = ["unenrolled"]')
    (transcripts,) = config
    assert isinstance(transcripts, ExportConnection) and transcripts.status == ["unenrolled"]
    with pytest.raises(ConfigError, match="timezone 'Mars/Olympus' is not a time zone"):
        load_connections_toml('[[connections]]\nname = "t"\nkind = "transcript_export"\ntimezone = "Mars/Olympus"')
