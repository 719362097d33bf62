"""``feedsync scheduler``: the periodic duties that need no message to start them.

Today: the outbox sweeper (republishes next-stage messages whose publish after commit did not
happen: a crash between commit and publish, or the broker was down). Several schedulers may run
at once; rows are taken with SKIP LOCKED and duplicates are harmless to idempotent stages.
"""

from __future__ import annotations

import threading

import structlog

from schemas.settings import Settings
from workers import outbox

log = structlog.get_logger(__name__)


def run(settings: Settings, stopping: threading.Event) -> None:
    log.info("scheduler started", sweep_interval_s=settings.outbox_sweep_interval_s)
    while not stopping.wait(settings.outbox_sweep_interval_s):
        try:
            sent = outbox.sweep(settings.outbox_grace_s)
            if sent:
                log.info("outbox sweep republished messages", messages=sent)
        except Exception as exc:
            log.warning("outbox sweep failed; retrying next interval", error=str(exc))
