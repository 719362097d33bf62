"""``feedsync scheduler``: the periodic duties that need no message to start them.

- Schedules: each due slot of each enabled schedule fires exactly once, even with several
  schedulers running (the slot is claimed by a guarded UPDATE in the same transaction as its run).
  Time is the database's (``sync.clock()``), so a skewed host clock changes nothing. Slots missed
  while no scheduler ran give one catch-up run, and its note says how many were missed.
- Feed alarms (producers/alarms.py): late, missing or strange feeds, failed and held runs, dead
  letters, evaluated once per interval whichever of the schedulers gets there first.
- The notifier (producers/notifier.py), a thread of its own: alarm digests and run warnings due
  again. Nothing on this thread waits for a webhook or an SMTP server, so a slot fires on time
  however slow they are.
- The outbox sweeper: republishes next-stage messages whose publish after commit did not happen
  (a crash between commit and publish, or the broker was down). Rows are taken with SKIP LOCKED
  and duplicates are harmless to idempotent stages.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any

import structlog
from psycopg import sql

from producers import alarms, notifier, registry
from producers.scheduling import CURRENT_SLOT, SLOTS_BETWEEN
from schemas.settings import Settings, get_settings
from schemas.states import AccessMode, TriggerType
from workers import store
from workers.errors import safe_text
from workers.metrics_server import serve_in_thread
from workers.rows import ConnectionRow
from workers.runs import outbox, record, retention
from workers.runs.create import create_run
from workers.runs.outbox import OutboxBatch

log = structlog.get_logger(__name__)

_DUE = sql.SQL("""
    SELECT s.connection_id, c.name, c.kind, c.config, c.enabled, s.every_hours, s.access, s.last_slot, s.armed_at,
           {slot} AS slot
    FROM sync.schedules s JOIN sync.connections c ON c.id = s.connection_id
    WHERE s.enabled AND c.enabled AND c.deleted_at IS NULL AND sync.clock() >= s.start_at
      -- An API's daily quota used up parks the connection until it resets (workers/sources/linkedin.py).
      AND (c.parked_until IS NULL OR c.parked_until <= sync.clock())
""").format(slot=CURRENT_SLOT)


def tick(at: datetime | None = None) -> list[int]:
    """Fire every due slot once; returns the runs created. ``at`` sets the database clock for this
    call (tests); the production scheduler never passes it."""
    created = []
    # Autocommit, so each slot below is a transaction of its own: claimed, run queued, committed,
    # and only then published.
    with store.connect(autocommit=True) as conn:
        if at is not None:
            conn.execute("SELECT set_config('feedsync.clock', %s, false)", (at.isoformat(),))
        try:
            due = [r for r in store.fetch_all(conn, _DUE) if r["slot"] > (r["last_slot"] or r["armed_at"])]
            for r in due:
                # Take what is in the drop dir first, so a deployment without a watcher misses nothing.
                registry.scan(get_settings(), only=r["name"], announce=False)
                run_id = _fire(conn, r)
                if run_id is not None:
                    created.append(run_id)
        finally:
            if at is not None:
                conn.execute("SELECT set_config('feedsync.clock', '', false)")
    return created


def _fire(conn: Any, r: dict[str, Any]) -> int | None:
    ob = OutboxBatch()
    with conn.transaction():
        claimed = store.fetch_one(
            conn,
            sql.SQL(
                """UPDATE sync.schedules SET last_slot = %(slot)s
                   WHERE connection_id = %(c)s AND coalesce(last_slot, armed_at) < %(slot)s
                   RETURNING {slots} AS slots"""
            ).format(slots=SLOTS_BETWEEN),
            {"slot": r["slot"], "c": r["connection_id"], "prev": r["last_slot"]},
        )
        if claimed is None:
            return None  # another scheduler fired this slot first
        connection = ConnectionRow.of({**r, "id": r["connection_id"]})
        run_id, new = create_run(conn, connection, TriggerType.SCHEDULED, ob, access=AccessMode(r["access"]))
        missed = max(0, int(claimed["slots"]) - 1)
        note = f"scheduled slot {r['slot']:%Y-%m-%d %H:%M}Z"
        if missed:
            note = f"catch-up run: {missed + 1} slots were due while no scheduler ran, one run for all ({note})"
        record.note(conn, run_id, note, keep=True)
    ob.flush()
    log.info("schedule fired", connection=r["name"], run_id=run_id, missed=missed, new_run=new)
    return run_id


def run(settings: Settings, stopping: threading.Event) -> None:
    log.info("scheduler started", sweep_interval_s=settings.outbox_sweep_interval_s)
    # /metrics, /healthz and /readyz when FEEDSYNC_SCHEDULER_METRICS_BIND says where.
    server = serve_in_thread(settings.scheduler_metrics_bind) if settings.scheduler_metrics_bind else None
    wake = threading.Event()
    sender = threading.Thread(target=notifier.loop, args=(settings, stopping, wake), name="feedsync-notifier")
    sender.start()
    try:
        _loop(settings, stopping, wake)
    finally:
        stopping.set()
        wake.set()
        sender.join()
        if server is not None:
            server.shutdown()
            server.server_close()


def _loop(settings: Settings, stopping: threading.Event, wake: threading.Event) -> None:
    next_retention = next_alarms = 0.0
    while not stopping.wait(settings.outbox_sweep_interval_s):
        if time.monotonic() >= next_retention:
            next_retention = time.monotonic() + settings.retention_sweep_interval_s
            try:
                retention.sweep()
            except Exception as exc:
                log.warning("retention sweep failed; retrying next interval", error=safe_text(exc))
        try:
            tick()
        except Exception as exc:
            log.warning("schedule tick failed; retrying next interval", error=safe_text(exc))
        if time.monotonic() >= next_alarms:
            next_alarms = time.monotonic() + settings.alarm_interval_s
            try:
                evaluated = alarms.evaluate()
                if evaluated is not None and evaluated.notified:
                    wake.set()  # the digests go now, not at the notifier's next interval
            except Exception as exc:
                log.warning("alarm evaluation failed; retrying next interval", error=safe_text(exc))
        try:
            sent = outbox.sweep(settings.outbox_grace_s)
            if sent:
                log.info("outbox sweep republished messages", messages=sent)
        except Exception as exc:
            log.warning("outbox sweep failed; retrying next interval", error=safe_text(exc))
