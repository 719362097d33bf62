"""Exports pushed to an SFTP server (asyncssh's, in the test process): uploaded as ``.part``, the
size checked, renamed into place, a marker after it, and the run records where it went."""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Any

import pytest

from producers.commands import apply_connections
from schemas.connections import load_connections_toml
from tests.conftest import sql
from tests.sftp_server import ClientKey, SftpServer, client_key, sftp_server
from tests.stubpipeline import Pipeline
from tests.unit.exportdata import learning, people

__all__ = ["client_key", "sftp_server"]

SINCE = date(2026, 11, 1)


def export_toml(server: SftpServer, key: ClientKey, *, host_key: str | None = None, extra: str = "") -> str:
    return f"""
[[connections]]
name = "transcripts"
kind = "transcript_export"

[connections.sftp]
host = "127.0.0.1"
port = {server.port}
user = "lms"
host_key = "{host_key or server.host_key_line}"
key_file = "{key.path}"
remote_dir = "/inbound"
{extra}
"""


def test_an_export_is_uploaded_as_part_then_renamed_into_place_with_its_marker_and_the_run_records_it(
    pipeline: Pipeline, sftp_server: SftpServer, client_key: ClientKey
) -> None:
    (sftp_server.root / "inbound").mkdir()
    apply_connections(load_connections_toml(export_toml(sftp_server, client_key, extra='done_marker = ".done"')))
    people(pipeline)
    learning()
    run: dict[str, Any] = pipeline.sync("transcripts", SINCE)
    assert run["status"] == "completed", run
    name = run["export"]["file"]
    pushed = sftp_server.root / "inbound" / name
    assert sorted(p.name for p in pushed.parent.iterdir()) == [name, name + ".done"]
    assert run["export"]["sha256"] == hashlib.sha256(pushed.read_bytes()).hexdigest()
    assert run["export"]["bytes"] == pushed.stat().st_size and run["export"]["rows"] == 2
    writes = [op for op in sftp_server.log if op[0] in ("open", "posix_rename")]
    assert writes[:2] == [("open", f"/inbound/{name}.part"), ("posix_rename", f"/inbound/{name}.part")]
    (destination,) = sql("SELECT destination FROM sync.exports")[0]
    assert destination == f"sftp://lms@127.0.0.1:{sftp_server.port}/inbound"
    assert not list((pipeline.settings.export_dir / ".sftp-outbox").rglob("*.csv*")), "the local copy is removed"


def test_an_export_to_a_server_with_another_host_key_fails_the_run_at_once_and_uploads_nothing(
    pipeline: Pipeline, sftp_server: SftpServer, client_key: ClientKey
) -> None:
    (sftp_server.root / "inbound").mkdir()
    other = ClientKey(pipeline.settings.drop_dir).public  # any key but the server's
    apply_connections(load_connections_toml(export_toml(sftp_server, client_key, host_key=other)))
    people(pipeline)
    learning()
    from producers import queries
    from producers.commands import start_sync

    run_id = start_sync(pipeline.settings, "transcripts", since=SINCE)
    pipeline.drain(expect_failures=True)
    run = queries.run_detail(run_id)
    assert run is not None and run["status"] == "failed"
    assert "did not present the pinned host key" in run["error"]
    assert sql("SELECT max(attempts) FROM sync.stage_runs WHERE stage = 'export'")[0][0] == 1, "not retried"
    assert list((sftp_server.root / "inbound").iterdir()) == []


def test_an_export_whose_remote_folder_is_missing_fails_with_one_sentence_and_leaves_no_part(
    pipeline: Pipeline, sftp_server: SftpServer, client_key: ClientKey
) -> None:
    apply_connections(load_connections_toml(export_toml(sftp_server, client_key)))
    people(pipeline)
    learning()
    from producers import queries
    from producers.commands import start_sync

    run_id = start_sync(pipeline.settings, "transcripts", since=SINCE)
    pipeline.drain(expect_failures=True)
    run = queries.run_detail(run_id)
    assert run is not None and run["status"] == "failed"
    assert "check that remote_dir exists and 'lms' may write there" in run["error"]


@pytest.mark.parametrize("key", ["after_pickup", "min_file_age_s", "poll_every_min"])
def test_pull_keys_on_an_export_connection_are_refused(
    key: str, sftp_server: SftpServer, client_key: ClientKey
) -> None:
    from schemas.connections import ConfigError

    value = '"delete"' if key == "after_pickup" else "10"
    with pytest.raises(ConfigError, match=f"sftp.{key}: {key} applies to imports only"):
        load_connections_toml(export_toml(sftp_server, client_key, extra=f"{key} = {value}"))
