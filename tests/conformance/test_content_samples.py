"""Real content-provider feeds from Adobe Learning Manager's documentation (../shared/samples/alm, see
SOURCES.md there), dropped under the names the providers use and checked field by field. The
expected courses are read from the sample with Python's csv module, independently of the import."""

from __future__ import annotations

import csv
import shutil
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest

from producers import queries
from producers.commands import apply_connections
from schemas.connections import load_connections_toml
from tests.conftest import SAMPLES, sql
from tests.stubpipeline import Pipeline

pytestmark = pytest.mark.conformance

ALM = SAMPLES / "alm"
TOML = """
[[connections]]
name = "hmm"
kind = "hmm"
trigger = "on_schedule"
create_learners = true

[[connections]]
name = "getabstract"
kind = "getabstract"
trigger = "on_schedule"
"""


def mdy(v: str) -> date:
    return datetime.strptime(v, "%m/%d/%Y").date()


def items(v: str) -> list[str]:
    return [t.strip() for t in v.split(";") if t.strip()]


def drop_and_sync(
    pipeline: Pipeline, connection: str, files: dict[str, str], since: date | None = None
) -> dict[str, Any]:
    for name, sample in files.items():
        dst = pipeline.settings.drop_dir / "import" / connection / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ALM / sample, dst)
    return pipeline.sync(connection, since)


def test_hmm_metadata_and_user_feed_samples(pipeline: Pipeline) -> None:
    apply_connections(load_connections_toml(TOML))
    run = drop_and_sync(
        pipeline,
        "hmm",
        {"hmm12_metadata.csv": "hmm12-metadata.csv", "client_hmm12_20170304.csv": "client-hmm12-20170304.csv"},
        since=date(2017, 3, 1),
    )
    assert run["status"] == "completed", queries.errors(run["run_id"])
    with open(ALM / "hmm12-metadata.csv", encoding="utf-8-sig", newline="") as f:
        sample = list(csv.DictReader(f))
    assert len(sample) == 44
    assert run["content"] == {
        "courses_created": 44,
        "courses_updated": 0,
        "courses_retired": sum(r["Status"] == "Removed" for r in sample),
        "progress_written": 1,
    }
    stored = {
        r[0]: r[1:]
        for r in sql(
            """SELECT c.external_id, c.provider, c.title, c.description, c.launch_url, c.image_url, c.authors,
                      c.duration_minutes, c.language, c.published_on, c.copyright_holder, c.asset_type, c.asset_format,
                      c.collection, c.discipline, c.parent_external_id, c.source_modified_on, c.tags, c.status,
                      coalesce((SELECT array_agg(s.name ORDER BY s.name) FROM lms.course_skills cs
                                JOIN lms.skills s ON s.id = cs.skill_id WHERE cs.course_id = c.id), '{}')
               FROM lms.courses c"""
        )
    }
    expected = {
        r["Product ID"]: (
            "hmm",
            r["Title"],
            r["Description"],
            r["URL"],
            r["Image URL"],
            r["Authors"],
            int(r["Duration"]),
            r["Language"],
            mdy(r["Publication Date"]),
            r["Copyright Holder"],
            r["Asset Type"],
            r["Asset Format"],
            r["Collection"],
            r["Major Discipline"],
            r["Parent Product ID"] or None,
            mdy(r["Last Modified Date"]),
            items(r["Subject Tags"]),
            "retired" if r["Status"] == "Removed" else "active",
            sorted(set(items(r["Skills"]))),
        )
        for r in sample
    }
    assert stored == expected
    assert sql("SELECT count(*) FROM lms.skills")[0][0] == len({s.lower() for r in sample for s in items(r["Skills"])})

    # The user feed's topic code (30HMM) is HMM's older code for "Presentation Skills": matched by title.
    assert sql(
        """SELECT u.email, u.first_name, u.last_name, c.external_id, c.title, p.status, p.first_accessed_on,
                  p.last_accessed_on, p.completed_on, p.assessed_on, p.score, p.time_spent_minutes, p.visits
           FROM lms.learner_progress p JOIN lms.users u ON u.id = p.user_id JOIN lms.courses c ON c.id = p.course_id"""
    ) == [
        ("user1@xyz.com", "User1", "Lastname1", "186PS-HTM-ENG", "Presentation Skills", "completed",
         date(2017, 3, 1), date(2017, 3, 3), date(2017, 3, 3), date(2017, 3, 3), Decimal(83), 269, 6),
    ]  # fmt: skip


def test_getabstract_report_sample_with_excel_serial_dates(pipeline: Pipeline) -> None:
    apply_connections(load_connections_toml(TOML))
    pipeline.import_files(
        (
            "import/user/internal/people.csv",
            "Email,First Name,Last Name,Manager Email,Department\nuser1@xyz.com,U,L,,S\n",
        )
    )
    run = drop_and_sync(
        pipeline, "getabstract", {"report_export_2017_04_01_175342.xlsx": "report-export-20170401175342.xlsx"}
    )
    assert run["status"] == "completed", queries.errors(run["run_id"])
    assert run["content"] == {"courses_created": 1, "courses_updated": 0, "courses_retired": 0, "progress_written": 1}
    assert sql(
        """SELECT provider, external_id, title, language, category, asset_type, asset_format, status FROM lms.courses"""
    ) == [("getabstract", "27980", "Value", "en", "Sales & Marketing", "Summary", "Audio", "active")]
    # downloadDate is the serial 42825 in a date-formatted cell: 31 March 2017.
    assert sql(
        """SELECT u.email, p.status, p.first_accessed_on, p.last_accessed_on, p.completed_on, p.score, p.visits
           FROM lms.learner_progress p JOIN lms.users u ON u.id = p.user_id"""
    ) == [("user1@xyz.com", "completed", date(2017, 3, 31), date(2017, 3, 31), date(2017, 3, 31), None, None)]
