"""Intake: a registered file arrived; queue a run for its connection if it imports on arrival."""

from __future__ import annotations

import structlog

from schemas.messages import FeedArrived
from schemas.states import TriggerType
from workers import store
from workers.rows import read_connection
from workers.runs import bundles
from workers.runs.create import create_run, lock_connection
from workers.runs.outbox import OutboxBatch
from workers.stages import stage_actor

log = structlog.get_logger(__name__)


@stage_actor(FeedArrived)
def feed_arrived(msg: FeedArrived) -> None:
    """Idempotent by the file's state: a file a run has already claimed queues nothing."""
    outbox = OutboxBatch()
    with store.connect() as conn:
        connection = read_connection(conn, msg.connection)
        if connection is None:
            log.warning("file arrived for a connection that no longer exists", connection=msg.connection)
            return
        # Under the connection's lock: a run that claimed the file meanwhile (the files of one upload
        # arrive together, and the first one's run claims them all) is seen, and no empty run queued.
        lock_connection(conn, connection.id)
        f = store.fetch_one(conn, "SELECT status FROM sync.feed_files WHERE id = %s", (msg.file_id,))
        if f is None or f["status"] != "registered":
            return
        if not connection.enabled or connection.config.trigger != "on_arrival":
            log.info("file registered; it waits for the next sync", connection=msg.connection, file_id=msg.file_id)
            return
        missing = bundles.missing_files(conn, connection)
        run_id, created = create_run(conn, connection, TriggerType.FILE_DROP, outbox, join_any=True, hold=bool(missing))
        bundles.wait_or_release(conn, run_id, connection, missing, outbox, created=created)
        log.info("run queued for dropped file", run_id=run_id, new_run=created, file_id=msg.file_id, waiting=missing)
    outbox.flush()
