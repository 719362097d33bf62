"""Retention: user feeds go as soon as their run has ended; content feeds are kept 7 days after
their run and then removed; no file is removed while a run that reads it is still going."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from producers import queries, registry
from producers.commands import apply_connections, start_sync
from schemas.connections import ConfigError, load_connections_toml
from tests.conftest import sql
from tests.contentdata import HMM_TOML, META_HEADER, course
from tests.gates import Gate
from tests.stubpipeline import HEADER, Pipeline
from workers.runs import retention


def stored(pipeline: Pipeline, name: str) -> Path:
    (path,) = sql("SELECT stored_path FROM sync.feed_files WHERE original_path LIKE %s", (f"%{name}",))[0]
    return pipeline.settings.stored_file(path)


def test_a_user_feed_is_removed_when_its_run_ends_but_not_after_a_dry_run(pipeline: Pipeline) -> None:
    pipeline.drop("import/user/internal/a.csv", HEADER + "a@x.com,A,A,,S\n")
    registry.scan(pipeline.settings, announce=False)
    start_sync(pipeline.settings, "hr-users", dry_run=True)
    pipeline.drain()
    assert stored(pipeline, "a.csv").exists(), "a dry run imported nothing; its file waits for the real run"
    assert sql("SELECT status, removed_at FROM sync.feed_files") == [("registered", None)]

    start_sync(pipeline.settings, "hr-users")
    pipeline.drain()
    assert sql("SELECT email FROM lms.users") == [("a@x.com",)]
    assert not stored(pipeline, "a.csv").exists()
    assert sql("SELECT status, removed_at IS NOT NULL FROM sync.feed_files") == [("imported", True)]
    (latest,) = queries.history(limit=1)
    detail = queries.run_detail(latest["run_id"])
    assert detail is not None and detail["files"][0]["removed_at"] is not None


def test_content_feeds_are_kept_seven_days_after_their_run_then_removed(pipeline: Pipeline) -> None:
    apply_connections(load_connections_toml(HMM_TOML.format(extra="")))
    pipeline.drop("import/hmm/hmm12_metadata.csv", META_HEADER + course("P1", "Time Management"))
    registry.scan(pipeline.settings, announce=False)
    start_sync(pipeline.settings, "hmm")
    pipeline.drain()
    (finished,) = sql("SELECT finished_at FROM sync.runs WHERE connection_name = 'hmm'")[0]
    path = stored(pipeline, "hmm12_metadata.csv")
    assert path.exists()
    assert retention.sweep(at=finished + timedelta(days=7) - timedelta(minutes=1)) == []
    assert path.exists()
    assert retention.sweep(at=finished + timedelta(days=7, minutes=1)) == ["import/hmm/hmm12_metadata.csv"]
    assert not path.exists()
    assert sql("SELECT count(*) FROM lms.courses")[0][0] == 1, "removing a file changes nothing it imported"


def test_a_file_read_by_a_running_window_is_never_removed(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, gate: Gate
) -> None:
    apply_connections(load_connections_toml(HMM_TOML.format(extra="")))
    day = datetime.now(UTC).date() - timedelta(days=1)
    pipeline.drop("import/hmm/hmm12_metadata.csv", META_HEADER + course("P1", "Time Management"))
    pipeline.drop(f"import/hmm/client_hmm12_{day:%Y%m%d}.csv", "Username,Topic Code\nzed@x.com,P1\n")
    registry.scan(pipeline.settings, announce=False)
    start_sync(pipeline.settings, "hmm")
    pipeline.drain()
    feed = stored(pipeline, f"client_hmm12_{day:%Y%m%d}.csv")
    assert feed.exists()

    # A --since window reads the old feed again, and is held inside its load.
    monkeypatch.setenv("FEEDSYNC_FAILPOINTS", gate.at("load.merged"))
    run_id = start_sync(pipeline.settings, "hmm", since=day)
    gate.wait_reached()
    assert sql("SELECT status FROM sync.runs WHERE id = %s", (run_id,))[0][0] == "in_progress"
    far = datetime.now(UTC) + timedelta(days=30)
    # The metadata, read by no running run, is due; the window's feed is not.
    assert retention.sweep(at=far) == ["import/hmm/hmm12_metadata.csv"]
    assert feed.exists(), "a file of a running run was removed"
    gate.open()
    pipeline.drain()
    assert sql("SELECT status FROM sync.runs WHERE id = %s", (run_id,))[0][0] in ("completed", "completed_with_errors")
    assert f"import/hmm/client_hmm12_{day:%Y%m%d}.csv" in retention.sweep(at=far)
    assert not feed.exists()


def test_retention_days_past_ten_years_is_refused_at_apply() -> None:
    toml = HMM_TOML.format(extra="retention_days = 9999999999")
    with pytest.raises(ConfigError, match=r"retention_days: .*less than or equal to 3650"):
        load_connections_toml(toml)


def test_one_connection_that_cannot_be_swept_never_stops_the_sweep_for_the_others(pipeline: Pipeline) -> None:
    apply_connections(load_connections_toml(HMM_TOML.format(extra="")))
    pipeline.drop("import/hmm/hmm12_metadata.csv", META_HEADER + course("P1", "Time Management"))
    pipeline.drop("import/user/internal/a.csv", HEADER + "a@x.com,A,A,,S\n")
    registry.scan(pipeline.settings, announce=False)
    # Stored before apply bounded the value: it overflowed the sweep's arithmetic for everyone.
    sql(
        """UPDATE sync.connections SET config = jsonb_set(config, '{retention_days}', '9999999999')
           WHERE name = 'hr-users'"""
    )
    start_sync(pipeline.settings, "hr-users")
    start_sync(pipeline.settings, "hmm")
    pipeline.drain(expect_failures=True)  # hr-users cannot even be parsed with that config; not the point here
    user_feed, metadata = stored(pipeline, "a.csv"), stored(pipeline, "hmm12_metadata.csv")
    later = datetime.now(UTC) + timedelta(days=8)
    assert retention.sweep(at=later) == ["import/hmm/hmm12_metadata.csv"]
    assert not metadata.exists()
    assert user_feed.exists(), "a connection whose retention cannot be read keeps its files"


def test_one_stored_file_that_cannot_be_removed_never_stops_the_others(pipeline: Pipeline) -> None:
    apply_connections(load_connections_toml(HMM_TOML.format(extra="")))
    day = datetime.now(UTC).date() - timedelta(days=1)
    pipeline.drop("import/hmm/hmm12_metadata.csv", META_HEADER + course("P1", "Time Management"))
    pipeline.drop(f"import/hmm/client_hmm12_{day:%Y%m%d}.csv", "Username,Topic Code\nzed@x.com,P1\n")
    registry.scan(pipeline.settings, announce=False)
    start_sync(pipeline.settings, "hmm")
    pipeline.drain()
    stuck, other = stored(pipeline, "hmm12_metadata.csv"), stored(pipeline, f"client_hmm12_{day:%Y%m%d}.csv")
    stuck.unlink()
    (stuck / "in-the-way").mkdir(parents=True)  # unlink() of a folder fails
    swept = retention.sweep(at=datetime.now(UTC) + timedelta(days=8))
    assert sorted(swept) == sorted(["import/hmm/hmm12_metadata.csv", f"import/hmm/client_hmm12_{day:%Y%m%d}.csv"])
    assert not other.exists()
