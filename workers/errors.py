"""Three kinds of failure, decided in one place.

    Exception
     ├── FeedsyncError
     │    ├── TransientError ........ retried with bounded backoff (also: see TRANSIENT_TYPES)
     │    └── TerminalError ......... never retried; the run fails with str(exc) as its one sentence
     │         └── BadFileError ..... one file is refused; the run goes on with its other files
     └── anything else .............. a bug or a poison message: retried up to max_attempts, then
                                      dead-lettered and archived for replay

Bad rows are not exceptions at all: they are written to sync.row_errors and the stage goes on.
"""

from __future__ import annotations

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
