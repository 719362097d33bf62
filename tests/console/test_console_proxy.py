"""Which client and scheme the console believes: X-Forwarded-* only from the proxies listed in
FEEDSYNC_WEB_TRUSTED_PROXIES (none by default), and HSTS whenever the console is reached over TLS.
Over real HTTP, through `feedsync web` as cli.py configures uvicorn."""

from __future__ import annotations

import os
from typing import Any

import httpx2 as httpx
from starlette.testclient import TestClient

from tests.conftest import feedsync, sql
from tests.console.conftest import PASSWORD, csrf_of, sign_in
from tests.console.webproc import feedsync_web

FORGED = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}


def _sign_in_through(url: str, password: str) -> httpx.Response:
    with httpx.Client(base_url=url) as client:
        token = csrf_of(client.get("/sign-in").text)
        return client.post(
            "/sign-in",
            data={"name": "ada", "password": password, "csrf": token},
            headers=FORGED,
            follow_redirects=False,
        )


def test_forwarded_headers_from_localhost_are_ignored_by_default(settings: Any) -> None:
    from producers.console import accounts

    accounts.add_admin("ada", PASSWORD, "admin")
    with feedsync_web() as web:
        assert _sign_in_through(web.url, "wrong password!").status_code == 401
        right = _sign_in_through(web.url, PASSWORD)
    assert right.status_code == 303
    # The throttle and the audit see the connection's own address, and the scheme it really used.
    assert sql("SELECT action, client FROM sync.audit ORDER BY id") == [
        ("sign_in_failed", "127.0.0.1"),
        ("sign_in", "127.0.0.1"),
    ]
    assert "Secure" not in right.headers["set-cookie"]
    assert "strict-transport-security" not in right.headers


def test_forwarded_headers_are_believed_from_a_listed_proxy(settings: Any) -> None:
    from producers.console import accounts

    accounts.add_admin("ada", PASSWORD, "admin")
    with feedsync_web(FEEDSYNC_WEB_TRUSTED_PROXIES="127.0.0.1") as web:
        assert _sign_in_through(web.url, "wrong password!").status_code == 401
        right = _sign_in_through(web.url, PASSWORD)
    assert right.status_code == 303
    assert sql("SELECT client FROM sync.audit ORDER BY id") == [("203.0.113.9",), ("203.0.113.9",)]
    assert "Secure" in right.headers["set-cookie"]
    assert right.headers["strict-transport-security"] == "max-age=31536000"


def test_a_trusted_proxies_entry_that_is_no_address_is_refused_with_a_sentence(settings: Any) -> None:

    proc = feedsync(
        "web",
        "--bind",
        "127.0.0.1:0",
        timeout=60,
        env={**os.environ, "FEEDSYNC_WEB_TRUSTED_PROXIES": "127.0.0.1,proxy.local"},
        check=False,
    )
    assert proc.returncode != 0
    assert "FEEDSYNC_WEB_TRUSTED_PROXIES takes IP addresses or networks" in proc.stderr
    assert "(entry 2 is not one)" in proc.stderr and "proxy.local" not in proc.stderr


def test_hsts_is_sent_over_tls_only(console: TestClient) -> None:
    assert "strict-transport-security" not in console.get("/sign-in").headers
    from producers.console.app import create_app

    with TestClient(create_app(), base_url="https://console.test") as tls:
        assert tls.get("/sign-in").headers["strict-transport-security"] == "max-age=31536000"
        assert sign_in(tls, "ada").headers["strict-transport-security"] == "max-age=31536000"
