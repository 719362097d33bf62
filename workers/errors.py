"""Three kinds of failure, decided in one place.

    Exception
     ├── FeedsyncError
     │    ├── TransientError ........ retried with bounded backoff (also: see TRANSIENT_TYPES)
     │    └── TerminalError ......... never retried; the run fails with str(exc) as its one sentence
     │         └── BadFileError ..... one file is refused; the run goes on with its other files
     └── anything else .............. a bug or a poison message: retried up to max_attempts, then
                                      dead-lettered and archived for replay

Bad rows are not exceptions at all: they are written to sync.row_errors and the stage goes on.

What an exception says is told in one place too: ``safe_text`` (one line) and ``safe_traceback``
are what logs, stored stage errors, dead letters and warnings carry. A database error's own text
quotes the values that broke it (``Key (email_key)=(ann@example.com) already exists``), so only its
SQLSTATE and the names of its constraint, table and column are kept.
"""

from __future__ import annotations

import re
import traceback
from enum import StrEnum

import psycopg
import psycopg.errors

try:  # pika and dramatiq are always installed, but keep the import failure local and explicit
    import pika.exceptions as _pika_exc

    _PIKA: tuple[type[BaseException], ...] = (_pika_exc.AMQPError,)
except ImportError:  # pragma: no cover
    _PIKA = ()
import dramatiq.errors


class FeedsyncError(Exception):
    """Base of the errors feedsync raises on purpose."""


class TransientError(FeedsyncError):
    """Worth retrying: the same work may succeed in a moment."""


class TerminalError(FeedsyncError):
    """Retrying cannot help; the message is a sentence an admin can act on."""


class BadFileError(TerminalError):
    """A feed file that cannot be imported as a whole: names the file and says how to fix it."""

    def __init__(self, file: str, problem: str, fix: str) -> None:
        self.file, self.problem, self.fix = file, problem, fix
        super().__init__(f"{file}: {problem}. {fix}")


class Kind(StrEnum):
    TRANSIENT = "transient"
    TERMINAL = "terminal"
    POISON = "poison"


TRANSIENT_TYPES: tuple[type[BaseException], ...] = (
    TransientError,
    psycopg.OperationalError,  # connection refused or lost, admin shutdown, server restarting
    psycopg.errors.LockNotAvailable,  # lock_timeout
    psycopg.errors.QueryCanceled,  # statement_timeout
    psycopg.errors.SerializationFailure,
    psycopg.errors.DeadlockDetected,
    dramatiq.errors.BrokerConnectionError,
    ConnectionError,
    TimeoutError,
    *_PIKA,
)


def classify(exc: BaseException) -> Kind:
    if isinstance(exc, TerminalError):
        return Kind.TERMINAL
    if isinstance(exc, TRANSIENT_TYPES):
        return Kind.TRANSIENT
    return Kind.POISON


def should_retry(retries: int, exc: BaseException, max_attempts: int) -> bool:
    """Dramatiq's retry_when: bounded for everything but terminal errors, which never retry."""
    return classify(exc) is not Kind.TERMINAL and retries + 1 < max_attempts


# SQLSTATE classes whose primary message names only objects, never values: connection (08),
# rollback (40), syntax or access rule (42), resources (53, 54), object state and locks (55),
# operator intervention (57), system (58). Data (22) and integrity (23) errors quote the row.
_PRIMARY_IS_SAFE = frozenset({"08", "40", "42", "53", "54", "55", "57", "58"})
# Python's own messages quote the values they choke on (KeyError('ann@example.com'), int('x')).
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_EMAIL = re.compile(r"[^\s@'\"()<>,;]+@[^\s@'\"()<>,;]+")
_MAX_CHARS = 300


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else ""


def _database_error(exc: psycopg.Error) -> str:
    if exc.sqlstate is None:  # raised by psycopg itself (connection failed, bad call): no row data
        return _first_line(str(exc))[:_MAX_CHARS]
    diag = exc.diag
    where = [
        f"{label} {name}"
        for label, name in (
            ("table", ".".join(n for n in (diag.schema_name, diag.table_name) if n) or None),
            ("column", diag.column_name),
            ("constraint", diag.constraint_name),
            ("type", diag.datatype_name),
        )
        if name
    ]
    primary = diag.message_primary if exc.sqlstate[:2] in _PRIMARY_IS_SAFE else None
    return ", ".join([f"SQLSTATE {exc.sqlstate}", *where, *([primary] if primary else [])])


def _message(exc: BaseException) -> str:
    if isinstance(exc, FeedsyncError):  # our own sentences, written never to carry row values
        return _first_line(str(exc))
    if isinstance(exc, psycopg.Error):
        return _database_error(exc)
    return _EMAIL.sub("…", _QUOTED.sub("'…'", _first_line(str(exc))))[:_MAX_CHARS]


def safe_text(exc: BaseException) -> str:
    """One line about ``exc`` for logs, stored errors, dead letters and warnings: never a row value.
    A terminal error is its own sentence; anything else is prefixed by its type."""
    message = _message(exc)
    if isinstance(exc, TerminalError):
        return message
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def safe_traceback(exc: BaseException, limit: int | None = 30) -> str:
    """Python's traceback of ``exc`` and the exceptions chained to it, each ending in its safe_text
    line instead of its own message: where a bug happened stays visible, the values do not."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    parts: list[str] = []
    oldest_first = chain[::-1]
    for i, error in enumerate(oldest_first):
        if i:
            parts.append(
                "\nThe above exception was the direct cause of the following exception:\n\n"
                if error.__cause__ is oldest_first[i - 1]
                else "\nDuring handling of the above exception, another exception occurred:\n\n"
            )
        parts.append("Traceback (most recent call last):\n")
        parts.extend(traceback.format_tb(error.__traceback__, limit=limit))
        name = type(error).__module__ + "." + type(error).__qualname__
        parts.append(f"{name.removeprefix('builtins.')}: {_message(error)}\n")
    return "".join(parts)
