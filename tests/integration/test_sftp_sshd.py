"""SFTP against the real OpenSSH sshd (the one customers run): pull and push, key and password
logins, a pull killed between download and registration, and the hosted inbox's own config."""

from __future__ import annotations

import os
import subprocess
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from producers import registry, sftp_pull
from producers.commands import apply_connections
from schemas.connections import load_connections_toml
from schemas.settings import get_settings
from tests.conftest import feedsync, sql
from tests.sshd import Sshd, sshd
from tests.stubpipeline import HEADER, Pipeline
from tests.unit.exportdata import learning, people
from workers.files.sftp import SftpLoginError

__all__ = ["sshd"]

pytestmark = pytest.mark.integration

FEED = HEADER + "ann@x.com,Ann,Ames,,Sales\nbob@x.com,Bob,Berg,,Sales\n"
DEPLOY_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "sftp" / "sshd_config"


def sftp_section(server: Sshd, port: int, login: str, remote_dir: Path, extra: str = "") -> str:
    return f"""
[connections.sftp]
host = "127.0.0.1"
port = {port}
user = "{server.account.name}"
host_key = "{server.host_key_line}"
{login}
remote_dir = "{remote_dir}"
{extra}
"""


def pull_connection(server: Sshd, port: int, login: str, remote_dir: Path, extra: str = "") -> dict[str, Any]:
    toml = f"""
[[connections]]
name = "hr-users"
kind = "users"
[connections.mapping]
email = "Email"
first_name = "First Name"
last_name = "Last Name"
{sftp_section(server, port, login, remote_dir, "min_file_age_s = 0" + chr(10) + extra)}
"""
    apply_connections(load_connections_toml(toml))
    (c,) = [c for c in registry.live_connections(get_settings()) if c["name"] == "hr-users"]
    return c


def put(folder: Path, name: str, content: str) -> None:
    (folder / name).write_text(content)
    old = time.time() - 3600
    os.utime(folder / name, (old, old))


def registered() -> list[str]:
    return [p.rsplit("/", 1)[-1] for (p,) in sql("SELECT original_path FROM sync.feed_files ORDER BY id")]


def test_a_feed_on_openssh_is_pulled_with_a_key_imported_once_and_then_deleted(pipeline: Pipeline, sshd: Sshd) -> None:
    outbound = sshd.folder("outbound")
    port = sshd.start(sshd.config(force_command="internal-sftp"))
    c = pull_connection(sshd, port, f'key_file = "{sshd.client_key}"', outbound, 'after_pickup = "delete"')
    put(outbound, "monday.csv", FEED)
    sftp_pull.poll(pipeline.settings, c)
    assert sftp_pull.poll(pipeline.settings, c).taken == ["monday.csv"]
    pipeline.drain()
    assert sorted(e for (e,) in sql("SELECT email FROM lms.users")) == ["ann@x.com", "bob@x.com"]
    assert list(outbound.iterdir()) == []
    assert sftp_pull.poll(pipeline.settings, c).taken == [] and registered() == ["monday.csv"]


def test_openssh_presenting_another_key_than_the_pinned_one_is_refused(pipeline: Pipeline, sshd: Sshd) -> None:
    outbound = sshd.folder("outbound")
    port = sshd.start(sshd.config(force_command="internal-sftp"))
    c = pull_connection(sshd, port, f'key_file = "{sshd.client_key}"', outbound)
    c["config"]["sftp"]["host_key"] = sshd.client_public  # a valid key, but not the server's
    with pytest.raises(SftpLoginError, match="did not present the pinned host key"):
        sftp_pull.poll(pipeline.settings, c)


def test_a_password_login_pulls_from_openssh_and_a_wrong_password_is_refused_at_once(
    pipeline: Pipeline, sshd: Sshd, monkeypatch: pytest.MonkeyPatch
) -> None:
    outbound = sshd.folder("outbound")
    port = sshd.start(sshd.config(force_command="internal-sftp"))
    c = pull_connection(sshd, port, 'password_env = "HR_SFTP_PASSWORD"', outbound, 'done_marker = ".done"')
    monkeypatch.setenv("HR_SFTP_PASSWORD", sshd.account.password)
    put(outbound, "monday.csv", FEED)
    put(outbound, "monday.csv.done", "")
    assert sftp_pull.poll(pipeline.settings, c).taken == ["monday.csv"]
    pipeline.drain()
    assert registered() == ["monday.csv"]
    monkeypatch.setenv("HR_SFTP_PASSWORD", "not-" + sshd.account.password)
    with pytest.raises(SftpLoginError, match="refused the login"):
        sftp_pull.poll(pipeline.settings, c)


