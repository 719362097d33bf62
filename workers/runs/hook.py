"""The one hook through which the stage ledger (Dramatiq middleware, which knows only whether a
message ran) reaches the run: whether a run still takes messages, and what a stage's terminal
failure or dead letter does to its run.
"""

from __future__ import annotations

from typing import Any

import psycopg
import structlog

from schemas.states import FINISHED_RUN_STATUSES, RunStatus
from workers import notify, store
from workers.errors import safe_text
from workers.runs import lifecycle
from workers.runs.outbox import OutboxBatch
from workers.runs.start import start_next

log = structlog.get_logger(__name__)


def refuses(conn: psycopg.Connection[Any], run_id: int) -> str | None:
    """Why a stage message of this run must not run, or None. A cancelled or finished run takes no
    more; a failed run's other stages go on (they cannot reach the load without the failed one),
    so replaying just the dead-lettered message completes the run."""
    run = store.fetch_one(conn, "SELECT status FROM sync.runs WHERE id = %s", (run_id,))
    if run is None:
        return None
    if run["status"] == RunStatus.CANCELLED:
        return "run cancelled"
    if run["status"] in FINISHED_RUN_STATUSES - {RunStatus.FAILED}:
        return "run already finished"
    return None


def stage_failed(conn: psycopg.Connection[Any], run_id: int, error: str, outbox: OutboxBatch) -> bool:
    """Move a run that is still going to failed. Guarded, so a finished run is never rewritten.
    A failed run has ended like any other: the connection's next queued run starts (flush
    ``outbox`` after the commit), or it would wait behind the failed one for ever."""
    connection_id = lifecycle.fail(conn, run_id, error)
    if connection_id is None:
        return False
    start_next(conn, connection_id, outbox)
    return True


def after_failure(run_id: int) -> None:
    """A run a stage failure ended sends its connection's warning, as finalize does for the others;
    once the failure has committed, and never a reason for the message to fail again."""
    try:
        notify.run_finished(run_id)
    except Exception as exc:
        log.error("could not send the warning of a failed run", error=safe_text(exc))
