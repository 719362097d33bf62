"""Sign-in under attack, over real HTTP (uvicorn on a free port, the real PostgreSQL): parallel
guesses are counted before any password is verified, verifications are bounded in number and in
memory, and a locked admin name is logged and can be unlocked (`feedsync admins unlock`)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient
from structlog.testing import capture_logs

from producers.dlq import admin_identity
from tests.conftest import feedsync, sql
from tests.console.conftest import PASSWORD, Served, csrf_of, sign_in
from tests.console.webproc import Web, feedsync_web


async def _burst(url: str, attempts: list[tuple[str, str]]) -> list[int]:
    """All the attempts at once, on one sign-in form (its token and cookie are reusable)."""
    limits = httpx.Limits(max_connections=len(attempts), max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=540) as client:
        page = await client.get("/sign-in")
        token = csrf_of(page.text)
        responses = await asyncio.gather(
            *(
                client.post("/sign-in", data={"name": name, "password": password, "csrf": token})
                for name, password in attempts
            )
        )
    return [r.status_code for r in responses]


def burst(url: str, attempts: list[tuple[str, str]]) -> list[int]:
    return asyncio.run(_burst(url, attempts))


def failed_sign_ins() -> int:
    ((n,),) = sql("SELECT count(*) FROM sync.audit WHERE action = 'sign_in_failed'")
    return int(n)


@pytest.mark.parametrize("spread", ["one name", "many names from one address"])
def test_parallel_guesses_are_counted_before_any_password_is_verified(
    served: Served, settings: Any, spread: str
) -> None:
    from producers.console import accounts

    accounts.add_admin("ada", PASSWORD, "admin")
    names = ["ada"] * 60 if spread == "one name" else ["ada", *(f"user{i}" for i in range(59))]
    statuses = burst(served.url, [(name, "wrong password!") for name in names])
    # Only the first five reserved an attempt and reached argon2; every other answer is 429.
    assert statuses.count(401) == settings.web_signin_max_failures
    assert statuses.count(429) == 60 - settings.web_signin_max_failures
    assert failed_sign_ins() == settings.web_signin_max_failures
    # ... and the right password, afterwards, is refused too.
    assert burst(served.url, [("ada", PASSWORD)]) == [429]
    assert not sql("SELECT 1 FROM sync.audit WHERE action = 'sign_in'")


def test_the_right_password_in_a_burst_signs_in_only_within_the_limit(served: Served, settings: Any) -> None:
    from producers.console import accounts

    accounts.add_admin("ada", PASSWORD, "admin")
    statuses = burst(served.url, [("ada", "wrong password!")] * 59 + [("ada", PASSWORD)])
    signed_in = statuses.count(303)
    assert statuses.count(401) + signed_in <= settings.web_signin_max_failures
    # A sign-in is no failure: its reserved row became the sign-in.
    assert failed_sign_ins() == statuses.count(401)
    assert len(sql("SELECT 1 FROM sync.audit WHERE action = 'sign_in'")) == signed_in


def _peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc/PID/status")


@pytest.fixture
def web_process(settings: Any) -> Iterator[Web]:
    """`feedsync web` with its throttle out of the way, so every guess is verified."""
    with feedsync_web(FEEDSYNC_WEB_SIGNIN_MAX_FAILURES="100000") as web:
        yield web


@pytest.mark.timeout(600)  # 200 argon2id verifications, two at a time, on a shared machine
def test_a_burst_of_200_sign_ins_keeps_the_consoles_memory_flat(web_process: Web) -> None:
    from producers.console import accounts

    url, pid = web_process.url, web_process.pid
    accounts.add_admin("ada", PASSWORD, "admin")
    burst(url, [("ada", "wrong password!")])  # one verification first: argon2 and its buffers loaded
    before = _peak_rss_mib(pid)
    statuses = burst(url, [("ada", "wrong password!")] * 200)
    assert statuses == [401] * 200
    # argon2id takes 64 MiB a verification; two at a time (and slack for 200 requests' buffers).
    assert _peak_rss_mib(pid) - before < 3 * 64


def test_a_locked_admin_name_is_logged_once_and_an_admin_can_unlock_it(console: TestClient, settings: Any) -> None:
    with capture_logs() as logs:
        for _ in range(settings.web_signin_max_failures):
            assert sign_in(console, "ada", "wrong password!").status_code == 401
        assert sign_in(console, "ada").status_code == 429
    locked = [e for e in logs if e["event"] == "console_sign_in_locked"]
    assert len(locked) == 1 and locked[0]["admin"] == "ada" and locked[0]["log_level"] == "warning"
    assert "feedsync admins unlock ada" in locked[0]["hint"]
    assert "wrong password!" not in repr(logs)

    out = feedsync("admins", "unlock", "ada")
    assert "ada: unlocked" in out.stdout
    assert sign_in(console, "ada").status_code == 303
    ((who, target),) = sql("SELECT admin, target FROM sync.audit WHERE action = 'sign_in_unlocked'")
    assert target == "ada" and who == admin_identity()
    assert feedsync("admins", "unlock", "nobody", check=False).returncode == 1


def test_unlock_lets_an_admin_in_when_other_names_locked_the_shared_address(console: TestClient, settings: Any) -> None:
    """Through an SSH tunnel, or a proxy not listed in FEEDSYNC_WEB_TRUSTED_PROXIES, everyone has one
    address: guesses at other names lock it for all, and unlocking the admin's name must lift that."""
    for i in range(settings.web_signin_max_failures):
        assert sign_in(console, f"mallory{i}", "x").status_code == 401
    assert sign_in(console, "ada").status_code == 429
    feedsync("admins", "unlock", "ada")
    assert sign_in(console, "ada").status_code == 303
    # Only the unlocked name gets past the address: other names from it stay locked, and the
    # unlocked name's own failures count again from the unlock.
    assert sign_in(console, "eve", "x").status_code == 429
    for _ in range(settings.web_signin_max_failures):
        assert sign_in(console, "ada", "wrong password!").status_code == 401
    assert sign_in(console, "ada").status_code == 429


def test_a_locked_name_that_is_no_admin_is_never_logged(console: TestClient, settings: Any) -> None:
    with capture_logs() as logs:
        for _ in range(settings.web_signin_max_failures):
            assert sign_in(console, "my-password-typed-here", "x").status_code == 401
    assert not [e for e in logs if e["event"] == "console_sign_in_locked"]
    assert "my-password-typed-here" not in repr(logs)
