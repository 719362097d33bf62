"""A large console upload to a real `feedsync web` process: streamed to the drop folder with the
console's memory flat; refused over FEEDSYNC_WEB_UPLOAD_MAX_MB, without its token or to a viewer
before the body is read whole (the answer comes while the client is still sending)."""

from __future__ import annotations

import hashlib
import select
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from producers.commands import apply_connections
from producers.console import accounts
from schemas.connections import load_connections_toml
from tests.conftest import sql
from tests.console.conftest import PASSWORD, csrf_of, form_token
from tests.console.webproc import feedsync_web
from tests.stubpipeline import HEADER, USERS_TOML

MIB = 1 << 20
BODY_MIB = 300
BOUNDARY = "feedsync-test-boundary"
FEED = "import/user/internal/"


def _peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc/PID/status")


def _signed_in(url: str, who: str) -> tuple[str, str]:
    """The session cookie and CSRF token of ``who``, signed in over HTTP."""
    with httpx.Client(base_url=url) as client:
        token = csrf_of(client.get("/sign-in").text)
        r = client.post("/sign-in", data={"name": who, "password": PASSWORD, "csrf": token}, follow_redirects=True)
        assert r.status_code == 200, r.status_code  # followed to the connections page
        return client.cookies["feedsync_session"], csrf_of(r.text)


