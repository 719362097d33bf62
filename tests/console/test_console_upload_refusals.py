"""The console's upload, schedule and on-demand forms answer ordinary input with one sentence,
audited as a refusal: never a 500, never the server's temporary path."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
from starlette.testclient import TestClient

from producers.commands import apply_connections
from schemas.connections import load_connections_toml
from tests.conftest import DATABASE_URL, sql
from tests.console.conftest import form_token
from tests.stubpipeline import HEADER, USERS_TOML, Pipeline

FEED = "import/user/internal/"


def last_audit() -> tuple[str, str, str]:
    ((action, target, outcome),) = sql("SELECT action, target, outcome FROM sync.audit ORDER BY id DESC LIMIT 1")
    return action, target, outcome


def test_an_upload_to_an_export_connection_is_a_refusal(as_admin: TestClient, pipeline: Pipeline) -> None:
    apply_connections(load_connections_toml('[[connections]]\nname = "transcripts"\nkind = "transcript_export"\n'))
    r = as_admin.post(
        "/connections/transcripts/upload",
        data={"csrf": form_token(as_admin)},
        files={"files": ("a.csv", HEADER.encode(), "text/csv")},
    )
    assert r.status_code == 400 and "it writes files and takes none" in r.text
    assert last_audit()[:2] == ("upload", "transcripts") and last_audit()[2].startswith(
        "refused: transcripts is an export"
    )


def test_a_244_byte_name_is_uploaded_and_a_longer_one_refused_saying_why(
    as_admin: TestClient, pipeline: Pipeline
) -> None:
    token = form_token(as_admin)
    name = "u" * 240 + ".csv"
    r = as_admin.post(
        "/connections/hr-users/upload",
        data={"csrf": token},
        files={"files": (name, (HEADER + "a@x.com,A,B,,S\n").encode(), "text/csv")},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert (pipeline.settings.drop_dir / FEED / name).is_file()
    r = as_admin.post(
        "/connections/hr-users/upload",
        data={"csrf": token},
        files={"files": ("é" * 126 + ".csv", HEADER.encode(), "text/csv")},
    )
    assert r.status_code == 400 and "is 256 bytes long (UTF-8), more than the 255 a file name may have" in r.text
    assert "starts with" not in r.text and last_audit()[2].startswith("refused: not uploaded: the name")


def test_an_upload_refusal_names_the_file_not_the_servers_temporary_path(
    as_admin: TestClient, pipeline: Pipeline
) -> None:
    r = as_admin.post(
        "/connections/hr-users/upload",
        data={"csrf": form_token(as_admin)},
        files={"files": ("people.zip", b"PK\x03\x04", "application/zip")},
    )
    assert r.status_code == 400
    assert "people.zip: not uploaded: hr-users would never take it" in r.text
    assert "feedsync-upload-" not in r.text and "/tmp" not in r.text
    assert "/tmp" not in last_audit()[2]


def test_a_huge_schedule_number_is_a_refusal(as_admin: TestClient, pipeline: Pipeline) -> None:
    r = as_admin.post(
        "/connections/hr-users/schedule",
        data={"csrf": form_token(as_admin), "start_date": "2026-12-01", "every": "9" * 30},
    )
    assert r.status_code == 400 and "less than or equal to 3650" in r.text
    assert last_audit()[0] == "schedule" and last_audit()[2].startswith("refused: ")


def test_an_on_demand_start_date_after_the_databases_today_is_refused_at_once(as_admin: TestClient) -> None:
    # No worker here: its pool's connections would keep the clock they opened with.
    apply_connections(load_connections_toml(USERS_TOML))
    token = form_token(as_admin)
    db = psycopg.conninfo.conninfo_to_dict(DATABASE_URL)["dbname"]
    sql(f"ALTER DATABASE \"{db}\" SET feedsync.clock = '2020-01-01T12:00:00Z'")
    try:
        r = as_admin.post(
            "/connections/hr-users/sync",
            data={"csrf": token, "since": f"{datetime.now(UTC):%Y-%m-%d}", "access": "online"},
        )
    finally:
        sql(f'ALTER DATABASE "{db}" RESET feedsync.clock')
    assert r.status_code == 400 and "is after today (2020-01-01 UTC)" in r.text
    assert last_audit()[0] == "sync" and last_audit()[2].startswith("refused: the start date")
    assert sql("SELECT count(*) FROM sync.runs") == [(0,)]
