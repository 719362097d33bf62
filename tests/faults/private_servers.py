"""A PostgreSQL cluster and a RabbitMQ node of the test's own, for the fault tests that stop or restart
a server: several checkouts test against the machine's shared servers at once, and stopping those
would fail their tests instead of ours.

Each server runs as the service user (PostgreSQL's initdb and RabbitMQ's scripts refuse root, and the
CI machine runs the suite as root) in a working directory made with mkdtemp: pytest's own tmp_path
sits under a root-only 0700 directory the service user cannot enter. However the test ends, the
context managers stop the server (or, if that fails, kill it by the process id it recorded) and
remove the directory, so nothing is left running.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from tests.waiting import poll_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_user(user: str) -> list[str]:
    """The prefix that runs a command as ``user`` when we are root (the servers refuse root)."""
    return ["runuser", "-u", user, "--"] if os.geteuid() == 0 else []


def _workdir(prefix: str, owner: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        entry = pwd.getpwnam(owner)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has already exited
    except FileNotFoundError:
        return False


def _await_exit(pid: int, timeout_s: float) -> bool:
    try:
        poll_until(lambda: not _pid_alive(pid), timeout=timeout_s, interval=0.1)
    except AssertionError:
        return False  # the caller kills it
    return True


def _kill(pid: int) -> None:
    """The last resort of a teardown whose orderly stop failed: the server's own recorded pid."""
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _await_exit(pid, 30)


def _run(argv: list[str], env: dict[str, str] | None = None, timeout: float = 120) -> None:
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")


# --- PostgreSQL ---------------------------------------------------------------------------------


def postgres_bindir() -> Path | None:
    """Debian keeps initdb and pg_ctl out of PATH, under /usr/lib/postgresql/<version>/bin."""
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if debian:
        return debian[-1].parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


@dataclass
class PrivatePostgres:
    bindir: Path
    root: Path
    port: int

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    def url(self, dbname: str) -> str:
        # Unix socket only (listen_addresses = ''): no TCP port another process could take first.
        return f"postgresql://postgres@/{dbname}?host={self.root}&port={self.port}"

    def pg_ctl(self, *args: str) -> None:
        _run([*_as_user("postgres"), str(self.bindir / "pg_ctl"), "-D", str(self.datadir), *args])

    def restart(self) -> None:
        """What pg_ctlcluster's restart does: a fast shutdown (open transactions are aborted)."""
        self.pg_ctl("-l", str(self.root / "server.log"), "-m", "fast", "-w", "-t", "60", "restart")

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.datadir / "postmaster.pid").read_text().split()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return None


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    bindir = postgres_bindir()
    if bindir is None:
        raise RuntimeError("a private PostgreSQL needs initdb (Debian: the postgresql package)")
    pg = PrivatePostgres(bindir=bindir, root=_workdir("fs-fault-pg-", "postgres"), port=free_port())
    try:
        _run(
            [
                *_as_user("postgres"),
                str(bindir / "initdb"),
                "-D",
                str(pg.datadir),
                "--auth=trust",
                "--username=postgres",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",  # a throwaway cluster: its files need not survive a power cut
            ]
        )
        with open(pg.datadir / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(f"port = {pg.port}\nlisten_addresses = ''\nunix_socket_directories = '{pg.root}'\n")
        pg.pg_ctl("-l", str(pg.root / "server.log"), "-w", "-t", "60", "start")
        yield pg
    finally:
        pid = pg.postmaster_pid()
        with suppress(RuntimeError, subprocess.TimeoutExpired):
            pg.pg_ctl("-m", "immediate", "-w", "-t", "60", "stop")
        if pid is not None and not _await_exit(pid, 30):
            _kill(pid)
        shutil.rmtree(pg.root, ignore_errors=True)


# --- RabbitMQ -----------------------------------------------------------------------------------


@dataclass
class PrivateRabbit:
    node: str
    port: int
    root: Path
    env: dict[str, str]

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    def ctl(self, *args: str, timeout: float = 120) -> None:
        _run(["rabbitmqctl", "-q", "-n", self.node, *args], env=self.env, timeout=timeout)

    def stop_app(self) -> None:
        self.ctl("stop_app")

    def start_app(self) -> None:
        self.ctl("start_app")

    def pid(self) -> int | None:
        try:
            return int((self.root / "pid").read_text().strip())
        except (FileNotFoundError, ValueError):
            return None


def rabbitmq_available() -> bool:
    return shutil.which("rabbitmq-server") is not None and shutil.which("rabbitmqctl") is not None


@contextmanager
def private_rabbitmq() -> Iterator[PrivateRabbit]:
    # Debian's rabbitmq-server and rabbitmqctl, run as root, switch to the rabbitmq user (keeping the
    # environment, so the RABBITMQ_* settings below reach the node), which must own the directory.
    if not rabbitmq_available():
        raise RuntimeError("a private RabbitMQ node needs rabbitmq-server and rabbitmqctl (Debian: rabbitmq-server)")
    root = _workdir("fs-fault-rmq-", "rabbitmq")
    port = free_port()
    for name, text in {
        # Our own files, not /etc/rabbitmq's: that config pins the listener to 5672 and its env
        # file names the shared node.
        "rabbitmq.conf": f"listeners.tcp.local = 127.0.0.1:{port}\n",
        "rabbitmq-env.conf": "",
        "enabled_plugins": "",  # no management plugin: it would want the shared node's 15672
    }.items():
        (root / name).write_text(text, encoding="utf-8")
        if os.geteuid() == 0:
            os.chown(root / name, pwd.getpwnam("rabbitmq").pw_uid, pwd.getpwnam("rabbitmq").pw_gid)
    env = {
        **os.environ,
        "RABBITMQ_NODENAME": f"fs-fault-{secrets.token_hex(4)}@localhost",
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(free_port()),
        "RABBITMQ_MNESIA_BASE": str(root / "mnesia"),
        "RABBITMQ_LOG_BASE": str(root / "log"),
        "RABBITMQ_PID_FILE": str(root / "pid"),
        "RABBITMQ_CONFIG_FILE": str(root / "rabbitmq.conf"),
        "RABBITMQ_CONF_ENV_FILE": str(root / "rabbitmq-env.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(root / "enabled_plugins"),
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        "ERL_EPMD_ADDRESS": "127.0.0.1",
    }
    rabbit = PrivateRabbit(node=env["RABBITMQ_NODENAME"], port=port, root=root, env=env)
    try:
        _run(["rabbitmq-server", "-detached"], env=env)
        _await_startup(rabbit)
        yield rabbit
    finally:
        pid = rabbit.pid()
        with suppress(RuntimeError, subprocess.TimeoutExpired):
            rabbit.ctl("stop", timeout=60)
        if pid is not None and not _await_exit(pid, 30):
            _kill(pid)
        shutil.rmtree(root, ignore_errors=True)


def _await_startup(rabbit: PrivateRabbit, timeout_s: float = 120) -> None:
    """-detached returns before the node has registered with epmd, and await_startup fails at once
    on a node it cannot reach yet: retry it until the node answers."""
    last: list[RuntimeError] = []

    def started() -> bool:
        try:
            rabbit.ctl("await_startup", "--timeout", "60", timeout=90)
        except RuntimeError as exc:
            last[:] = [exc]
            return False
        return True

    def why() -> str:
        log = rabbit.root / "log" / f"{rabbit.node}.log"
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        return f"the private RabbitMQ node did not start: {last[0] if last else ''}\n{tail}"

    poll_until(started, timeout=timeout_s, interval=0.5, message=why)
