"""Each stage record names the worker group, host and process that ran it; worker processes beat in
sync.worker_heartbeats; `feedsync status` lists the groups, alive, lost (silent) or stopped."""

from __future__ import annotations

import json
import os
import socket

import pytest
from click.testing import CliRunner

from producers.cli import cli
from tests.conftest import sql
from tests.stubpipeline import HEADER, Pipeline
from tests.waiting import poll_until


@pytest.fixture
def group_a(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("FEEDSYNC_WORKER_GROUP", "group-a")
    return "group-a"


def test_stage_records_name_the_group_host_and_process_and_status_lists_the_groups(
    group_a: str, pipeline: Pipeline
) -> None:
    run_id = pipeline.import_files(("import/user/internal/a.csv", HEADER + "ann@x.com,Ann,Ames,,Sales\n"))
    rows = sql("SELECT DISTINCT worker_group, host, pid FROM sync.stage_runs WHERE run_id = %s", (run_id,))
    assert rows == [(group_a, socket.gethostname(), os.getpid())]

    # A group whose processes went silent (killed: no clean stop) is listed as lost, not alive.
    sql(
        """INSERT INTO sync.worker_heartbeats (worker_group, host, pid, store, last_heartbeat)
           VALUES ('group-b', 'host-b', 4242, 's3://bucket/feeds', clock_timestamp() - interval '10 minutes')"""
    )
    result = CliRunner().invoke(cli, ["status", "--json"])
    assert result.exit_code == 0, result.output
    groups = {g["worker_group"]: g for g in json.loads(result.output)["worker_groups"]}
    assert groups["group-a"]["state"] == "alive" and groups["group-a"]["live_processes"] == 1
    assert groups["group-b"]["state"] == "lost" and groups["group-b"]["hosts"] == "host-b"

    # Judge only the groups this test made: a worker process of an earlier test on this machine may
    # still be beating into the same database under the host's name.
    text = CliRunner().invoke(cli, ["status"]).output
    alive = sum(g["state"] == "alive" for g in groups.values())
    assert f"worker groups: {alive} alive:" in text
    assert f"  group-a  alive  host {socket.gethostname()}  processes 1" in text
    assert "  group-b  lost  host host-b  processes 0" in text


def test_a_worker_that_stops_cleanly_is_listed_as_stopped(group_a: str, pipeline: Pipeline) -> None:
    mine = "FROM sync.worker_heartbeats WHERE pid = %s"
    poll_until(lambda: sql(f"SELECT 1 {mine}", (os.getpid(),)), timeout=10, message="no heartbeat")
    pipeline.broker.emit_before("worker_shutdown", None)
    states = {g: s for g, s in sql(f"SELECT worker_group, stopped_at IS NOT NULL {mine}", (os.getpid(),))}
    assert states == {group_a: True}
