"""Named failpoints for fault tests and chaos drills, off unless FEEDSYNC_FAILPOINTS is set.

    FEEDSYNC_FAILPOINTS="load.merged=crash,transform.start@hr-users=raise,parse.chunk=sleep:3"

``name@connection`` limits a point to the runs of one connection (the ledger binds it to the log
context of every stage message).

- ``crash``: the worker process dies at once (os._exit), as with kill -9 or the OOM killer.
- ``raise``: a RuntimeError, as a bug would.
- ``transient``: a TransientError (what a lost connection or a lock timeout becomes).
- ``terminal``: a TerminalError (a permanent problem: the run fails at once).
- ``sleep:N``: pause N seconds (a chaos drill's slow stage).
- ``wait:PATH``: a gate. Each hit appends a line to ``PATH.reached`` (so the N-th hit, counted
  across processes, is line N) and blocks until ``PATH`` exists and lets N through: an empty
  ``PATH`` lets every hit through, a number K the first K (at most ``WAIT_LIMIT_S``). A test
  awaits the hit it wants, does what it needed to do at that point (stop a service, kill a
  process, start a second run), then opens the gate, so no test depends on a process being slow
  or fast enough (``tests/gates.py``).

``action*K`` fires on the first K hits in this process only, e.g. ``transient*2``; ``action#N`` on
the N-th hit in this process only, e.g. ``parse.chunk=transient#3`` (a parse that commits two chunks,
fails in its third and resumes after the second).

Each point sits where a real failure would hurt most: inside a stage's transaction, after its
writes and before its commit.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import structlog

from workers.errors import TerminalError, TransientError

log = structlog.get_logger(__name__)

# Hits per point in this process, for ``action*K``; test-only state, empty unless a point fires.
_hits: dict[str, int] = {}
_hits_lock = threading.Lock()

POINTS = ("parse.chunk", "transform.start", "load.merged", "finalize.start", "sftp.landed", "alarms.evaluated")

# A gate nobody opens fails the stage after this long instead of holding a worker for ever.
WAIT_LIMIT_S = 300.0


def reset() -> None:
    with _hits_lock:
        _hits.clear()


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
    if "*" in action:
        action, limit = action.split("*", 1)
        with _hits_lock:
            _hits[name] = _hits.get(name, 0) + 1
            if _hits[name] > int(limit):
                return
    elif "#" in action:
        action, nth = action.split("#", 1)
        with _hits_lock:
            _hits[name] = _hits.get(name, 0) + 1
            if _hits[name] != int(nth):
                return
    log.warning("failpoint hit", failpoint=name, action=action)
    if action == "crash":
        os._exit(137)
    if action == "raise":
        raise RuntimeError(f"failpoint {name}: injected failure")
    if action == "transient":
        raise TransientError(f"failpoint {name}: injected transient failure")
    if action == "terminal":
        raise TerminalError(f"failpoint {name}: injected permanent failure")
    if action.startswith("sleep:"):
        time.sleep(float(action.split(":", 1)[1]))
    if action.startswith("wait:"):
        _wait_for_gate(name, Path(action.split(":", 1)[1]))


def _wait_for_gate(name: str, gate: Path) -> None:
    reached = gate.with_name(gate.name + ".reached")
    with _hits_lock, reached.open("a") as f:
        f.write(name + "\n")
    with _hits_lock:
        hit_no = len(reached.read_text().splitlines())
    deadline = time.monotonic() + WAIT_LIMIT_S
    while _let_through(gate) < hit_no:
        if time.monotonic() > deadline:
            raise RuntimeError(f"failpoint {name}: gate {gate} was not opened within {WAIT_LIMIT_S:.0f} s")
        time.sleep(0.02)


def _let_through(gate: Path) -> float:
    try:
        text = gate.read_text().strip()
    except FileNotFoundError:
        return 0
    return float(text) if text else float("inf")
