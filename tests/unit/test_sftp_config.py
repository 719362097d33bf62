"""``[connections.sftp]`` and ``feedsync sftp keygen|fingerprint|check``: the host key is pinned in
any of the forms admins paste, a password never sits in the file, and the commands say what to do."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from click.testing import CliRunner

from producers.cli import cli
from schemas.connections import ConfigError, Connection, load_connections_toml
from tests.sftp_server import ClientKey, SftpServer, client_key, sftp_server
from tests.sftpdata import configure, put

__all__ = ["client_key", "sftp_server"]

KEY = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().split()[1]


def toml(sftp: str) -> str:
    return f"""[[connections]]
name = "hr-users"
kind = "users"

[connections.mapping]
email = "Email"

[connections.sftp]
host = "sftp.hr.example.com"
user = "lms"
{sftp}
"""


@pytest.mark.parametrize(
    "pasted",
    [
        f"ssh-ed25519 {KEY} root@sftp",  # a .pub line
        f"[sftp.hr.example.com]:2222 ssh-ed25519 {KEY}",  # ssh-keyscan / known_hosts
        KEY,  # the bare key
    ],
)
def test_the_host_key_is_taken_as_a_pub_line_a_keyscan_line_or_a_bare_key(pasted: str) -> None:
    (c,) = load_connections_toml(toml(f'host_key = "{pasted}"\nkey_file = "hr-users"'))
    assert isinstance(c, Connection) and c.sftp is not None
    assert c.sftp.host_key == f"ssh-ed25519 {KEY}"
    assert (c.sftp.port, c.sftp.after_pickup, c.sftp.min_file_age_s) == (22, "keep", 120)


@pytest.mark.parametrize(
    ("sftp", "expected"),
    [
        ('key_file = "k"', "connections.toml:8: connections[0] sftp.host_key: Field required"),
        ('host_key = "hello world"\nkey_file = "k"', "connections.toml:11: connections[0] sftp.host_key: host_key is"),
        (f'host_key = "{KEY}"', "connections[0] sftp: give exactly one way to log in: key_file"),
        (f'host_key = "{KEY}"\nkey_file = "k"\nafter_pickup = "archive"', "sftp.after_pickup: after_pickup must be"),
        (f'host_key = "{KEY}"\nkey_file = "k"\ndone_marker = "done"', "sftp.done_marker: done_marker is a suffix"),
        (f'host_key = "{KEY}"\npassword_env = "my password"', "sftp.password_env: password_env names an"),
    ],
)
def test_a_wrong_sftp_section_is_refused_with_the_line_at_fault(sftp: str, expected: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_connections_toml(toml(sftp))
    assert expected in str(exc.value)


def test_a_password_in_the_file_is_refused_without_repeating_it() -> None:
    with pytest.raises(ConfigError) as exc:
        load_connections_toml(toml(f'host_key = "{KEY}"\npassword = "Hunter2-secret"'))
    assert "a password is never written in the connections file" in str(exc.value)
    assert 'password_env = "HR_SFTP_PASSWORD"' in str(exc.value)
    assert "Hunter2-secret" not in str(exc.value)


@pytest.fixture
def keys_dir(settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from schemas.settings import get_settings

    monkeypatch.setenv("FEEDSYNC_KEYS_DIR", str(tmp_path / "keys"))
    get_settings.cache_clear()
    return tmp_path / "keys"


def test_keygen_writes_a_private_key_only_its_owner_can_read_and_prints_the_public_line(keys_dir: Path) -> None:
    out = CliRunner().invoke(cli, ["sftp", "keygen", "hr-users"])
    assert out.exit_code == 0, out.output
    private = keys_dir / "hr-users"
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o600
    public = (keys_dir / "hr-users.pub").read_text().strip()
    assert public.startswith("ssh-ed25519 ") and public.endswith(" feedsync-hr-users")
    assert public in out.output.splitlines()
    key = asyncssh.read_private_key(private)
    assert key.export_public_key().decode().split()[1] == public.split()[1]
    again = CliRunner().invoke(cli, ["sftp", "keygen", "hr-users"])
    assert again.exit_code == 1 and "give --force to replace the pair" in again.output
    assert (keys_dir / "hr-users.pub").read_text().strip() == public, "an existing pair is never replaced silently"


def test_fingerprint_prints_the_servers_key_to_pin_and_says_to_check_it_out_of_band(
    settings: Any, sftp_server: SftpServer
) -> None:
    out = CliRunner().invoke(cli, ["sftp", "fingerprint", "127.0.0.1", "--port", str(sftp_server.port)])
    assert out.exit_code == 0, out.output
    assert f'host_key = "{sftp_server.host_key_line}"' in out.output
    assert f"fingerprint: {sftp_server.host_key.get_fingerprint('sha256')}" in out.output
    assert "by another channel" in out.output


def test_check_says_what_the_next_poll_would_take_and_why_not_the_rest(
    pipeline: Any, sftp_server: SftpServer, client_key: ClientKey
) -> None:
    configure(sftp_server, client_key)
    put(sftp_server, "monday.csv", "Email\n")
    put(sftp_server, "monday.csv.part", "Email\n")
    out = CliRunner().invoke(cli, ["sftp", "check", "hr-users"])
    assert out.exit_code == 0, out.output
    assert "skip  monday.csv  (6 bytes): new or changed since the last listing" in out.output
    assert "skip  monday.csv.part  (6 bytes): a partial upload (temporary suffix)" in out.output
    assert "the next poll would take 0 file(s)" in out.output
    sftp_server.stop()
    from producers import sftp_loop

    sftp_loop.poll_guarded(pipeline.settings, configure(sftp_server, client_key))
    down = CliRunner().invoke(cli, ["sftp", "check", "hr-users"])
    assert down.exit_code == 1 and "could not reach the SFTP server 127.0.0.1:" in down.output
    assert "(Connection refused); retrying" in down.output
    assert "last poll: " in down.output and ", failed: hr-users: could not reach the SFTP server" in down.output
    wrong = CliRunner().invoke(cli, ["sftp", "check", "nobody"])
    assert wrong.exit_code == 1 and "no connection named 'nobody'" in wrong.output
