"""Process supervision for ``feedsync worker`` and ``feedsync up``.

Dramatiq's master stops every sibling when one worker process dies, so a worker group whose
child died exits as a whole; the supervisor starts it again (with backoff if it keeps dying).
SIGTERM and SIGINT are passed to the children, which drain: Dramatiq lets running messages
finish and returns unacknowledged ones to the queue.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from types import FrameType

import structlog

log = structlog.get_logger(__name__)


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0
    backoff_s: float = field(default=0.5)


class Supervisor:
    def __init__(self, children: list[Child], *, shutdown_timeout_s: float = 60.0) -> None:
        self.children = children
        self.stopping = False
        self.shutdown_timeout_s = shutdown_timeout_s

    def _start(self, child: Child) -> None:
        child.proc = subprocess.Popen(child.argv)
        child.started_at = time.monotonic()
        log.info("started", child=child.name, pid=child.proc.pid, restarts=child.restarts)

    def _signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._signal)
        signal.signal(signal.SIGINT, self._signal)
        for child in self.children:
            self._start(child)
        while not self.stopping:
            time.sleep(0.2)
            for child in self.children:
                assert child.proc is not None
                code = child.proc.poll()
                if code is None or self.stopping:
                    continue
                lived = time.monotonic() - child.started_at
                # Reset the backoff after a healthy spell; grow it while the child keeps dying young.
                child.backoff_s = 0.5 if lived > 30 else min(child.backoff_s * 2, 30.0)
                child.restarts += 1
                log.warning("child exited; restarting", child=child.name, exit_code=code, restart_in_s=child.backoff_s)
                time.sleep(child.backoff_s)
                if not self.stopping:
                    self._start(child)
        return self._shutdown()

    def _shutdown(self) -> int:
        log.info("stopping children")
        for child in self.children:
            if child.proc and child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.shutdown_timeout_s
        for child in self.children:
            if child.proc is None:
                continue
            try:
                child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("child did not stop in time; killing it", child=child.name)
                child.proc.kill()
                child.proc.wait()
        return 0


def feedsync_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "producers.cli", *args]


def dramatiq_argv(processes: int, threads: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "dramatiq",
        "workers.actors",
        "--processes",
        str(processes),
        "--threads",
        str(threads),
        "--skip-logging",
    ]
