"""PostgreSQL access: one psycopg pool per worker process, opened at boot and closed at shutdown.

Every session sets statement_timeout and lock_timeout, so no stage can hang forever on a lock or
a runaway query; those errors are transient (workers.errors) and the stage is retried.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from schemas.settings import Settings, get_settings

# The per-process pool. It is a resource handle, not a cache of data: opened in after_worker_boot
# (workers.bookkeeping) and closed before shutdown; producers use short-lived connections instead.
_pool: ConnectionPool | None = None


#: A shorter statement timeout for the connections opened in this context (the console's requests).
_statement_timeout_ms: ContextVar[int | None] = ContextVar("statement_timeout_ms", default=None)


@contextmanager
def statement_timeout(ms: int) -> Iterator[None]:
    token = _statement_timeout_ms.set(ms)
    try:
        yield
    finally:
        _statement_timeout_ms.reset(token)


def _conninfo_kwargs(settings: Settings, application_name: str) -> dict[str, Any]:
    statement_ms = _statement_timeout_ms.get() or settings.statement_timeout_ms
    return {
        # jit off: our statements are large but short, and compiling them (their cost estimates over
        # a million staged rows turn JIT on) took longer than it saved (benchmarks/RESULTS.md).
        # No parallel query: the stages already run side by side on the cores, and a parallel plan
        # (Gather Merge over sorts) made the run's duplicate check slower, 1.22 s against 0.76 s.
        "options": f"-c statement_timeout={statement_ms} -c lock_timeout={min(statement_ms, settings.lock_timeout_ms)}"
        " -c jit=off -c max_parallel_workers_per_gather=0",
        "application_name": application_name,
        "connect_timeout": settings.database_connect_timeout_s,
    }


def open_pool(settings: Settings | None = None, *, max_size: int = 8) -> ConnectionPool:
    global _pool
    settings = settings or get_settings()
    if _pool is None:
        _pool = ConnectionPool(
            settings.database_url.get_secret_value(),
            min_size=1,
            max_size=max_size,
            kwargs=_conninfo_kwargs(settings, "feedsync-worker"),
            # A pooled connection that died with a PostgreSQL restart is replaced, not handed out.
            check=ConnectionPool.check_connection,
            open=True,
            name="feedsync",
        )
    return _pool


def close_pool() -> None:
    global _pool
    if _pool is not None:
        _pool.close()
        _pool = None


@contextmanager
def connect(*, autocommit: bool = False, application_name: str = "feedsync") -> Iterator[psycopg.Connection[Any]]:
    """A connection from the pool when this process has one, else a fresh one.

    Without autocommit the block is one transaction: committed on success, rolled back on error.
    """
    if _pool is not None:
        # The pool commits at the end of the block, or rolls back if it raised.
        with _pool.connection() as conn:
            conn.autocommit = autocommit
            yield conn
        return
    settings = get_settings()
    with psycopg.connect(
        settings.database_url.get_secret_value(),
        autocommit=autocommit,
        **_conninfo_kwargs(settings, application_name),
    ) as conn:
        yield conn


def fetch_one(conn: psycopg.Connection[Any], query: Any, params: Any = None) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return cur.fetchone()


def fetch_all(conn: psycopg.Connection[Any], query: Any, params: Any = None) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return cur.fetchall()
