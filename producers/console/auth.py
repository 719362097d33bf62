"""Who is asking, and may they: the session cookie, the CSRF token, roles, and the audit.

Every page needs a session (else a redirect to the sign-in page); every POST needs the session's
CSRF token in its form (a synchronizer token) and, when the browser sends one, an Origin of this
site; every action needs the admin role. Blocking work (PostgreSQL, files) runs in a thread with
the admin's identity set, so the commands record them as the CLI records the shell user.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, TypeVar
from urllib.parse import urlsplit

import anyio
import psycopg
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from producers.console import accounts
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
        return await fn(request, s)

    return endpoint


def same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None  # no header (an older browser, a test client); "null" is a sandboxed page
    return urlsplit(origin).netloc == request.headers.get("host", "")


def csrf_ok(request: Request, form: FormData, expected: str) -> bool:
    sent = form.get("csrf")
    return isinstance(sent, str) and secrets.compare_digest(sent, expected) and same_origin(request)


def action(name: str) -> Callable[[Action], Callable[[Request], Awaitable[Response]]]:
    """A change: admins only, with the session's CSRF token. Refusals are audited too."""

    def wrap(fn: Action) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            s = await current(request)
            if s is None:
                return _to_sign_in(request)
            request.state.session = s
            form = await request.form()
            try:
                return await _checked(request, s, form)
            finally:
                await form.close()  # uploaded files are spooled to temporary files

        async def _checked(request: Request, s: accounts.Session, form: FormData) -> Response:
            target = "/".join(str(v) for v in request.path_params.values()) or None
            if not csrf_ok(request, form, s.csrf_token):
                await blocking(
                    None, accounts.record, s.admin.name, name, target, outcome="refused: csrf", client=client(request)
                )
                raise Refused(403, "This form has expired or did not come from this console. Reload the page.")
            if not s.admin.can_act:
                await blocking(
                    None, accounts.record, s.admin.name, name, target, outcome="refused: viewer", client=client(request)
                )
                raise Refused(403, "Viewers see everything and change nothing: ask an admin.")
            return await fn(request, s, form)

        return endpoint

    return wrap
