"""Many remote files and several connections: each round polls every due connection on its own
thread with a bounded batch of downloads, a connection with more to take is due again at the next
round, and a listing is remembered in a few statements whatever its length."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from producers import registry, sftp_loop
from producers.commands import apply_connections
from schemas.connections import load_connections_toml
from schemas.settings import get_settings
from tests.conftest import sql
from tests.sftp_server import ClientKey, SftpServer, client_key, sftp_server
from tests.sftpdata import FEED, OLD, _drained, users_toml
from tests.stubpipeline import Pipeline

__all__ = ["_drained", "client_key", "sftp_server"]  # fixtures, used by name

MANY = 1000
BATCH = 10


@pytest.fixture
def second_server(tmp_path: Path, client_key: ClientKey) -> Iterator[SftpServer]:
    root = tmp_path / "second"
    (root / "outbound").mkdir(parents=True)
    server = SftpServer(root, client_key.public).start()
    yield server
    server.stop()


def two_connections(big: SftpServer, small: SftpServer, key: ClientKey) -> tuple[dict[str, Any], dict[str, Any]]:
    """hr-users on ``big`` (a batch of BATCH files per poll), hr-other on ``small``."""
    first = users_toml(big, key, max_files_per_poll=BATCH)
    second = users_toml(small, key).replace('name = "hr-users"', 'name = "hr-other"')
    second = second.replace("import/user/internal/*.csv", "import/user/other/*.csv")
    apply_connections(load_connections_toml(first + second))
    found = {c["name"]: c for c in registry.live_connections(get_settings())}
    return found["hr-users"], found["hr-other"]


def fill(server: SftpServer, count: int) -> None:
    for i in range(count):
        path = server.root / "outbound" / f"f{i:05}.csv"
        path.write_text(FEED.replace("ann@", f"ann{i}@"))
        os.utime(path, (OLD, OLD))


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every SQL statement sent (a spy: psycopg still runs each one against the real database)."""
    sent: list[str] = []
    execute = psycopg.Cursor.execute

    def counted(self: psycopg.Cursor[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(query if isinstance(query, str) else query.as_string(self))
        return execute(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", counted)
    return sent


def pulled(connection: dict[str, Any]) -> int:
    return int(
        sql(
            "SELECT count(*) FROM sync.sftp_files WHERE connection_id = %s AND state <> 'seen'",
            (connection["id"],),
        )[0][0]
    )


def test_a_round_polls_every_connection_with_a_bounded_batch_and_remembers_a_long_listing_in_bulk(
    pipeline: Pipeline,
    sftp_server: SftpServer,
    second_server: SftpServer,
    client_key: ClientKey,
    statements: list[str],
) -> None:
    big, small = two_connections(sftp_server, second_server, client_key)
    fill(sftp_server, MANY)
    fill(second_server, 1)
    puller = sftp_loop.Puller(pipeline.settings)
    try:
        puller.round_and_wait()  # first listing of both: remembered as seen
        on_files = [s for s in statements if "sync.sftp_files" in s]
        assert len(on_files) < 20, f"{len(on_files)} statements on sync.sftp_files for a {MANY}-file listing"
        assert sql("SELECT count(*) FROM sync.sftp_files WHERE state = 'seen'") == [(MANY + 1,)]
        sql("UPDATE sync.sftp_polls SET polled_at = now() - interval '1 hour'")
        puller.round_and_wait()
        assert pulled(big) == BATCH, "no more than max_files_per_poll in one poll"
        assert pulled(small) == 1, "the other connection was polled in the same round"
        puller.round_and_wait()  # poll_every_min has not passed: only the connection with more to take
        assert pulled(big) == 2 * BATCH and pulled(small) == 1
        assert sql("SELECT bool_and(ok) FROM sync.sftp_polls") == [(True,)]
    finally:
        puller.close()
