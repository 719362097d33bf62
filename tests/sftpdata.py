"""The SFTP pull tests' connection and remote files: a users connection on the test SSH server,
files put on it with chosen times, and the pull's log lines."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from producers import registry, sftp_files, sftp_loop, sftp_pickup, sftp_pull
from producers.commands import apply_connections
from schemas.connections import load_connections_toml
from tests.conftest import sql
from tests.sftp_server import ClientKey, SftpServer
from tests.stubpipeline import HEADER, Pipeline

FEED = HEADER + "ann@x.com,Ann,Ames,,Sales\nbob@x.com,Bob,Berg,,Sales\n"


OTHER = HEADER + "cid@x.com,Cid,Cole,,Sales\n"


OLD = time.time() - 3600  # older than any min_file_age_s below


def users_toml(server: SftpServer, key: ClientKey | None, **sftp: Any) -> str:
    login = f'key_file = "{key.path}"' if key else 'password_env = "HR_SFTP_PASSWORD"'
    options = {"remote_dir": "/outbound", "min_file_age_s": 0, **sftp}
    extra = "\n".join(f"{k} = {v!r}".replace("'", '"') for k, v in options.items())
    return f"""
[[connections]]
name = "hr-users"
kind = "users"
path = "import/user/internal/*.csv"

[connections.mapping]
email = "Email"
first_name = "First Name"
last_name = "Last Name"

[connections.sftp]
host = "127.0.0.1"
port = {server.port}
user = "lms"
host_key = "{server.host_key_line}"
{login}
{extra}
"""


def configure(server: SftpServer, key: ClientKey | None = None, **sftp: Any) -> dict[str, Any]:
    apply_connections(load_connections_toml(users_toml(server, key, **sftp)))
    from schemas.settings import get_settings

    (c,) = [c for c in registry.live_connections(get_settings()) if c["name"] == "hr-users"]
    return c


def put(server: SftpServer, name: str, content: str, mtime: float = OLD) -> Path:
    path = server.root / "outbound" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    os.utime(path, (mtime, mtime))
    return path


def registered() -> list[str]:
    return [p.rsplit("/", 1)[-1] for (p,) in sql("SELECT original_path FROM sync.feed_files ORDER BY id")]


@pytest.fixture(autouse=True)
def _drained(pipeline: Pipeline) -> Iterator[None]:
    """Every run a pulled file started ends within its test: a message left in the stub broker's
    queue would hold the next test's drain."""
    yield
    pipeline.drain()


@pytest.fixture
def pull_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    with capture_logs() as logs:
        # a poll's own lines (the modules of its parts), and the loop's about each poll
        for module in (sftp_pull, sftp_files, sftp_pickup, sftp_loop):
            monkeypatch.setattr(module, "log", structlog.get_logger(module.__name__))
        yield logs
