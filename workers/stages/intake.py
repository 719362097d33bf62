"""Intake: a registered file arrived; queue a run for its connection if it imports on arrival."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import structlog

from schemas.connections import import_connection_from_json
from schemas.messages import FeedArrived
from schemas.states import TriggerType
from workers import store
from workers.connectors import import_kind
from workers.outbox import OutboxBatch
from workers.runs import create_run, live_connection, release
from workers.stages import stage_actor

log = structlog.get_logger(__name__)


@stage_actor(FeedArrived)
def feed_arrived(msg: FeedArrived) -> None:
    """Idempotent by the file's state: a file a run has already claimed queues nothing."""
    outbox = OutboxBatch()
    with store.connect() as conn:
        connection = live_connection(conn, msg.connection)
        if connection is None:
            log.warning("file arrived for a connection that no longer exists", connection=msg.connection)
            return
        f = store.fetch_one(conn, "SELECT status FROM sync.feed_files WHERE id = %s", (msg.file_id,))
        if f is None or f["status"] != "registered":
            return
        config = import_connection_from_json(connection["config"])
        if not connection["enabled"] or config.trigger != "on_arrival":
            log.info("file registered; it waits for the next sync", connection=msg.connection, file_id=msg.file_id)
            return
        missing = _bundle_missing(conn, connection)
        run_id, created = create_run(conn, connection, TriggerType.FILE_DROP, outbox, join_any=True, hold=bool(missing))
        if missing:
            # The run shows in the history as queued, saying what it waits for.
            conn.execute(
                "UPDATE sync.runs SET waiting_for = %s, note = %s WHERE id = %s AND (waiting_for IS NOT NULL OR %s)",
                (missing, f"waiting for the bundle: {', '.join(missing)} not arrived yet", run_id, created),
            )
        elif release(conn, run_id, connection, outbox):
            conn.execute(
                "UPDATE sync.runs SET note = 'bundle complete: every expected file arrived' WHERE id = %s", (run_id,)
            )
        log.info("run queued for dropped file", run_id=run_id, new_run=created, file_id=msg.file_id, waiting=missing)
    outbox.flush()


def _bundle_missing(conn: Any, connection: dict[str, Any]) -> list[str]:
    """For a bundle kind: the expected files that have not arrived (are not registered and waiting)."""
    expected = import_kind(connection["kind"]).expected_files(connection["config"])
    if expected is None:
        return []
    waiting = {
        PurePosixPath(r["original_path"]).name
        for r in store.fetch_all(
            conn,
            "SELECT original_path FROM sync.feed_files WHERE connection_id = %s AND status = 'registered'",
            (connection["id"],),
        )
    }
    return [name for name in expected.values() if name not in waiting]
