"""structlog set-up: JSON when not on a TTY, console rendering on one; stdlib logs (dramatiq, pika)
go through the same processors so every line has the same shape.

No line carries an exception's own text: tracebacks end in workers.errors.safe_text, so a
database error that quotes a row (an e-mail in a duplicate key) never reaches the log."""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

from workers.errors import safe_text, safe_traceback


def _safe_exception(exc_info: Any) -> str:
    return safe_traceback(exc_info[1]) if exc_info and exc_info[1] is not None else ""


def _redact_exception_values(logger: Any, name: str, event: structlog.types.EventDict) -> structlog.types.EventDict:
    """An exception passed as a field (``error=exc``) is logged as its safe text."""
    for key, value in event.items():
        if isinstance(value, BaseException):
            event[key] = safe_text(value)
    return event


_SHARED: list[structlog.types.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    # exc_info (ours, and dramatiq's "Failed to process message") becomes a safe traceback here,
    # before any renderer could format the exception itself.
    structlog.processors.ExceptionRenderer(_safe_exception),
    _redact_exception_values,
]


def log_handler(stream: TextIO, *, as_json: bool) -> logging.Handler:
    """The handler every log line goes through (tests attach one to read what would be written)."""
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer(colors=False)
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=_SHARED,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    return handler


#: A logger caches its configuration on first use (fast in a worker). The test process turns it off:
#: structlog's capture_logs cannot see a logger an earlier test has already cached.
CACHE_LOGGERS = True


def configure_logging(level: str = "INFO", *, force_json: bool | None = None) -> None:
    as_json = (not sys.stderr.isatty()) if force_json is None else force_json
    structlog.configure(
        processors=[
            *_SHARED,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=CACHE_LOGGERS,
    )
    root = logging.getLogger()
    root.handlers[:] = [log_handler(sys.stderr, as_json=as_json)]
    root.setLevel(level.upper())
    # pika logs every reconnect attempt at INFO with the full parameters object; warnings are enough.
    logging.getLogger("pika").setLevel(logging.WARNING)
