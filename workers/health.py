"""Readiness: can this process do its work now? PostgreSQL and RabbitMQ answer, and the store folder
takes a file. Served as ``/readyz`` by each worker group's metrics server and by ``feedsync web``
(``/healthz`` only says the process is alive, and checks nothing else, so a database outage makes
pods unready, never restarted).

Each check answers in a few seconds at most and says what failed in one line without secrets: the
URL's password is never in it (psycopg's and pika's errors name the host and port only).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable

import pika
import psycopg

from schemas.settings import Settings, get_settings
from workers.broker import rabbitmq_url
from workers.errors import safe_text

#: Each dependency gets this long to answer.
CHECK_TIMEOUT_S = 3


def check_postgresql(settings: Settings) -> None:
    with psycopg.connect(
        settings.database_url.get_secret_value(),
        connect_timeout=CHECK_TIMEOUT_S,
        application_name="feedsync-readyz",
        options=f"-c statement_timeout={CHECK_TIMEOUT_S * 1000}",
    ) as conn:
        conn.execute("SELECT 1")


def check_rabbitmq(settings: Settings) -> None:
    if settings.is_stub:  # one process, no broker to reach
        return
    params = pika.URLParameters(rabbitmq_url(settings))
    params.connection_attempts, params.retry_delay = 1, 0
    params.socket_timeout = params.blocked_connection_timeout = CHECK_TIMEOUT_S
    pika.BlockingConnection(params).close()


def check_store(settings: Settings) -> None:
    """The store folder takes a file (a read-only or full volume fails here). It is made when missing,
    as intake would make it with the first file."""
    folder = settings.store_dir
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(f"the store folder {folder} cannot be made ({exc.strerror})") from None
    fd, path = tempfile.mkstemp(prefix=".readyz-", dir=folder)
    try:
        os.write(fd, b"ok")
    finally:
        os.close(fd)
        os.unlink(path)


CHECKS: dict[str, Callable[[Settings], None]] = {
    "postgresql": check_postgresql,
    "rabbitmq": check_rabbitmq,
    "store": check_store,
}


def readiness(settings: Settings | None = None) -> tuple[bool, dict[str, str]]:
    """(ready, {check: "ok" or why not}) for the /readyz body."""
    settings = settings or get_settings()
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            check(settings)
        except Exception as exc:
            results[name] = safe_text(exc)
        else:
            results[name] = "ok"
    return all(v == "ok" for v in results.values()), results
