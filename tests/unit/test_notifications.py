"""Warnings for a run with errors arrive by e-mail (a real SMTP server, aiosmtpd) and by webhook (a
local HTTP receiver), once each, saying what failed, how many rows and how to get the report."""

from __future__ import annotations

import io
import json
import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from producers import queries
from producers.commands import apply_connections
from schemas.connections import load_connections_toml
from schemas.settings import get_settings
from tests.conftest import sql
from tests.data import MAPPINGS, ORG, POSITIONS, USER, connect, person, sync
from tests.notifying import Inbox, free_port, receiver
from tests.stubpipeline import HEADER, USERS_TOML, Pipeline
from workers import notify
from workers.logs import log_handler


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
    assert "import/hierarchy/user.csv line 3 column Unit ID: unknown_unit" in body
    assert "NOWHERE" not in body and "NOWHERE" not in json.dumps(hook), "positions and codes, not cell values"
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
    pipeline: Pipeline, smtp: Inbox, allow_private: None
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
    assert row[0] is None and row[1] == notify.UNREACHABLE and row[2:] == (1, True)
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


def run_with_errors(pipeline: Pipeline, notify_toml: str) -> int:
    """A users run with one rejected row (an invalid e-mail): it sends its connection's warning."""
    apply_connections(load_connections_toml(f"{USERS_TOML}\n[connections.notify]\n{notify_toml}\n"))
    run_id = pipeline.import_files(("import/user/internal/a.csv", HEADER + "not-an-email,A,A,,S\nb@x.com,B,B,,S\n"))
    assert queries.history()[0]["status"] == "completed_with_errors"
    return run_id


def outcome(channel: str) -> tuple[Any, ...]:
    (row,) = sql("SELECT sent_at IS NOT NULL, error FROM sync.notifications WHERE channel = %s", (channel,))
    return row


def recorder(status: int = 204, location: str | None = None) -> tuple[ThreadingHTTPServer, list[tuple[str, str]]]:
    """A local HTTP server that answers every request with ``status`` and keeps (method, path)."""
    seen: list[tuple[str, str]] = []

    class Recorder(BaseHTTPRequestHandler):
        def answer(self) -> None:
            seen.append((self.command, self.path))
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(status)
            if location:
                self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = do_PUT = answer

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, seen


def test_a_webhook_that_redirects_is_a_failed_delivery_and_the_redirect_is_not_followed(
    pipeline: Pipeline, allow_private: None
) -> None:
    inside, reached = recorder()  # stands for an internal service the redirect points at
    hook, posted = recorder(302, location=f"http://127.0.0.1:{inside.server_address[1]}/admin/reset")
    try:
        run_with_errors(pipeline, f'webhook = "http://127.0.0.1:{hook.server_address[1]}/hook"')
    finally:
        for server in (inside, hook):
            server.shutdown()
            server.server_close()
    assert posted == [("POST", "/hook")]
    assert reached == [], "the redirect was not followed"
    assert outcome("webhook") == (False, "the webhook answered HTTP 302, a redirect, which feedsync does not follow")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_loopback_webhook_is_refused_unless_a_setting_allows_it(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    server, received = receiver()
    try:
        run_id = run_with_errors(pipeline, f'webhook = "http://{host}:{server.server_address[1]}/hook"')
        assert received == [] and outcome("webhook") == (False, notify.INTERNAL)

        monkeypatch.setenv("FEEDSYNC_WEBHOOK_ALLOW_PRIVATE", "true")
        get_settings.cache_clear()
        sql("UPDATE sync.notifications SET next_at = now()")
        assert notify.retry_due() == {(run_id, "webhook"): "sent"}
    finally:
        server.shutdown()
        server.server_close()
    assert [r["run_id"] for r in received] == [run_id]


@pytest.mark.parametrize(
    "address",
    ["10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "127.0.0.2", "0.0.0.0", "100.64.0.1", "224.0.0.1",  # noqa: S104  (checked, never bound)
     "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "::ffff:10.0.0.1", "::ffff:127.0.0.1"],
)  # fmt: skip
def test_internal_addresses_are_recognised(address: str) -> None:
    assert notify._internal(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "::ffff:93.184.216.34"])
def test_public_addresses_are_not_internal(address: str) -> None:
    assert not notify._internal(address)


def test_every_network_failure_of_a_webhook_reads_the_same(
    allow_private: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEEDSYNC_NOTIFY_TIMEOUT_S", "0.5")
    get_settings.cache_clear()
    closed = free_port()  # nothing listens there
    with socket.socket() as silent, socket.socket() as hangs_up:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # connects, never answers
        hangs_up.bind(("127.0.0.1", 0))
        hangs_up.listen()

        def hang_up() -> None:
            conn, _ = hangs_up.accept()
            conn.close()

        threading.Thread(target=hang_up, daemon=True).start()
        texts = set()
        for port in (closed, silent.getsockname()[1], hangs_up.getsockname()[1]):
            with pytest.raises(Exception) as failure:
                notify._post(f"http://127.0.0.1:{port}/hook", {"run_id": 1}, get_settings())
            texts.add(str(failure.value))
    assert len(texts) == 1, texts
    assert texts == {notify.UNREACHABLE}


PASSWORD = "Tr0ub4dor-and-3"  # noqa: S105  (a test server's password)


@pytest.fixture
def smtp_with_login(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Inbox, list[str]]]:
    """A real SMTP server without TLS that accepts the login feedsync / PASSWORD."""
    from aiosmtpd.smtp import AuthResult, LoginPassword

    logins: list[str] = []

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"feedsync", PASSWORD.encode())
        if ok:
            logins.append(mechanism)
        return AuthResult(success=ok)

    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=authenticate, auth_require_tls=False)
    controller.start()
    try:
        for name, value in {
            "HOST": "127.0.0.1", "PORT": str(port), "TLS": "none", "USER": "feedsync", "PASSWORD": PASSWORD,
        }.items():  # fmt: skip
            monkeypatch.setenv(f"FEEDSYNC_SMTP_{name}", value)
        get_settings.cache_clear()
        yield inbox, logins
    finally:
        controller.stop()
        get_settings.cache_clear()


