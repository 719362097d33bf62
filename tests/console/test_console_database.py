"""The console when PostgreSQL is down, frozen or slow: a page that says the database is unreachable,
within the connect and statement timeouts, and static files served all the while (real HTTP)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import psycopg
import pytest
from starlette.testclient import TestClient

from tests.conftest import DATABASE_URL
from tests.console.conftest import Served, csrf_of
from tests.waiting import poll_until

UNREACHABLE = "The console cannot reach its database"


def _point_at(monkeypatch: pytest.MonkeyPatch, url: str, **env: str) -> None:
    from schemas.settings import get_settings

    monkeypatch.setenv("FEEDSYNC_DATABASE_URL", url)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()


class Silent:
    """A TCP server that accepts connections and never says a word (a frozen PostgreSQL)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.port = int(self.sock.getsockname()[1])
        self.accepted: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed at teardown
            self.accepted.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def silent() -> Iterator[Silent]:
    server = Silent()
    try:
        yield server
    finally:
        server.close()


def test_a_database_that_is_down_gets_a_page_that_says_so(console: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    _point_at(monkeypatch, f"postgresql://postgres@127.0.0.1:{closed}/feedsync")
    token = csrf_of(console.get("/sign-in").text)
    r = console.post("/sign-in", data={"name": "ada", "password": "whatever it is", "csrf": token})
    assert r.status_code == 503 and UNREACHABLE in r.text
    console.cookies.set("feedsync_session", "a session from before the outage")
    r = console.get("/connections")
    assert r.status_code == 503 and UNREACHABLE in r.text and "FEEDSYNC_DATABASE_URL" in r.text
    assert str(closed) not in r.text  # the URL itself is never shown
    assert console.get("/static/console.css").status_code == 200


async def _pages_and_static(url: str, silent: Silent, pages: int) -> tuple[list[httpx.Response], httpx.Response]:
    cookies = {"feedsync_session": "a session from before the freeze"}
    limits = httpx.Limits(max_connections=pages + 1, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120, cookies=cookies) as client:
        waiting = [asyncio.ensure_future(client.get("/connections")) for _ in range(pages)]
        # In a thread, so this loop goes on sending the requests while it waits.
        await asyncio.to_thread(
            poll_until,
            lambda: len(silent.accepted) >= 8,  # the console is stuck on the frozen database
            timeout=60,
            message="the console never reached the frozen database",
        )
        static = await client.get("/static/console.css", timeout=10)
        return list(await asyncio.gather(*waiting)), static


def test_a_frozen_database_times_out_with_a_page_and_static_files_are_still_served(
    served: Served, silent: Silent, monkeypatch: pytest.MonkeyPatch
) -> None:
    _point_at(
        monkeypatch,
        f"postgresql://postgres@127.0.0.1:{silent.port}/feedsync",
        FEEDSYNC_DATABASE_CONNECT_TIMEOUT_S="2",
    )
    pages, static = asyncio.run(_pages_and_static(served.url, silent, 45))
    assert static.status_code == 200 and "body" in static.text
    assert {r.status_code for r in pages} == {503}
    assert all(UNREACHABLE in r.text for r in pages)


def test_a_statement_stuck_behind_a_lock_ends_at_the_consoles_statement_timeout(
    console: TestClient, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    _point_at(monkeypatch, DATABASE_URL, FEEDSYNC_WEB_STATEMENT_TIMEOUT_MS="1000")
    console.cookies.set("feedsync_session", "any")
    with psycopg.connect(DATABASE_URL) as holder:
        holder.execute("LOCK TABLE sync.admin_sessions IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        r = console.get("/connections")
        assert time.monotonic() - started < settings.lock_timeout_ms / 1000
    assert r.status_code == 503 and UNREACHABLE in r.text
