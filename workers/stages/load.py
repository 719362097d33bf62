"""Load: merge the run's typed staging into the learning store.

First the plan (what would be created, updated, deactivated, moved), computed without writing to
lms and kept on the run. Then one of:

- dry run: nothing is written; the run completes with its plan;
- a safety threshold exceeded (full feeds): the run waits in ``awaiting_approval``; an approved
  load is a unit of work of its own (``LoadRun(approved=True)``);
- ``exclusive`` access: every change in one transaction with the stage's outcome, so readers see all
  of it or none of it;
- ``online`` access: bucket ranges of FEEDSYNC_LOAD_BATCH_ROWS committed one by one, each with its
  row in sync.load_batches, so no lock is held for long and a redelivered load resumes.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import psycopg
import structlog
from psycopg.types.json import Jsonb

from schemas.messages import LoadRun
from schemas.settings import get_settings
from schemas.states import AccessMode, RunStatus
from workers import failpoints, lifecycle, store
from workers.connectors import import_kind
from workers.connectors.contract import ImportKind, Step
from workers.ledger import StageTx, run_stage
from workers.rows import RunRow, read_run
from workers.runs import enter_run, queue_finalize
from workers.stages import stage_actor

log = structlog.get_logger(__name__)


@stage_actor(LoadRun)
def load_run(msg: LoadRun) -> None:
    decision, run = _decide(msg)
    if decision == "skip" or run is None:
        return
    connector = import_kind(run.kind)
    if decision == "dry_run":
        run_stage(msg, lambda tx: _close(tx, msg, {"dry_run": 1}))
    elif decision == "hold":
        run_stage(msg, lambda tx: _hold(tx, msg))
    elif run.access is AccessMode.EXCLUSIVE:

        def body(tx: StageTx) -> None:
            tx.conn.execute("SELECT set_config('work_mem', %s, true)", (get_settings().load_work_mem,))
            counts = _sum(step(tx.conn, run) for step in _steps(connector, tx.conn, run, whole=True))
            failpoints.hit("load.merged")
            _close(tx, msg, counts)

        run_stage(msg, body)
    else:
        _apply_online(msg, run, connector)

        def final(tx: StageTx) -> None:
            rows = store.fetch_all(tx.conn, "SELECT counts FROM sync.load_batches WHERE run_id = %s", (msg.run_id,))
            counts = _sum(r["counts"] for r in rows)
            counts = _sum([counts, connector.finish(tx.conn, run)])
            failpoints.hit("load.merged")
            _close(tx, msg, counts)

        run_stage(msg, final)


def _decide(msg: LoadRun) -> tuple[str, RunRow | None]:
    """Prepare and plan once per run (kept on the run, so a redelivery decides the same way)."""
    with store.connect() as conn:
        run = read_run(conn, msg.run_id, lock="UPDATE")
        assert run is not None
        if run.status is not RunStatus.IN_PROGRESS:
            return "skip", None
        connector = import_kind(run.kind)
        # Hash joins over a million staged rows fit in memory instead of spilling sorts to disk.
        conn.execute("SELECT set_config('work_mem', %s, true)", (get_settings().load_work_mem,))
        if run.plan is None:
            t0 = time.perf_counter()
            duplicates = connector.prepare(conn, run)
            t1 = time.perf_counter()
            connector.classify(conn, run)
            t2 = time.perf_counter()
            plan = connector.plan(conn, run) if connector.needs_plan(run) else {}
            log.info(
                "load planned",
                prepare_s=round(t1 - t0, 3),
                classify_s=round(t2 - t1, 3),
                plan_s=round(time.perf_counter() - t2, 3),
            )
            plan["duplicates"] = duplicates
            conn.execute("UPDATE sync.runs SET plan = %s WHERE id = %s", (Jsonb(plan), msg.run_id))
            run = replace(run, plan=plan)
        assert run.plan is not None
        if run.dry_run:
            return "dry_run", run
        if not msg.approved and run.plan.get("population") is not None:
            reasons = connector.exceeded_thresholds(run, run.plan)
            if reasons:
                held = {**run.plan, "held_because": reasons}
                conn.execute("UPDATE sync.runs SET plan = %s WHERE id = %s", (Jsonb(held), msg.run_id))
                return "hold", replace(run, plan=held)
        return "apply", run


def _steps(connector: ImportKind, conn: psycopg.Connection[Any], run: RunRow, *, whole: bool) -> list[Step]:
    return list(connector.load_steps(conn, run, whole=whole, batch_rows=get_settings().load_batch_rows))


def _apply_online(msg: LoadRun, run: RunRow, connector: ImportKind) -> None:
    with store.connect() as conn:
        steps = _steps(connector, conn, run, whole=False)
    for batch_no, step in enumerate(steps):
        with store.connect() as conn:
            if enter_run(conn, msg.run_id) == "cancelled":
                return  # an admin cancelled the run: no further batch
            claimed = conn.execute(
                "INSERT INTO sync.load_batches (run_id, batch_no, phase) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                (msg.run_id, batch_no, _step_name(step)),
            ).rowcount
            if not claimed:
                continue  # committed by an earlier delivery of this load
            conn.execute("SELECT set_config('work_mem', %s, true)", (get_settings().load_work_mem,))
            t0 = time.perf_counter()
            counts = step(conn, run)
            log.info("load batch applied", batch_no=batch_no, seconds=round(time.perf_counter() - t0, 3), **counts)
            failpoints.hit("load.batch")
            conn.execute(
                "UPDATE sync.load_batches SET counts = %s WHERE run_id = %s AND batch_no = %s",
                (Jsonb(counts), msg.run_id, batch_no),
            )


def _sum(parts: Any) -> dict[str, int]:
    total: dict[str, int] = {}
    for part in parts:
        for k, v in part.items():
            total[k] = total.get(k, 0) + int(v)
    return total


def _close(tx: StageTx, msg: LoadRun, counts: dict[str, int]) -> None:
    if "valid" in counts:
        counts["unchanged"] = counts.pop("valid") - counts.get("created", 0) - counts.get("updated", 0)
    tx.conn.execute("UPDATE sync.runs SET counts = counts || %s WHERE id = %s", (Jsonb(counts), msg.run_id))
    tx.counts = counts
    queue_finalize(tx.conn, msg.run_id, tx.outbox)


def _hold(tx: StageTx, msg: LoadRun) -> None:
    lifecycle.hold(tx.conn, msg.run_id)
    tx.counts = {"awaiting_approval": 1}
    log.warning("run exceeds a safety threshold; waiting for approval (feedsync approve / reject)")


def _step_name(step: Step) -> str:
    return str(getattr(step, "__name__", None) or getattr(getattr(step, "func", None), "__name__", "batch"))
