"""A stage's one transaction: what a stage body gets (``StageTx``) and ``run_stage``, which enters
the run under its gate, locks the stage's row, runs the body and marks the stage succeeded with
the body's effects and outbox messages, then publishes them. A message of a cancelled run does
nothing, and whatever staging an earlier part of it left behind goes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
import structlog
from psycopg.types.json import Jsonb

from schemas.messages import Message
from schemas.states import RunStatus, StageStatus
from workers import store
from workers.errors import TransientError, safe_text
from workers.runs.gate import drop_stage_tables, enter_run
from workers.runs.outbox import OutboxBatch

log = structlog.get_logger(__name__)


@dataclass
class StageTx:
    """What a stage body gets: the open transaction, its outbox, and counts for the stage row."""

    conn: psycopg.Connection[Any]
    outbox: OutboxBatch
    counts: dict[str, int] = field(default_factory=dict)
    after_success: list[Callable[[StageTx], object]] = field(default_factory=list)  # still in the transaction
    after_commit: list[Callable[[], object]] = field(default_factory=list)  # once the transaction is durable


def run_stage(msg: Message, body: Callable[[StageTx], None]) -> bool:
    """Run ``body`` as the stage's one transaction. Returns False if the stage was already done."""
    assert msg.STAGE is not None and msg.run is not None
    with store.connect() as conn:
        if enter_run(conn, msg.run) == RunStatus.CANCELLED:
            # A late message of a cancelled run: nothing of it is applied, and whatever staging an
            # earlier part of it left behind goes.
            conn.execute(
                """UPDATE sync.stage_runs SET status = 'failed', error = 'run cancelled',
                          finished_at = clock_timestamp()
                   WHERE run_id = %s AND stage = %s AND part = %s AND status IN ('running', 'retrying')""",
                (msg.run, msg.STAGE, msg.stage_part()),
            )
            drop_stage_tables(conn, msg.run)
            log.info("run cancelled; message ignored")
            return False
        row = store.fetch_one(
            conn,
            """SELECT id, status FROM sync.stage_runs WHERE run_id = %s AND stage = %s AND part = %s
               FOR UPDATE""",
            (msg.run, msg.STAGE, msg.stage_part()),
        )
        if row is None:
            raise TransientError(f"stage {msg.STAGE} of run {msg.run} is not registered yet")
        if row["status"] == StageStatus.SUCCEEDED:
            log.info("stage already succeeded; duplicate message ignored")
            return False
        tx = StageTx(conn, OutboxBatch())
        body(tx)
        conn.execute(
            """UPDATE sync.stage_runs SET status = 'succeeded', finished_at = clock_timestamp(),
                      counts = %s, error = NULL WHERE id = %s""",
            (Jsonb(tx.counts), row["id"]),
        )
        for callback in tx.after_success:
            callback(tx)
    tx.outbox.flush()
    for later in tx.after_commit:
        # The stage has committed: a failure here is logged, never a reason to run the stage again.
        try:
            later()
        except Exception as exc:
            log.error("a follow-up of a committed stage failed", error=safe_text(exc))
    return True
