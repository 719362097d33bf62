"""SFTP in the console: the connection page shows the server (host, user, the pinned key's
fingerprint, remote folder) and the last poll with its outcome; the on-demand run of an SFTP pull
connection polls the server first; a pushed export's link shows where it went, not a 404."""

from __future__ import annotations

from datetime import date

from starlette.testclient import TestClient

from producers.commands import apply_connections
from schemas.connections import load_connections_toml
from tests.conftest import sql
from tests.console.conftest import form_token
from tests.sftp_server import ClientKey, SftpServer, client_key, sftp_server
from tests.sftpdata import FEED, _drained, put, users_toml
from tests.stubpipeline import Pipeline
from tests.unit.exportdata import learning, people

__all__ = ["_drained", "client_key", "sftp_server"]  # fixtures, used by name


def test_the_connection_page_shows_the_sftp_server_and_run_now_polls_it_first(
    as_admin: TestClient, pipeline: Pipeline, sftp_server: SftpServer, client_key: ClientKey
) -> None:
    from producers.sftp_view import fingerprint

    toml = users_toml(sftp_server, client_key).replace('kind = "users"', 'kind = "users"\ntrigger = "on_schedule"')
    apply_connections(load_connections_toml(toml))
    page = as_admin.get("/connections/hr-users").text
    assert f"127.0.0.1:{sftp_server.port}" in page and "<code>lms</code>" in page and "/outbound" in page
    assert fingerprint(sftp_server.host_key_line) in page and "not polled yet" in page
    put(sftp_server, "monday.csv", FEED)
    r = as_admin.post(
        "/connections/hr-users/sync", data={"csrf": form_token(as_admin), "access": "online"}, follow_redirects=False
    )
    assert r.status_code == 303, r.text
    pipeline.drain()
    assert sql("SELECT count(*) FROM lms.users WHERE email IN ('ann@x.com', 'bob@x.com')") == [(2,)]
    page = as_admin.get("/connections/hr-users").text
    assert "Last poll" in page and ">ok<" in page


def test_a_pushed_exports_link_shows_its_remote_path(
    as_admin: TestClient, pipeline: Pipeline, sftp_server: SftpServer, client_key: ClientKey
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
    people(pipeline)
    learning()
    run = pipeline.sync("transcripts", date(2026, 11, 1))
    assert run["status"] == "completed", run
    assert "where it was pushed" in as_admin.get(f"/runs/{run['run_id']}").text
    shown = as_admin.get(f"/runs/{run['run_id']}/export")
    assert shown.status_code == 200
    assert f"sftp://lms@127.0.0.1:{sftp_server.port}/inbound/{run['export']['file']}" in shown.text
    page = as_admin.get("/connections/transcripts").text
    assert "export pushed there" in page and "/inbound" in page
