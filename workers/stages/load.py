"""Load: the set-based merge of the run's typed staging into the learning store, in one
transaction with the stage's outcome, then queue finalize."""

from __future__ import annotations

from psycopg.types.json import Jsonb

from schemas.messages import LoadRun
from workers import failpoints, store
from workers.connectors import connector_for
from workers.ledger import StageTx, run_stage
from workers.runs import queue_finalize
from workers.stages import stage_actor


@stage_actor(LoadRun)
def load_run(msg: LoadRun) -> None:
    def body(tx: StageTx) -> None:
        run = store.fetch_one(tx.conn, "SELECT * FROM sync.runs WHERE id = %s FOR UPDATE", (msg.run_id,))
        assert run is not None
        counts = connector_for(run["kind"]).load(tx.conn, run)
        failpoints.hit("load.merged")
        tx.conn.execute("UPDATE sync.runs SET counts = counts || %s WHERE id = %s", (Jsonb(counts), msg.run_id))
        tx.counts = counts
        queue_finalize(tx.conn, msg.run_id, tx.outbox)

    run_stage(msg, body)
