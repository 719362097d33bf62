"""The error an API fetch ends with when it cannot finish."""

from __future__ import annotations

from workers.errors import TerminalError


class FetchError(TerminalError):
    """A fetch cut off mid-way, or refused: one sentence naming the connection, the request and what
    to do. It never carries a token, a secret or a record value, only paths, statuses and the
    vendor's error code."""


def error_code(text: object) -> str:
    """A vendor's error code as it may be shown: an identifier. Anything else (a description) could
    quote the request's input, so it is never repeated."""
    code = str(text or "")
    return code if code.replace("_", "").replace(".", "").isalnum() and len(code) <= 64 else "unknown"
