"""`feedsync web` as its own process, configured as a user would: the real uvicorn settings of cli.py."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx2 as httpx

from tests.waiting import poll_until


@dataclass
class Web:
    url: str
    pid: int


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def feedsync_web(**env: str) -> Iterator[Web]:
    """The console on a free 127.0.0.1 port with ``env`` added, stopped however the test ends."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "producers.cli", "web", "--bind", f"127.0.0.1:{port}"],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def listening() -> bool:
            try:
                httpx.get(f"{url}/sign-in")
            except httpx.TransportError:
                assert proc.poll() is None, "feedsync web exited"
                return False
            return True

        poll_until(listening, timeout=60, interval=0.1, message="feedsync web did not start listening")
        yield Web(url, proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
