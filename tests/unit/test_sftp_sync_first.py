"""SFTP in `sync` and `sftp check`: `feedsync sync CONN` on an SFTP pull connection polls the
server first (files younger than min_file_age_s stay there) and then runs what landed, as ALM's
"run now" does; `feedsync sftp check` on a push (export) connection connects, writes a probe file
into remote_dir and removes it. Against asyncssh's server in the test process."""

from __future__ import annotations

import time
from typing import Any

from click.testing import CliRunner

from producers.cli import cli
from producers.commands import apply_connections
from schemas.connections import load_connections_toml
from tests.conftest import sql
from tests.sftp_server import ClientKey, SftpServer, client_key, sftp_server
from tests.sftpdata import FEED, OTHER, _drained, put, users_toml
from tests.stubpipeline import Pipeline

__all__ = ["_drained", "client_key", "sftp_server"]  # fixtures, used by name


def scheduled(server: SftpServer, key: ClientKey, **sftp: Any) -> None:
    """hr-users on the server, run only when asked (no run starts when a file lands)."""
    toml = users_toml(server, key, **sftp).replace('kind = "users"', 'kind = "users"\ntrigger = "on_schedule"')
    apply_connections(load_connections_toml(toml))


def test_feedsync_sync_polls_the_server_first_then_runs_what_landed(
    pipeline: Pipeline, sftp_server: SftpServer, client_key: ClientKey
) -> None:
    scheduled(sftp_server, client_key, min_file_age_s=600)
    put(sftp_server, "monday.csv", FEED)  # an hour old: taken
    put(sftp_server, "growing.csv", OTHER, mtime=time.time())  # younger than min_file_age_s: left there
    out = CliRunner().invoke(cli, ["sync", "hr-users", "--wait"])
    assert out.exit_code == 0, out.output
    assert f"hr-users: pulled 1 file(s) from sftp://lms@127.0.0.1:{sftp_server.port}/outbound" in out.output
    assert "completed" in out.output
    assert sorted(e for (e,) in sql("SELECT email FROM lms.users WHERE email LIKE '%%@x.com'")) == [
        "ann@x.com",
        "bob@x.com",
    ]
    assert sql("SELECT ok FROM sync.sftp_polls") == [(True,)], "the on-demand poll is recorded as a poll"
    assert (sftp_server.root / "outbound" / "growing.csv").exists()


def test_feedsync_sync_says_why_when_the_server_cannot_be_polled_and_runs_nothing(
    pipeline: Pipeline, sftp_server: SftpServer, client_key: ClientKey
) -> None:
    scheduled(sftp_server, client_key)
    sftp_server.stop()
    before = sql("SELECT count(*) FROM sync.runs")
    out = CliRunner().invoke(cli, ["sync", "hr-users"])
    assert out.exit_code == 1 and "nothing was run" in out.output, out.output
    assert sql("SELECT count(*) FROM sync.runs") == before
    assert sql("SELECT ok FROM sync.sftp_polls") == [(False,)]


def test_sftp_check_of_a_push_connection_writes_and_removes_a_probe_file(
    pipeline: Pipeline, sftp_server: SftpServer, client_key: ClientKey
) -> None:
    (sftp_server.root / "inbound").mkdir()
    apply_connections(
        load_connections_toml(
            f"""
[[connections]]
name = "transcripts"
kind = "transcript_export"
[connections.sftp]
host = "127.0.0.1"
port = {sftp_server.port}
user = "lms"
host_key = "{sftp_server.host_key_line}"
key_file = "{client_key.path}"
remote_dir = "/inbound"
"""
        )
    )
    out = CliRunner().invoke(cli, ["sftp", "check", "transcripts"])
    assert out.exit_code == 0, out.output
    assert "host key pinned and verified" in out.output and "the export can be pushed there" in out.output
    opened = [p for op, p in sftp_server.log if op == "open"]
    assert len(opened) == 1 and opened[0].startswith("/inbound/.feedsync-probe-")
    assert ("remove", opened[0]) in sftp_server.log
    assert list((sftp_server.root / "inbound").iterdir()) == [], "the probe is removed"

    (sftp_server.root / "inbound").rmdir()  # a remote folder that is not there: one sentence saying so
    refused = CliRunner().invoke(cli, ["sftp", "check", "transcripts"])
    assert refused.exit_code == 1 and "check that remote_dir exists" in refused.output, refused.output