def _head(csrf: str | None, filename: str = "big.csv") -> bytes:
    token = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n{csrf}\r\n' if csrf else ""
    return (
        f'{token}--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="{filename}"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()


TAIL = f"\r\n--{BOUNDARY}--\r\n".encode()


def _rows(mib: int) -> Iterator[bytes]:
    """``mib`` MiB of a users feed, made as it is sent (never held whole by the test either)."""
    line = b"a@x.com,A,B,,S\n"
    block = HEADER.encode() + line * ((MIB - len(HEADER)) // len(line))
    block += b"#" * (MIB - len(block) - 1) + b"\n"
    for _ in range(mib):
        yield block


def _post_raw(url: str, cookie: str, head: bytes, mib: int, *, declared: bool) -> tuple[int, int]:
    """POST the upload over a socket of our own, reading the answer as soon as it comes: returns
    the status and how many bytes of the body had been sent when it came."""
    total = len(head) + mib * MIB + len(TAIL)
    framing = f"Content-Length: {total}" if declared else "Transfer-Encoding: chunked"
    netloc = urlsplit(url).netloc
    host, port = netloc.rsplit(":", 1)
    request = (
        f"POST /connections/hr-users/upload HTTP/1.1\r\nHost: {netloc}\r\nCookie: feedsync_session={cookie}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n{framing}\r\n\r\n"
    ).encode()

    def pieces() -> Iterator[bytes]:
        for piece in (head, *_rows(mib), TAIL):
            yield piece if declared else f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        if not declared:
            yield b"0\r\n\r\n"

    sent, answer = 0, b""  # bytes of the body sent, and of the answer received
    with socket.create_connection((host, int(port)), timeout=120) as sock:
        sock.sendall(request)
        pending = memoryview(b"")
        body = pieces()
        while b"\r\n" not in answer:
            if not pending:
                pending = memoryview(next(body, b""))
            readable, writable, _ = select.select([sock], [sock] if pending else [], [], 120)
            assert readable or writable, "the console neither answered nor read for 120 s"
            if readable:
                chunk = sock.recv(65536)
                assert chunk, "the console closed the connection without an answer"
                answer += chunk
            elif writable:
                n = sock.send(pending[: 4 * 65536])
                sent, pending = sent + n, pending[n:]
    return int(answer.split(b" ", 2)[1]), sent


@pytest.fixture
def hr_users(settings: Any) -> Path:
    apply_connections(load_connections_toml(USERS_TOML))
    if not accounts.list_admins():  # else the console fixture made them
        accounts.add_admin("ada", PASSWORD, "admin")
        accounts.add_admin("vic", PASSWORD, "viewer")
    return Path(settings.drop_dir) / FEED


def _left_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.timeout(600)  # 300 MiB through the console on a shared machine
def test_a_300_mib_upload_under_the_limit_is_streamed_to_the_drop_folder_with_memory_flat(hr_users: Path) -> None:
    with feedsync_web(FEEDSYNC_WEB_UPLOAD_MAX_MB=str(BODY_MIB + 10)) as web:
        cookie, token = _signed_in(web.url, "ada")
        with httpx.Client(base_url=web.url, cookies={"feedsync_session": cookie}, timeout=540) as client:
            warm = client.post(
                "/connections/hr-users/upload",
                content=_head(token, "warm.csv") + next(_rows(1)) + TAIL,
                headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
            )
            assert warm.status_code == 303, warm.text  # the upload path's code and buffers loaded
            before = _peak_rss_mib(web.pid)
            digest = hashlib.sha256()

            def body() -> Iterator[bytes]:
                yield _head(token)
                for block in _rows(BODY_MIB):
                    digest.update(block)
                    yield block
                yield TAIL

            r = client.post(
                "/connections/hr-users/upload",
                content=body(),
                headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
            )
        assert r.status_code == 303 and r.headers["location"] == "/connections/hr-users?uploaded=1", r.text
        grown = _peak_rss_mib(web.pid) - before
    placed = hr_users / "big.csv"
    assert placed.stat().st_size == BODY_MIB * MIB
    with placed.open("rb") as f:
        assert hashlib.file_digest(f, "sha256").hexdigest() == digest.hexdigest()
    assert _left_in(hr_users) == ["big.csv", "warm.csv"]  # no staged file left behind
    assert grown < 32, f"the console's peak memory grew {grown:.0f} MiB for a {BODY_MIB} MiB upload"


@pytest.mark.timeout(600)
@pytest.mark.parametrize(
    ("case", "limit_mib", "status", "outcome"),
    [
        ("over the limit, declared", BODY_MIB - 100, 413, "refused: too large"),
        ("over the limit, chunked", BODY_MIB - 100, 413, "refused: too large"),
        ("no token", BODY_MIB + 10, 403, "refused: csrf"),
        ("a wrong token", BODY_MIB + 10, 403, "refused: csrf"),
        ("a viewer", BODY_MIB + 10, 403, "refused: viewer"),
    ],
)
def test_a_large_upload_is_refused_before_its_body_is_read_whole(
    hr_users: Path, case: str, limit_mib: int, status: int, outcome: str
) -> None:
    with feedsync_web(FEEDSYNC_WEB_UPLOAD_MAX_MB=str(limit_mib)) as web:
        cookie, token = _signed_in(web.url, "vic" if case == "a viewer" else "ada")
        csrf = {"no token": None, "a wrong token": "forged-" + token}.get(case, token)
        before = _peak_rss_mib(web.pid)
        answered, sent = _post_raw(web.url, cookie, _head(csrf), BODY_MIB, declared=case != "over the limit, chunked")
        grown = _peak_rss_mib(web.pid) - before
    assert answered == status
    # The answer came while the body was still being sent: at once, or (no length declared) once
    # the limit was passed.
    bound = limit_mib + 50 if case == "over the limit, chunked" else 100
    assert sent < bound * MIB, f"{sent / MIB:.0f} MiB of {BODY_MIB} sent before the answer"
    assert grown < 32, f"the console's peak memory grew {grown:.0f} MiB"
    assert sql("SELECT outcome FROM sync.audit WHERE action = 'upload'") == [(outcome,)]
    assert _left_in(hr_users) == []  # nothing placed, no staged file left behind


def test_a_plain_form_post_must_carry_its_token_before_the_files(as_admin: TestClient, hr_users: Path) -> None:
    token = form_token(as_admin)
    late = (
        _head(None)
        + b"x\n"
        + f'\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n{token}'.encode()
    )
    r = as_admin.post(
        "/connections/hr-users/upload",
        content=late + TAIL,
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    assert r.status_code == 403 and "This form has expired" in r.text
    assert _left_in(hr_users) == []
    # A script may send the token in a header instead (never in the URL: the access log holds URLs).
    r = as_admin.post(
        "/connections/hr-users/upload",
        content=_head(None, "users-1.csv") + (HEADER + "a@x.com,A,B,,S\n").encode() + TAIL,
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", "X-CSRF-Token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303 and _left_in(hr_users) == ["users-1.csv"]


def test_a_refused_file_of_several_leaves_no_staged_file_behind(as_admin: TestClient, hr_users: Path) -> None:
    r = as_admin.post(
        "/connections/hr-users/upload",
        data={"csrf": form_token(as_admin)},
        files=[("files", ("a.csv", HEADER.encode(), "text/csv")), ("files", ("b.zip", b"PK", "application/zip"))],
    )
    assert r.status_code == 400 and "b.zip: not uploaded: hr-users would never take it" in r.text
    assert _left_in(hr_users) == []


def test_a_sign_in_form_larger_than_any_the_console_sends_is_refused(console: TestClient) -> None:
    r = console.post(
        "/sign-in", content=b"name=" + b"a" * (2 << 20), headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert r.status_code == 413 and "larger than any the console sends" in r.text
