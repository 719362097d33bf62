"""Who is asking, and may they: the session cookie, the CSRF token, roles, and the audit.

Every page needs a session (else a redirect to the sign-in page); every action needs the admin
role, then the session's CSRF token (a synchronizer token: the form's first field, or the
X-CSRF-Token header) and, when the browser sends one, an Origin of this site. Both are checked
before a file part is read (``formstream``), and a body over FEEDSYNC_WEB_UPLOAD_MAX_MB is refused
before it is read whole. Blocking work (PostgreSQL, files) runs in a thread with
the admin's identity set, so the commands record them as the CLI records the shell user.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit

import anyio
import psycopg
from starlette.datastructures import FormData
from starlette.requests import ClientDisconnect, Request
from starlette.responses import RedirectResponse, Response

from producers.attention import needs_attention
from producers.console import accounts, formstream
from producers.dlq import acting_as
from schemas.settings import get_settings
from workers import store

COOKIE = "feedsync_session"
#: Double-submit token of the sign-in form (no session exists yet to hold one).
SIGNIN_COOKIE = "feedsync_signin"

T = TypeVar("T")
Page = Callable[[Request, accounts.Session], Awaitable[Response]]
Action = Callable[[Request, accounts.Session, FormData], Awaitable[Response]]


#: The threads that may use PostgreSQL, per app (set for each request by app.database_threads).
db_threads: ContextVar[anyio.CapacityLimiter | None] = ContextVar("db_threads", default=None)


class DatabaseUnavailable(Exception):
    """PostgreSQL refused, did not answer in time, or cancelled a statement that took too long."""


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


async def blocking(session: accounts.Session | None, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn`` in a worker thread, as the signed-in admin."""
    return await threaded(session, db_threads.get(), fn, *args, **kwargs)


async def threaded(
    session: accounts.Session | None,
    limiter: anyio.CapacityLimiter | None,
    fn: Callable[..., T],
    *args: Any,
    **kwargs: Any,
) -> T:
    """``blocking`` on threads of ``limiter``: the console's statement timeout, and a database that
    cannot be reached raised as DatabaseUnavailable (one page says so, whatever the route)."""

    def run() -> T:
        with store.statement_timeout(get_settings().web_statement_timeout_ms):
            if session is None:
                return fn(*args, **kwargs)
            with acting_as(session.admin.identity):
                return fn(*args, **kwargs)

    try:
        return await anyio.to_thread.run_sync(run, limiter=limiter)
    except psycopg.OperationalError as exc:  # refused, connect timeout, statement timeout
        raise DatabaseUnavailable(type(exc).__name__) from exc


async def current(request: Request) -> accounts.Session | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    return await blocking(None, accounts.session, token)


def _to_sign_in(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    from urllib.parse import quote

    return RedirectResponse(f"/sign-in?next={quote(target, safe='')}", status_code=303)


def page(fn: Page) -> Callable[[Request], Awaitable[Response]]:
    """A page or download: any signed-in admin or viewer."""

    async def endpoint(request: Request) -> Response:
        s = await current(request)
        if s is None:
            return _to_sign_in(request)
        request.state.session = s
        # The nav's counts of what needs attention, on every page (producers/attention.py).
        request.state.attention = await blocking(s, needs_attention)
        return await fn(request, s)

    return endpoint


def same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None  # no header (an older browser, a test client); "null" is a sandboxed page
    return urlsplit(origin).netloc == request.headers.get("host", "")


#: A script may send the session's token in this header instead of the form (never in the URL: the
#: access log records URLs).
CSRF_HEADER = "x-csrf-token"
EXPIRED = "This form has expired or did not come from this console. Reload the page."


def token_ok(request: Request, sent: str | None, expected: str) -> bool:
    return sent is not None and secrets.compare_digest(sent, expected) and same_origin(request)


async def _refuse(request: Request, s: accounts.Session, name: str, why: str, status: int, message: str) -> NoReturn:
    target = "/".join(str(v) for v in request.path_params.values()) or None
    await blocking(None, accounts.record, s.admin.name, name, target, outcome=f"refused: {why}", client=client(request))
    raise Refused(status, message)


async def acting(request: Request, name: str) -> accounts.Session | Response:
    """The admin who may do ``name``, checked before a byte of the body is read: else the sign-in
    page, or a refusal (viewers)."""
    s = await current(request)
    if s is None:
        return _to_sign_in(request)
    request.state.session = s
    if not s.admin.can_act:
        await _refuse(request, s, name, "viewer", 403, "Viewers see everything and change nothing: ask an admin.")
    return s


async def form_of(request: Request, s: accounts.Session, name: str, files: formstream.Files | None = None) -> FormData:
    """The form of an action, read from the stream: refused when its token is missing or wrong before
    any file part is read, and when it is larger than FEEDSYNC_WEB_UPLOAD_MAX_MB before it is read whole."""

    async def guard(sent: str | None) -> None:
        if not header and not token_ok(request, sent, s.csrf_token):
            await _refuse(request, s, name, "csrf", 403, EXPIRED)

    header = request.headers.get(CSRF_HEADER)
    if header is not None and not token_ok(request, header, s.csrf_token):
        await _refuse(request, s, name, "csrf", 403, EXPIRED)
    max_mb = get_settings().web_upload_max_mb
    try:
        return await formstream.read(request, guard, limit=max_mb << 20, files=files)
    except formstream.TooLarge:
        message = (
            f"This upload is larger than the {max_mb} MB the console takes at once (FEEDSYNC_WEB_UPLOAD_MAX_MB): "
            "upload fewer or smaller files at a time, or copy large files into the drop folder."
            if files is not None
            else "This form is larger than any the console sends. " + EXPIRED
        )
        await _refuse(request, s, name, "too large", 413, message)
    except formstream.Unreadable:
        await _refuse(request, s, name, "unreadable form", 400, "This form could not be read. " + EXPIRED)
    except ClientDisconnect:
        # Nobody is left to read an answer; the caller removes what the form left behind.
        raise Refused(400, "The form was cut off before it ended: nothing was done. Send it again.") from None


async def signed_out_form(request: Request, guard: formstream.Guard) -> FormData:
    """The sign-in and sign-out forms: small, read whole (up to formstream.FORM_MAX), then ``guard``."""
    try:
        return await formstream.read(request, guard, limit=formstream.FORM_MAX)
    except formstream.TooLarge:
        raise Refused(413, "This form is larger than any the console sends. " + EXPIRED) from None
    except formstream.Unreadable:
        raise Refused(400, "This form could not be read. " + EXPIRED) from None
    except ClientDisconnect:
        raise Refused(400, "The form was cut off before it ended: nothing was done. Send it again.") from None


def action(name: str) -> Callable[[Action], Callable[[Request], Awaitable[Response]]]:
    """A change: admins only, with the session's CSRF token. Refusals are audited too."""

    def wrap(fn: Action) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            s = await acting(request, name)
            if isinstance(s, Response):
                return s
            return await fn(request, s, await form_of(request, s, name))

        return endpoint

    return wrap
