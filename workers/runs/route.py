"""The stage graph, declared: which stage may follow which, and the one way a stage sends the next.

    plan ──► fetch ──► parse ──► transform ═══► load ──► finalize
      │                  ▲  (a message per chunk)   ▲ (fan-in: the last finished chunk, from
      │                  │                          │  transform, or from parse when it had none)
      ├──────────────────┘                          │
      ├──► export ──► finalize                      │
      └─────────────────────────────────────────────┘ (a run with no new files)
    fetch ──► finalize (an incremental round that found no change)

``NEXT`` is the table; ``send(frm, to, …)`` refuses an edge it does not hold, so a stage cannot
start another the graph does not name. Re-entries by an admin (an approved load, a dead letter's
replay) are not edges: they resend a stage's own message (producers/commands.py, producers/dlq.py).
After finalize the connection's next queued run starts (``start.start_next``).
"""

from __future__ import annotations

from typing import Any, Final

import psycopg

from schemas.messages import ExportRun, FetchRun, FinalizeRun, LoadRun, Message, ParseFile, TransformChunk
from workers import store
from workers.runs.outbox import OutboxBatch

# "plan" is the run's start (workers/runs/start.py); the others are the stages' actors.
NEXT: Final[dict[str, frozenset[str]]] = {
    "plan": frozenset({"fetch", "parse", "export", "load"}),
    "fetch": frozenset({"parse", "finalize"}),  # finalize: an incremental round that found no change
    "parse": frozenset({"transform", "load"}),  # load: the fan-in, when a file's last chunk had no rows
    "transform": frozenset({"load"}),
    "load": frozenset({"finalize"}),
    "export": frozenset({"finalize"}),
    "finalize": frozenset(),
}
MESSAGES: Final[dict[str, type[Message]]] = {
    m.STAGE: m for m in (FetchRun, ParseFile, TransformChunk, LoadRun, ExportRun, FinalizeRun) if m.STAGE
}


def send(conn: psycopg.Connection[Any], outbox: OutboxBatch, frm: str, to: str, run_id: int, **part: int) -> None:
    """Queue stage ``to`` of a run from stage ``frm``, in the caller's transaction (published after
    its commit). Its dedupe key is the stage and part, so a stage that runs twice sends it once."""
    if to not in NEXT.get(frm, frozenset()):
        raise ValueError(f"the stage graph has no edge {frm} -> {to} (workers/runs/route.py NEXT)")
    msg = MESSAGES[to].model_validate({"run_id": run_id, **part})
    key = ":".join([to, str(run_id), *(str(v) for v in part.values())])
    outbox.add(conn, msg, key)


def advance_if_ready(conn: psycopg.Connection[Any], run_id: int, outbox: OutboxBatch, frm: str = "transform") -> bool:
    """Fan-in: counts distinct finished chunk rows under a row lock on the run; the last finisher
    queues the load. Safe to call from every parse and transform completion.

    NO KEY UPDATE, not UPDATE: a stage has already taken KEY SHARE on the run's row (the foreign
    keys of the rows it wrote), and two stages each upgrading to UPDATE deadlocked (seen in the 1M
    bench, each costing a retry); NO KEY UPDATE still serializes the finishers."""
    conn.execute("SELECT 1 FROM sync.runs WHERE id = %s FOR NO KEY UPDATE", (run_id,))
    files = store.fetch_one(
        conn,
        """SELECT count(*) FILTER (WHERE status = 'pending') AS pending,
                  coalesce(sum(chunks) FILTER (WHERE status = 'parsed'), 0) AS chunks
           FROM sync.run_files WHERE run_id = %s""",
        (run_id,),
    )
    assert files is not None
    if files["pending"]:
        return False
    done = store.fetch_one(
        conn,
        "SELECT count(*) AS n FROM sync.stage_runs WHERE run_id = %s AND stage = 'transform' AND status = 'succeeded'",
        (run_id,),
    )
    assert done is not None
    if done["n"] < files["chunks"]:
        return False
    send(conn, outbox, frm, "load", run_id)
    return True
