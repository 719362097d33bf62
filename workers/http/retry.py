"""Which answers are tried again, and how long to wait: bounded, with backoff and jitter.

A 429 or 503 that says ``Retry-After`` is waited out exactly (up to ``max_retry_after_s``); other
5xx answers, network errors and pages that do not parse back off exponentially with jitter. After
``max_retries`` the last reason becomes the run's one sentence.
"""

from __future__ import annotations

import email.utils
import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol, TypeVar

import httpx
import structlog
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from workers.http.errors import FetchError

T = TypeVar("T")

log = structlog.get_logger(__name__)


class Limits(Protocol):
    """What a connection's API table says of timeouts, retries and TLS ([connections.api], [connections.workday])."""

    @property
    def max_retries(self) -> int: ...
    @property
    def backoff_s(self) -> float: ...
    @property
    def max_backoff_s(self) -> float: ...
    @property
    def max_retry_after_s(self) -> float: ...
    @property
    def connect_timeout_s(self) -> float: ...
    @property
    def read_timeout_s(self) -> float: ...
    @property
    def ca_bundle(self) -> str | None: ...


class Retry(Exception):
    """An answer worth trying again; ``reason`` is safe to show (a status, an error class). A signal
    to tenacity: it never leaves workers.http (with_retries turns the last one into a FetchError)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.retry_after = reason, retry_after


def retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asks to wait: ``Retry-After`` as seconds or as an HTTP date."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def transport_failure(exc: httpx.TransportError, describe: str, host: str | None) -> Exception:
    """A request that got no answer: tried again, unless the server's certificate failed verification
    (retrying cannot change a certificate)."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return FetchError(
                f"{describe} stopped: the TLS certificate of {host} could not be verified "
                f"({cause.verify_message}); if a proxy or a private CA signs it, set ca_bundle to that CA's PEM file"
            )
        cause = cause.__cause__ or cause.__context__
    # The class says what happened (ConnectTimeout, ReadTimeout, RemoteProtocolError); httpx's own
    # text can quote the URL with its query, so it is left out.
    return Retry(f"network error {type(exc).__name__}")


def with_retries(call: Callable[[], T], api: Limits, describe: str, sleep: Callable[[float], None] = time.sleep) -> T:
    """``call()`` until it returns, raising Retry at most ``max_retries`` times; then FetchError."""
    backoff = wait_exponential_jitter(multiplier=api.backoff_s, max=api.max_backoff_s, jitter=api.backoff_s)

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, Retry) and exc.retry_after is not None:
            if exc.retry_after > api.max_retry_after_s:
                raise FetchError(
                    f"{describe} was answered {exc.reason} with Retry-After {exc.retry_after:g} s, longer than "
                    f"max_retry_after_s ({api.max_retry_after_s:g} s); nothing was imported: run it again later"
                )
            return exc.retry_after
        return float(backoff(state))

    def announce(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait_s = state.next_action.sleep if state.next_action else 0.0
        reason = exc.reason if isinstance(exc, Retry) else type(exc).__name__
        log.warning("api retry", request=describe, reason=reason, attempt=state.attempt_number, wait_s=round(wait_s, 3))

    retrying = Retrying(
        stop=stop_after_attempt(api.max_retries + 1),
        wait=wait,
        retry=retry_if_exception_type(Retry),
        sleep=sleep,
        before_sleep=announce,
        reraise=True,
    )
    try:
        return retrying(call)
    except Retry as exc:
        raise FetchError(
            f"{describe} failed {api.max_retries + 1} times, last with {exc.reason}; the fetch was cut off and "
            "nothing was imported: check the service's status and run it again"
        ) from None
