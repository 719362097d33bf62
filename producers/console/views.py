"""Rendering: the Jinja2 environment (autoescaped) and the helpers templates use."""

from __future__ import annotations

from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.templating import Jinja2Templates

from producers.output import printable
from producers.queries import count_columns

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))


def _when(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return f"{value:%Y-%m-%d %H:%M:%S}Z" if isinstance(value, datetime) else str(value)


def _duration(seconds: Any) -> str:
    if seconds is None:
        return ""
    s = float(seconds)
    if s < 60:
        return f"{s:.1f} s"
    return f"{int(s // 60)} min {int(s % 60)} s"


templates.env.filters["when"] = _when
templates.env.filters["count_columns"] = count_columns
templates.env.filters["duration"] = _duration
# Names and messages come from files and HR systems: control and bidi characters shown as escapes.
templates.env.filters["safe_text"] = printable

FINISHED = ("completed", "completed_with_errors", "failed", "rejected", "cancelled")
templates.env.globals["FINISHED"] = FINISHED


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
    session = getattr(request.state, "session", None)
    attention = getattr(request.state, "attention", None)
    return templates.TemplateResponse(
        request,
        name,
        {"session": session, "attention": attention, **context},
        status_code=status_code,
        headers={"Cache-Control": "no-store"},
    )


def message(request: Request, title: str, text: str, status_code: int) -> Response:
    if getattr(request.state, "session", None) is None:
        body = f"<!doctype html><title>{escape(title)}</title><p>{escape(text)}</p>"
        return HTMLResponse(body, status_code=status_code)
    return render(request, "message.html", status_code, title=title, text=text)
