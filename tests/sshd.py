"""The real OpenSSH ``sshd``, started by a fixture on a free 127.0.0.1 port with a temporary config
and host key, for the integration tier of the SFTP pull, push and hosted inbox.

sshd checks logins against system accounts, so the fixture makes one (a user with a password and
an authorized key, in a group of its own) and removes it afterwards: it needs root, as CI has.
Everything sshd reads as that user lives under a folder in /srv, owned by root and writable by no
one else, since a chroot must sit below such folders only (/tmp is writable by all)."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.waiting import poll_until

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Account:
    name: str
    group: str
    password: str
    uid: int
    gid: int


@dataclass
class Sshd:
    base: Path
    account: Account
    client_key: Path
    client_public: str
    host_key_line: str = ""
    port: int = 0
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, config: str) -> int:
        """Start sshd with ``config`` (``{port}`` filled in); returns its port once it accepts."""
        port = free_port()
        path = self.base / f"sshd_config.{port}"
        path.write_text(config.replace("{port}", str(port)))
        check = subprocess.run([SSHD, "-t", "-f", str(path)], capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, f"sshd -t refused the config: {check.stderr}"
        log = self.base / f"sshd.{port}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(path)], stderr=out)
        self.procs.append(proc)

        def listening() -> bool:
            assert proc.poll() is None, f"sshd exited: {log.read_text()}"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except OSError:
                return False
            return True

        poll_until(listening, timeout=30, message="sshd did not listen")
        return port

    def config(self, *, force_command: str) -> str:
        return f"""Port {{port}}
ListenAddress 127.0.0.1
HostKey {self.base}/host_ed25519
PidFile {self.base}/sshd.{{port}}.pid
AuthorizedKeysFile {self.base}/authorized_keys/%u
AllowUsers {self.account.name}
UsePAM no
PasswordAuthentication yes
KbdInteractiveAuthentication no
StrictModes no
Subsystem sftp internal-sftp
ForceCommand {force_command}
"""

    def folder(self, name: str) -> Path:
        """A folder the account owns, for files to pull or push."""
        path = self.base / name
        path.mkdir(parents=True, exist_ok=True)
        os.chown(path, self.account.uid, self.account.gid)
        return path


def _run(*argv: str, stdin: str | None = None) -> None:
    subprocess.run(argv, input=stdin, text=True, check=True, capture_output=True, timeout=60)


@pytest.fixture
def sshd() -> Iterator[Sshd]:
    if os.geteuid() != 0 or not os.path.exists(SSHD) or shutil.which("useradd") is None:
        pytest.fail("the sshd tier needs root, useradd and openssh-server (`apt-get install openssh-server`)")
    base = Path(tempfile.mkdtemp(prefix="feedsync-sshd-", dir="/srv"))
    base.chmod(0o755)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation folder
    name = f"fsftp{os.getpid() % 100000}{secrets.token_hex(2)}"
    password = secrets.token_urlsafe(16)
    server: Sshd | None = None
    _run("groupadd", name)
    try:
        _run("useradd", "--no-create-home", "--gid", name, "--shell", "/usr/sbin/nologin", "--home-dir", "/", name)
        _run("chpasswd", stdin=f"{name}:{password}\n")
        import pwd

        entry = pwd.getpwnam(name)
        account = Account(name, name, password, entry.pw_uid, entry.pw_gid)
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(base / "host_ed25519"))
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(base / "client_ed25519"))
        (base / "authorized_keys").mkdir()
        client_public = (base / "client_ed25519.pub").read_text().strip()
        (base / "authorized_keys" / name).write_text(client_public + "\n")
        server = Sshd(base, account, base / "client_ed25519", client_public)
        server.host_key_line = " ".join((base / "host_ed25519.pub").read_text().split()[:2])
        yield server
    finally:
        for proc in server.procs if server else []:
            proc.terminate()
            proc.wait(timeout=30)
        subprocess.run(["userdel", name], capture_output=True, timeout=60)
        subprocess.run(["groupdel", name], capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)
