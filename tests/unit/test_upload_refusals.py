"""Ordinary input to the CLI gets one sentence, never a traceback: an upload to an export
connection, a name that fills the filesystem's limit, a huge schedule period, a start
date after the database's today, a queued run's duration."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from producers.commands import CommandError, apply_connections, set_schedule
from schemas.connections import load_connections_toml
from tests.conftest import DATABASE_URL, feedsync, sql
from tests.stubpipeline import HEADER, USERS_TOML, Pipeline

EXPORT = '[[connections]]\nname = "transcripts"\nkind = "transcript_export"\n'


def test_an_upload_to_an_export_connection_is_refused_in_one_sentence(pipeline: Pipeline, tmp_path: Path) -> None:
    apply_connections(load_connections_toml(EXPORT))
    f = tmp_path / "a.csv"
    f.write_text(HEADER)
    out = feedsync("upload", "transcripts", str(f), check=False)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "transcripts is an export connection: it writes files and takes none" in out.stderr


def test_a_244_byte_name_is_uploaded(pipeline: Pipeline, tmp_path: Path) -> None:
    long = tmp_path / ("u" * 240 + ".csv")
    long.write_text(HEADER + "a@x.com,A,B,,S\n")
    out = feedsync("upload", "hr-users", str(long), check=False)
    assert out.returncode == 0, out.stderr
    assert (pipeline.settings.drop_dir / "import/user/internal" / long.name).is_file()


def test_a_schedule_period_too_large_for_the_database_is_refused_on_its_line(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text(USERS_TOML + '\n[connections.schedule]\nstart = "2026-01-01T00:00:00Z"\nevery_days = 99999999999\n')
    out = feedsync("connections", "apply", str(toml), check=False)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "3650" in out.stderr and "c.toml" in out.stderr


@pytest.mark.parametrize("every", [99999999999, 3651])
def test_set_schedule_refuses_a_huge_period_in_one_sentence(pipeline: Pipeline, every: int) -> None:
    with pytest.raises(CommandError, match="less than or equal to 3650"):
        set_schedule("hr-users", start="2026-01-01T00:00:00+00:00", every=every)


def test_an_on_demand_start_date_after_the_databases_today_is_refused_at_once(pipeline: Pipeline) -> None:
    db = psycopg.conninfo.conninfo_to_dict(DATABASE_URL)["dbname"]
    sql(f"ALTER DATABASE \"{db}\" SET feedsync.clock = '2020-01-01T12:00:00Z'")
    try:
        # Today on this host; the database's clock says 2020-01-01, and it decides.
        out = feedsync("sync", "hr-users", "--since", f"{datetime.now(UTC):%Y-%m-%d}", check=False)
    finally:
        sql(f'ALTER DATABASE "{db}" RESET feedsync.clock')
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "is after today (2020-01-01 UTC); give today or an earlier day" in out.stderr
    assert sql("SELECT count(*) FROM sync.runs") == [(0,)]


def test_a_queued_runs_duration_says_it_has_not_started(pipeline: Pipeline) -> None:
    ((conn_id,),) = sql("SELECT id FROM sync.connections")
    ((run_id,),) = sql(
        "INSERT INTO sync.runs (connection_id, connection_name, kind, trigger, config) "
        "VALUES (%s, 'hr-users', 'users', 'on_demand', '{}') RETURNING id",
        (conn_id,),
    )
    out = feedsync("run", str(run_id))
    assert "Nones" not in out.stdout and "queued  not started" in out.stdout