def test_an_export_is_pushed_to_openssh_by_password_renamed_into_place_with_its_marker(
    pipeline: Pipeline, sshd: Sshd, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbound = sshd.folder("inbound")
    port = sshd.start(sshd.config(force_command="internal-sftp"))
    monkeypatch.setenv("HR_SFTP_PASSWORD", sshd.account.password)
    section = sftp_section(sshd, port, 'password_env = "HR_SFTP_PASSWORD"', inbound, 'done_marker = ".done"')
    export = f'[[connections]]\nname = "transcripts"\nkind = "transcript_export"\n{section}'
    apply_connections(load_connections_toml(export))
    people(pipeline)
    learning()
    run = pipeline.sync("transcripts", date(2026, 11, 1))
    assert run["status"] == "completed", run
    name = run["export"]["file"]
    assert sorted(p.name for p in inbound.iterdir()) == [name, name + ".done"]
    assert (inbound / name).read_text(encoding="utf-8").startswith("Name,email,")


def test_a_pull_killed_between_download_and_registration_leaves_the_file_on_the_server_and_is_imported_once(
    pipeline: Pipeline, sshd: Sshd, rabbit_env: dict[str, str]
) -> None:
    outbound = sshd.folder("outbound")
    port = sshd.start(sshd.config(force_command="internal-sftp"))
    pull_connection(sshd, port, f'key_file = "{sshd.client_key}"', outbound, 'after_pickup = "delete"')
    put(outbound, "monday.csv", FEED)
    feedsync("sftp", "pull", "--once", "hr-users", env=rabbit_env)  # the first listing
    crash = {**rabbit_env, "FEEDSYNC_FAILPOINTS": "sftp.landed=crash"}
    killed = feedsync("sftp", "pull", "--once", "hr-users", env=crash, check=False)
    assert killed.returncode == 137, killed.stderr
    assert [p.name for p in outbound.iterdir()] == ["monday.csv"] and registered() == []
    feedsync("sftp", "pull", "--once", "hr-users", env=rabbit_env)
    assert registered() == ["monday.csv"]
    assert list(outbound.iterdir()) == []
    assert sql("SELECT state, pickup FROM sync.sftp_files") == [("handled", "deleted")]


def test_a_file_uploaded_into_the_hosted_inbox_chroot_with_the_sftp_client_is_imported(
    pipeline: Pipeline, sshd: Sshd, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    drop = sshd.base / "drop"
    (drop / "import" / "user").mkdir(parents=True)
    for folder in (drop, drop / "import", drop / "import" / "user"):
        folder.chmod(0o755)  # the chroot and what leads to it: root's, writable by no one else
    sshd.folder("drop/import/user/internal")
    config = DEPLOY_CONFIG.read_text()
    for deployed, here in {
        "Port 2222": "Port {port}",
        "ListenAddress 0.0.0.0": "ListenAddress 127.0.0.1",
        "HostKey /etc/feedsync/inbox/ssh_host_ed25519_key": f"HostKey {sshd.base}/host_ed25519",
        "PidFile /run/feedsync-sftp-inbox.pid": f"PidFile {sshd.base}/inbox.pid",
        "/etc/feedsync/inbox/authorized_keys/%u": f"{sshd.base}/authorized_keys/%u",
        "AllowGroups feedsync-inbox": f"AllowGroups {sshd.account.group}",
        "Match Group feedsync-inbox": f"Match Group {sshd.account.group}",
        "ChrootDirectory /srv/feedsync/drop": f"ChrootDirectory {drop}",
    }.items():
        assert deployed in config, f"deploy/sftp/sshd_config no longer has {deployed!r}"
        config = config.replace(deployed, here)
    port = sshd.start(config)
    monkeypatch.setenv("FEEDSYNC_DROP_DIR", str(drop))
    get_settings.cache_clear()
    apply_connections(
        load_connections_toml(
            '[[connections]]\nname = "hr-users"\nkind = "users"\n'
            '[connections.mapping]\nemail = "Email"\nfirst_name = "First Name"\nlast_name = "Last Name"\n'
        )
    )
    (tmp_path / "monday.csv").write_text(FEED)
    (tmp_path / "known_hosts").write_text(f"[127.0.0.1]:{port} {sshd.host_key_line}\n")
    (tmp_path / "batch").write_text(f"put {tmp_path / 'monday.csv'} monday.csv\nput {tmp_path / 'monday.csv'} /x.csv\n")
    upload = subprocess.run(
        [
            "sftp", "-b", str(tmp_path / "batch"), "-i", str(sshd.client_key), "-P", str(port),
            "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={tmp_path / 'known_hosts'}",
            f"{sshd.account.name}@127.0.0.1",
        ],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "monday.csv" in upload.stdout and upload.returncode == 1, upload.stderr
    assert "Permission denied" in upload.stderr, "the chroot's root is not writable by the account"
    assert (drop / "import/user/internal/monday.csv").read_text() == FEED
    registry.scan(get_settings())
    pipeline.drain()
    assert registered() == ["monday.csv"]
    assert sorted(e for (e,) in sql("SELECT email FROM lms.users")) == ["ann@x.com", "bob@x.com"]
