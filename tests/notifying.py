"""Local receivers for what feedsync sends: an SMTP inbox and a webhook endpoint on 127.0.0.1 (the
fixtures `smtp`, `webhook` and `allow_private`, registered for every tier by tests/conftest.py)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from schemas.settings import get_settings


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    inbox = Inbox()
    port = free_port()  # aiosmtpd's controller cannot start on port 0
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        monkeypatch.setenv("FEEDSYNC_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("FEEDSYNC_SMTP_PORT", str(port))
        monkeypatch.setenv("FEEDSYNC_SMTP_TLS", "none")
        monkeypatch.setenv("FEEDSYNC_SMTP_FROM", "feedsync@example.com")
        get_settings.cache_clear()
        yield inbox
    finally:
        controller.stop()
        get_settings.cache_clear()


def receiver(port: int = 0) -> tuple[ThreadingHTTPServer, list[dict[str, Any]]]:
    """A local HTTP server that keeps the JSON bodies POSTed to it."""
    received: list[dict[str, Any]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, received


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def allow_private(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests post only to 127.0.0.1, which feedsync refuses unless told otherwise."""
    monkeypatch.setenv("FEEDSYNC_WEBHOOK_ALLOW_PRIVATE", "true")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def webhook(allow_private: None) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    server, received = receiver()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks/feedsync", received
    finally:
        server.shutdown()
        server.server_close()
