"""The admin console's ASGI app: sign-in and out, the audit page, and the areas' routes."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlsplit

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from producers.console import accounts, alerts, apicheck, connections, deadletters, probes, runs, setup, throttle
from producers.console.auth import (
    COOKIE,
    EXPIRED,
    SIGNIN_COOKIE,
    DatabaseUnavailable,
    Refused,
    blocking,
    client,
    current,
    db_threads,
    page,
    signed_out_form,
    threaded,
    token_ok,
)
from producers.console.auth import set_cookie as put_cookie
from producers.console.views import HERE, message, render
from schemas.settings import get_settings

#: Password verifications at once (argon2id at 64 MiB each); the others wait their turn, holding no thread.
VERIFICATIONS = 2


def _next(value: str | None) -> str:
    """Where to go after signing in: a path of this site only, never another host."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value or urlsplit(value).netloc:
        return "/connections"
    return value


async def sign_in_form(request: Request) -> Response:
    token = secrets.token_urlsafe(32)
    response = render(
        request, "sign_in.html", title="Sign in", csrf=token, next=_next(request.query_params.get("next"))
    )
    put_cookie(request, response, SIGNIN_COOKIE, token, max_age=3600)
    return response


async def sign_in(request: Request) -> Response:
    expected = request.cookies.get(SIGNIN_COOKIE, "")

    async def guard(sent: str | None) -> None:
        if not expected or not token_ok(request, sent, expected):
            raise Refused(403, EXPIRED)

    form = await signed_out_form(request, guard)
    name, password = str(form.get("name", "")).strip(), str(form.get("password", ""))
    settings = get_settings()
    who = client(request)

    def refused(status: int, error: str) -> Response:
        """The sign-in page again, with why (the name is not echoed back)."""
        return render(
            request,
            "sign_in.html",
            status,
            title="Sign in",
            csrf=expected,
            next=_next(str(form.get("next", ""))),
            error=error,
        )

    limits = {"max_failures": settings.web_signin_max_failures, "window_s": settings.web_signin_window_s}
    attempt = await blocking(None, throttle.reserve, name, who, **limits)
    if attempt is None:
        await blocking(
            None, accounts.record, None, "sign_in_throttled", name[: throttle.NAME_CHARS], outcome="refused", client=who
        )
        return refused(429, "Too many failed sign-ins. Wait a few minutes and try again.")
    # argon2id takes 64 MiB a verification: a few at a time, whatever the number of requests.
    admin = await threaded(None, request.app.state.verify_limiter, accounts.authenticate, name, password)
    if admin is None:
        await blocking(None, throttle.failed, attempt, **limits)
        return refused(401, "That name and password do not match an admin.")
    token = await blocking(None, accounts.open_session, admin, settings.web_session_hours)
    await blocking(None, throttle.succeeded, attempt, admin.name)
    response = RedirectResponse(_next(str(form.get("next", ""))), status_code=303)
    put_cookie(request, response, COOKIE, token, max_age=int(settings.web_session_hours * 3600))
    response.delete_cookie(SIGNIN_COOKIE, path="/")
    return response


async def sign_out(request: Request) -> Response:
    s = await current(request)
    if s is not None:
        token = s.csrf_token

        async def guard(sent: str | None) -> None:
            if not token_ok(request, sent, token):
                raise Refused(403, EXPIRED)

        await signed_out_form(request, guard)
        await blocking(None, accounts.close_session, request.cookies[COOKIE])
        await blocking(None, accounts.record, s.admin.name, "sign_out", client=client(request))
    response = RedirectResponse("/sign-in", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@page
async def audit(request: Request, s: accounts.Session) -> Response:
    """The audit, console and CLI alike, filtered by who, what and when (?who=&action=&from=&to=,
    days as YYYY-MM-DD in UTC, ``to`` inclusive)."""
    from producers import audit as trail

    q = request.query_params
    who, what = (q.get("who") or "").strip() or None, (q.get("action") or "").strip() or None
    since, until, problem = _days(q.get("from"), q.get("to"))
    rows = await blocking(s, trail.entries, limit=500, who=who, action=what, since=since, until=until)
    return render(
        request,
        "audit.html",
        400 if problem else 200,
        title="Audit",
        rows=rows,
        actions=await blocking(s, trail.actions),
        selected={"who": who or "", "action": what or "", "from": q.get("from") or "", "to": q.get("to") or ""},
        error=problem,
    )


def _days(start: str | None, end: str | None) -> tuple[datetime | None, datetime | None, str | None]:
    """The audit page's from and to days as a half-open range of UTC instants, or what is wrong."""
    bounds: list[datetime | None] = []
    for name, text, extra in (("from", start, 0), ("to", end, 1)):
        if not text:
            bounds.append(None)
            continue
        try:
            day = date.fromisoformat(text)
        except ValueError:
            return None, None, f"{name}: give a day as YYYY-MM-DD"
        bounds.append(datetime.combine(day, time(), UTC) + timedelta(days=extra))
    return bounds[0], bounds[1], None


async def home(request: Request) -> Response:
    return RedirectResponse("/connections", status_code=303)


async def refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refused)
    return message(request, "Refused", exc.message, exc.status)


async def unreachable(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DatabaseUnavailable)
    return message(
        request,
        "Database unreachable",
        "The console cannot reach its database: PostgreSQL refused the connection or did not answer in "
        "time. Check that PostgreSQL is running and reachable at FEEDSYNC_DATABASE_URL, then reload this page.",
        503,
    )


async def security_headers(request: Request, call_next: RequestResponseEndpoint) -> Response:
    # Every database call of this request runs on the app's own threads (auth.blocking).
    db_threads.set(request.app.state.db_threads)
    response = await call_next(request)
    # No framing (clickjacking), no referrer leaving the console (with "no-referrer" a browser sends
    # "Origin: null" on its own forms), scripts and styles only from here.
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault(
        "Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self'"
    )
    if request.url.scheme == "https":
        # Served over TLS (directly, or behind a trusted proxy): the browser never tries plain HTTP
        # again, where the session cookie (Secure) would be missing and a sign-in form could be forged.
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


def create_app() -> Starlette:
    routes = [
        Route("/", home),
        Route("/sign-in", sign_in_form, methods=["GET"]),
        Route("/sign-in", sign_in, methods=["POST"]),
        Route("/sign-out", sign_out, methods=["POST"]),
        Route("/audit", audit),
        *setup.routes,
        *connections.routes,
        *apicheck.routes,
        *runs.routes,
        *deadletters.routes,
        *alerts.routes,
        *probes.routes,
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={Refused: refused, DatabaseUnavailable: unreachable},
        middleware=[Middleware(BaseHTTPMiddleware, dispatch=security_headers)],
    )
    app.state.verify_limiter = anyio.CapacityLimiter(VERIFICATIONS)
    # Apart from the default threads, which serve static files: a frozen database cannot take those.
    app.state.db_threads = anyio.CapacityLimiter(get_settings().web_db_threads)
    return app
