"""A hostile SFTP server's listing names a file with a slash in it: the pull never writes outside
the connection's drop folder, creates no folder, and still pulls the other files."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import asyncssh
import pytest

from producers import sftp_loop, sftp_pull
from tests.sftp_server import ClientKey, SftpServer, _Files, client_key, sftp_server
from tests.sftpdata import FEED, OTHER, _drained, configure, put, registered
from tests.stubpipeline import Pipeline

# _drained: the runs the pulled files start are finished before the next test truncates their tables.
__all__ = ["_drained", "client_key", "sftp_server"]  # fixtures, used by name


@pytest.mark.parametrize("hostile", ["sub/evil.csv", "x/../../../../../escaped/evil.csv"])
def test_a_listed_name_holding_a_slash_is_refused_and_the_other_files_are_pulled(
    pipeline: Pipeline, sftp_server: SftpServer, client_key: ClientKey, monkeypatch: pytest.MonkeyPatch, hostile: str
) -> None:
    c = configure(sftp_server, client_key, after_pickup="keep")
    put(sftp_server, "a.csv", FEED)
    put(sftp_server, "z.csv", OTHER)
    real = _Files.scandir

    async def listing(self: _Files, path: bytes) -> AsyncIterator[asyncssh.SFTPName]:
        async for name in real(self, path):
            yield name
        attrs = asyncssh.SFTPAttrs.from_local(os.stat(sftp_server.root / "outbound" / "a.csv"))
        yield asyncssh.SFTPName(hostile.encode(), b"", attrs)

    monkeypatch.setattr(_Files, "scandir", listing)
    sftp_pull.poll(pipeline.settings, c)
    result = sftp_loop.poll_guarded(pipeline.settings, c)
    assert result is not None and sorted(result.taken) == ["a.csv", "z.csv"]
    assert sorted(registered()) == ["a.csv", "z.csv"]
    root = Path(pipeline.settings.drop_dir).parent
    assert [p for name in ("sub", "x", "escaped") for p in root.rglob(name)] == [], "no folder made from a name"
