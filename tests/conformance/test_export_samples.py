"""Exports against the real thing: the xAPI export's header is the header of ALM's own xAPI activity
report (../shared/samples/alm/xapi-report, read in place), and `feedsync sync transcripts --since
2017-01-01 --wait`, run as a user runs it, exports the real HMM samples after they were imported."""

from __future__ import annotations

import csv
import os
import shutil
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from producers.commands import apply_connections
from schemas.connections import load_connections_toml
from tests.conftest import SAMPLES, DbToday, feedsync, sql
from tests.stubpipeline import Pipeline
from tests.unit.exportdata import HMM_AND_TRANSCRIPTS, exported, read_rows

pytestmark = pytest.mark.conformance

ALM = SAMPLES / "alm"
XAPI_REPORT = ALM / "xapi-report" / "xapireport8842560559890766717csv_unzipped" / "xapiReport8842560559890766717.csv"

TOML = (
    HMM_AND_TRANSCRIPTS
    + """
[[connections]]
name = "xapi"
kind = "xapi_export"
"""
)

PEOPLE = """
[[connections]]
name = "hr-users"
kind = "users"
[connections.mapping]
email = "Email"
first_name = "First Name"
profile = "Profile"
"""


def test_the_xapi_export_header_is_alms_xapi_activity_report_header(pipeline: Pipeline) -> None:
    with open(XAPI_REPORT, encoding="utf-8", newline="") as f:
        sample_header = f.readline()
        sample = list(csv.DictReader(f, fieldnames=next(csv.reader([sample_header]))))
    apply_connections(load_connections_toml(TOML + PEOPLE))
    # ALM's sample has one group-able profile field, "profile"; so do our people.
    pipeline.import_files(
        (
            "import/user/internal/people.csv",
            "Email,First Name,Profile\n" + f"{sample[0]['User Email']},ftpconnectioncheck81,employee\n",
        )
    )
    first = sample[0]
    sql(
        """INSERT INTO lms.xapi_statements (id, user_id, actor_email, verb_id, object_id, "timestamp", statement)
           SELECT (%(s)s::json ->> 'id')::uuid, u.id, u.email, %(verb)s, %(object)s, %(ts)s, %(s)s
           FROM lms.users u""",
        {
            "s": first["Statement JSON"],
            "verb": first["Verb IRI"],
            "object": first["Activity IRI"],
            "ts": first["TimeStamp"],
        },
    )
    run = pipeline.sync("xapi", date(2017, 1, 1))
    path = exported(pipeline, run)
    with open(path, encoding="utf-8", newline="") as f:
        assert f.readline() == sample_header.rstrip("\r\n") + "\n"
    (row,) = read_rows(path)
    assert row == first


def test_feedsync_sync_transcripts_since_2017_exports_the_imported_hmm_samples(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    apply_connections(load_connections_toml(TOML))
    for name, sample in {
        "hmm12_metadata.csv": "hmm12-metadata.csv",
        "client_hmm12_20170304.csv": "client-hmm12-20170304.csv",
    }.items():
        dst = pipeline.settings.drop_dir / "import" / "hmm" / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ALM / sample, dst)
    assert pipeline.sync("hmm", date(2017, 3, 1))["status"] == "completed"

    env: dict[str, Any] = {
        **os.environ,
        "FEEDSYNC_DROP_DIR": str(pipeline.settings.drop_dir),
        "FEEDSYNC_EXPORT_DIR": str(pipeline.settings.export_dir),
    }
    folder = pipeline.settings.export_dir / "export" / "transcripts"
    today = DbToday()
    out = feedsync("sync", "transcripts", "--since", "2017-01-01", "--wait", env=env)
    (path,) = [folder / n for n in today.names("learner_transcript_2017-01-01_to_{}.csv") if n in out.stdout]
    assert f"wrote {path} (1 rows)" in out.stdout, out.stdout
    end = path.stem.rsplit("_to_", 1)[1]
    with open(ALM / "client-hmm12-20170304.csv", encoding="utf-8-sig", newline="") as f:
        (feed,) = list(csv.DictReader(f))
    (row,) = read_rows(path)
    assert row["email"] == feed["Email Address"]
    assert row["Name"] == f"{feed['First Name']} {feed['Last Name']}"
    assert row["Course"] == feed["Topic Title"]
    assert row["Status"] == "Completed"
    assert (
        row["Completion Date (UTC TimeZone)"]
        == datetime.strptime(feed["Completion Date"], "%m/%d/%Y").date().isoformat()
    )
    assert row["Quiz Score"] == feed["Assessment Score"]
    history = feedsync("history", "transcripts", env=env).stdout
    assert f"2017-01-01..{end}" in history and path.name in history
    run_id = history.splitlines()[1].split()[0]
    shown = feedsync("run", run_id, env=env).stdout
    assert f"export: {path}  rows=1" in shown and "window: 2017-01-01T00:00:00+00:00 (inclusive)" in shown