def test_smtp_credentials_over_a_plain_connection_are_refused_unless_a_setting_allows_them(
    pipeline: Pipeline, smtp_with_login: tuple[Inbox, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox, logins = smtp_with_login
    out = io.StringIO()
    handler = log_handler(out, as_json=True)
    logging.getLogger().addHandler(handler)
    try:
        run_id = run_with_errors(pipeline, 'email = ["it@example.com"]')
    finally:
        logging.getLogger().removeHandler(handler)
    assert inbox.messages == [] and logins == [], "nothing was sent, not even the login"
    assert outcome("email") == (False, notify.PLAINTEXT_AUTH)
    assert "FEEDSYNC_SMTP_ALLOW_PLAINTEXT_AUTH" in out.getvalue()
    assert PASSWORD not in out.getvalue()

    monkeypatch.setenv("FEEDSYNC_SMTP_ALLOW_PLAINTEXT_AUTH", "true")
    get_settings.cache_clear()
    sql("UPDATE sync.notifications SET next_at = now()")
    assert notify.retry_due() == {(run_id, "email"): "sent"}
    assert logins and len(inbox.messages) == 1


def test_a_webhook_that_drips_its_answer_is_cut_off_at_the_timeout_for_the_whole_send(
    allow_private: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each byte comes before the socket's timeout, so only a deadline for the whole send stops it."""
    monkeypatch.setenv("FEEDSYNC_NOTIFY_TIMEOUT_S", "1")
    get_settings.cache_clear()
    done, cut_off = threading.Event(), threading.Event()
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()

        def drip() -> None:
            conn, _ = server.accept()
            with conn:
                conn.recv(65536)
                try:
                    for _ in range(600):  # a byte every 0.1 s for at most a minute
                        conn.sendall(b"H")
                        done.wait(0.1)  # the server's pace, not a wait for a condition
                except OSError:
                    cut_off.set()  # feedsync hung up while the answer was still coming
                done.set()

        threading.Thread(target=drip, daemon=True).start()
        with pytest.raises(notify.NotSent) as failure:
            notify._post(f"http://127.0.0.1:{server.getsockname()[1]}/hook", {"run_id": 1}, get_settings())
        assert str(failure.value) == notify.UNREACHABLE
        assert done.wait(30) and cut_off.is_set(), "the send waited for the whole dripped answer"
