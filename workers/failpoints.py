"""Named failpoints for fault tests and chaos drills, off unless FEEDSYNC_FAILPOINTS is set.

    FEEDSYNC_FAILPOINTS="load.merged=crash,transform.start@hr-users=raise,parse.chunk=sleep:3"

``name@connection`` limits a point to the runs of one connection (the ledger binds it to the log
context of every stage message).

- ``crash``: the worker process dies at once (os._exit), as with kill -9 or the OOM killer.
- ``raise``: a RuntimeError, as a bug would.
- ``sleep:N``: pause N seconds (to stop a service or kill a process at a known point).

Each point sits where a real failure would hurt most: inside a stage's transaction, after its
writes and before its commit.
"""

from __future__ import annotations

import os
import time

import structlog

log = structlog.get_logger(__name__)

POINTS = ("parse.chunk", "transform.start", "load.merged", "finalize.start")


def _table() -> dict[str, str]:
    spec = os.environ.get("FEEDSYNC_FAILPOINTS", "")
    pairs = (item.split("=", 1) for item in spec.split(",") if "=" in item)
    return {name.strip(): action.strip() for name, action in pairs}


def hit(name: str) -> None:
    table = _table()
    connection = structlog.contextvars.get_contextvars().get("connection")
    action = table.get(f"{name}@{connection}") or table.get(name)
    if not action:
        return
    log.warning("failpoint hit", failpoint=name, action=action)
    if action == "crash":
        os._exit(137)
    if action == "raise":
        raise RuntimeError(f"failpoint {name}: injected failure")
    if action.startswith("sleep:"):
        time.sleep(float(action.split(":", 1)[1]))
