"""Console fixtures: admins, a signed-in TestClient, and the console served on a free port."""

from __future__ import annotations

import html
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from producers.console import accounts
from producers.console.app import create_app
from tests.waiting import poll_until

PASSWORD = "correct horse battery"  # noqa: S105  (a test admin's password)


def text_of(page: str) -> str:
    """The page's text as a reader sees it: tags dropped, entities decoded, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "the page has a form with a CSRF token"
    return m.group(1)


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> Any:
    page = client.get("/sign-in")
    return client.post(
        "/sign-in", data={"name": name, "password": password, "csrf": csrf_of(page.text)}, follow_redirects=False
    )


@pytest.fixture
def console(settings: Any) -> Iterator[TestClient]:
    """A TestClient of the console (signed out), with an admin `ada` and a viewer `vic`."""
    accounts.add_admin("ada", PASSWORD, "admin")
    accounts.add_admin("vic", PASSWORD, "viewer")
    with TestClient(create_app(), base_url="http://console.test") as client:
        yield client


@pytest.fixture
def as_admin(console: TestClient) -> TestClient:
    assert sign_in(console, "ada").status_code == 303
    return console


@pytest.fixture
def as_viewer(console: TestClient) -> TestClient:
    assert sign_in(console, "vic").status_code == 303
    return console


@pytest.fixture
def console_file(settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The console's own connections file (FEEDSYNC_CONSOLE_CONNECTIONS_FILE), not there yet."""
    from schemas.settings import get_settings

    path = tmp_path / "conf" / "console.connections.toml"
    monkeypatch.setenv("FEEDSYNC_CONSOLE_CONNECTIONS_FILE", str(path))
    get_settings.cache_clear()
    return path


def form_token(client: TestClient, path: str = "/connections") -> str:
    return csrf_of(client.get(path).text)


class Served:
    def __init__(self, url: str) -> None:
        self.url = url


@pytest.fixture
def served(settings: Any) -> Iterator[Served]:
    """The console on a free 127.0.0.1 port, in this process (so it shares the stub broker)."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()

    def started() -> bool:
        assert thread.is_alive(), "the console stopped while starting"
        return bool(server.started)

    poll_until(started, timeout=30, interval=0.02, message="the console did not start")
    try:
        yield Served(f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=30)
