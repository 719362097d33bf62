"""`feedsync up` keeps its children going: a dead watcher or worker process is started again."""

from __future__ import annotations

import json
import os
import signal
import socket
from typing import Any

import psutil
import pytest

from producers import feedgen
from producers.commands import apply_connections
from schemas.connections import load_connections_toml
from tests.services import wait_run
from tests.waiting import poll_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def children(pid: int, needle: str) -> list[psutil.Process]:
    found = []
    for p in psutil.Process(pid).children(recursive=True):
        try:
            if needle in " ".join(p.cmdline()):
                found.append(p)
        except (psutil.ZombieProcess, psutil.NoSuchProcess):
            continue  # a child that just died and is not reaped yet
    return found


def listens(p: psutil.Process) -> bool:
    """Whether the process listens on a TCP port: the worker group's metrics server (a Dramatiq fork
    process, a child of the group's main process like the workers) does, a worker process does not."""
    try:
        return any(c.status == psutil.CONN_LISTEN for c in p.net_connections(kind="tcp"))
    except psutil.Error:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def restarted(log: str) -> set[str]:
    """Children the supervisor started a second time, read from its JSON log lines."""
    names = set()
    for line in log.splitlines():
        if line.startswith("{"):
            event = json.loads(line)
            if event.get("event") == "started" and event.get("restarts") == 1:
                names.add(event["child"])
    return names


def test_up_restarts_a_killed_worker_process_and_a_killed_watcher(
    settings: Any, start: Any, rabbit_env: dict[str, str]
) -> None:
    apply_connections(load_connections_toml(feedgen.DEMO_CONNECTIONS))
    port = free_port()
    up = start(
        "up", "--processes", "2", "--threads", "1", env={**rabbit_env, "FEEDSYNC_METRICS_BIND": f"127.0.0.1:{port}"}
    )
    up.wait_for("watching the drop dir")
    up.wait_for("Worker process is ready")
    supervisor = up.proc.pid

    def metrics_up() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    poll_until(metrics_up, timeout=60, interval=0.2, message="the worker group's metrics server never listened")
    worker_procs = [p for p in children(supervisor, "dramatiq") if p.parent().pid != supervisor and not listens(p)]
    assert len(worker_procs) == 2
    os.kill(worker_procs[0].pid, signal.SIGKILL)
    (watcher,) = children(supervisor, "producers.cli watch")
    os.kill(watcher.pid, signal.SIGKILL)
    poll_until(
        lambda: restarted(up.output()) == {"worker", "watcher"},
        timeout=60,
        interval=0.2,
        message=lambda: up.output()[-3000:],
    )
    up.wait_for('"watching the drop dir"', 30)

    feedgen.generate_users(settings.drop_dir / "import/user/internal/after-restart.csv", 200)
    run = wait_run(timeout_s=60)
    assert run["status"] == "completed" and run["counts"]["created"] == 200
    assert len(children(supervisor, "producers.cli watch")) == 1
