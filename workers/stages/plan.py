"""Plan: turn a queued run into work: claim its files, create staging, queue one parse per file.
A connection never has two runs applying changes; a run that finds another active stays queued
and is started by that run's finalize."""

from __future__ import annotations

from schemas.messages import SyncDue
from workers.runs.stage import StageTx, run_stage
from workers.runs.start import try_start
from workers.stages import stage_actor


@stage_actor(SyncDue)
def plan_run(msg: SyncDue) -> None:
    def body(tx: StageTx) -> None:
        state = try_start(tx.conn, msg.run_id, tx.outbox)
        tx.counts = {"started": int(state == "started"), "waiting": int(state == "waiting")}

    run_stage(msg, body)
