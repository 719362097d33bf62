"""Warnings for a run with errors arrive by e-mail (a real SMTP server, aiosmtpd) and by webhook (a
local HTTP receiver), once each, saying what failed, how many rows and how to get the report."""

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

from producers import queries
from schemas.settings import get_settings
from tests.conftest import sql
from tests.stubpipeline import Pipeline
from tests.unit.test_hierarchy import MAPPINGS, ORG, POSITIONS, USER, connect, person, sync
from workers import notify


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
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    server, received = receiver()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks/feedsync", received
    finally:
        server.shutdown()
        server.server_close()


def test_a_run_with_errors_sends_one_email_and_one_webhook(
    pipeline: Pipeline, smtp: Inbox, webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = webhook
    notify_toml = f'[connections.notify]\nwebhook = "{url}"\nemail = ["hr-it@example.com", "lms@example.com"]\n'
    connect(extra="", mappings=notify_toml + MAPPINGS)
    people = USER + person("u1", "SALES") + person("u2", "NOWHERE") + person("u3", "SALES", "u3")
    run = sync(pipeline, {"org.csv": ORG + "SALES,Sales,,\n", "pos.csv": POSITIONS, "user.csv": people})
    assert run["status"] == "completed_with_errors"

    assert len(received) == 1
    hook = received[0]
    assert (hook["event"], hook["run_id"], hook["connection"], hook["status"]) == (
        "run_with_errors", run["run_id"], "hr", "completed_with_errors",
    )  # fmt: skip
    assert hook["rows_rejected"] == 2 and hook["report"] == f"feedsync errors {run['run_id']} --csv"
    assert {(e["line"], e["code"]) for e in hook["first_errors"]} == {(3, "unknown_unit"), (4, "self_manager")}

    assert len(smtp.messages) == 1
    recipients, mail = smtp.messages[0]
    assert recipients == ["hr-it@example.com", "lms@example.com"]
    assert mail["Subject"] == f"feedsync: run {run['run_id']} of hr completed with errors"
    body = mail.get_payload()
    assert "2 row(s) rejected" in body
    assert "import/hierarchy/user.csv line 3 column Unit ID: no unit has the id NOWHERE" in body
    assert f"The full error report: feedsync errors {run['run_id']} --csv" in body
    assert "u2@x.com" not in body, "no row values (personal data) in a warning"

    # Finalize delivered again (or a second call) sends nothing more.
    assert notify.run_finished(run["run_id"]) == {}
    assert len(received) == 1 and len(smtp.messages) == 1
    assert sql("SELECT channel, sent_at IS NOT NULL, error FROM sync.notifications ORDER BY 1") == [
        ("email", True, None),
        ("webhook", True, None),
    ]


def test_a_clean_run_sends_nothing_and_a_dead_webhook_is_recorded_and_tried_again(
    pipeline: Pipeline, smtp: Inbox
) -> None:
    port = free_port()  # nothing listens there yet
    notify_toml = f'[connections.notify]\nwebhook = "http://127.0.0.1:{port}/hooks"\nemail = ["it@example.com"]\n'
    connect(extra="", mappings=notify_toml + MAPPINGS)
    clean = sync(
        pipeline, {"org.csv": ORG + "SALES,Sales,,\n", "pos.csv": POSITIONS, "user.csv": USER + person("u1", "SALES")}
    )
    assert clean["status"] == "completed" and smtp.messages == []
    bad = sync(pipeline, {"user.csv": USER + person("u9", "NOWHERE")})
    assert bad["status"] == "completed_with_errors"
    assert len(smtp.messages) == 1
    (row,) = sql(
        "SELECT sent_at, error, attempts, next_at - now() > interval '4 minutes' FROM sync.notifications"
        " WHERE channel = 'webhook'"
    )
    assert row[0] is None and "Connection refused" in row[1] and row[2:] == (1, True)
    assert queries.history("hr")[0]["status"] == "completed_with_errors"

    assert notify.retry_due() == {}, "nothing is retried before its pause is over"
    server, received = receiver(port)
    try:
        sql("UPDATE sync.notifications SET next_at = now() WHERE channel = 'webhook'")
        assert notify.retry_due() == {(bad["run_id"], "webhook"): "sent"}
    finally:
        server.shutdown()
        server.server_close()
    assert [r["run_id"] for r in received] == [bad["run_id"]]
    assert len(smtp.messages) == 1, "the e-mail, sent the first time, is not sent again"
    assert sql(
        "SELECT attempts, sent_at IS NOT NULL, error, next_at FROM sync.notifications WHERE channel = 'webhook'"
    ) == [(2, True, None, None)]
