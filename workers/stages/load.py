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

A connection with ``on_threshold = "skip_deactivations"`` whose plan exceeds only what its
deactivations exceed applies the rest at once and holds only the deactivations (the step
``apply_deactivations`` and what follows it): approving the run applies them as its approved load.

A kind that changes people (``ASSIGNS_GROUPS``) has one step more, the last: ``assign`` evaluates
the group rules again for the people its load changed, so groups follow the people.

Every transaction a load opens says which run it is (workers/runs/journal.py), so the store's triggers
journal its changes and the run can be undone. An undo run (trigger ``undo``) loads through
workers/runs/undo.py instead of its kind's steps, with the same plan, thresholds and approval.
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
from schemas.states import AccessMode, RunStatus, TriggerType
from workers import failpoints, rules, store
from workers.connectors import import_kind
from workers.connectors.contract import ImportKind, Load, Step
from workers.rows import RunRow, read_run
from workers.runs import journal, lifecycle, record, route, undo
from workers.runs.gate import enter_run
from workers.runs.stage import StageTx, run_stage
from workers.stages import stage_actor

log = structlog.get_logger(__name__)


#: The step of people and person-holding kinds that deactivates; with ``skip_deactivations`` it and
#: the steps after it (but the run's finish) wait for approval.
DEACTIVATE = "apply_deactivations"
#: Batch numbers of the approved part of a ``skip_deactivations`` run, after the first part's.
_REST_BATCHES = 100_000


def loader(run: RunRow) -> Load:
    return undo.LOAD if run.trigger is TriggerType.UNDO else import_kind(run.kind)


@stage_actor(LoadRun)
def load_run(msg: LoadRun) -> None:
    decision, run = _decide(msg)
    if decision == "skip" or run is None:
        return
    connector = loader(run)
    if decision == "dry_run":
        run_stage(msg, lambda tx: _close(tx, msg, {"dry_run": 1}))
    elif decision == "hold":
        run_stage(msg, lambda tx: _hold(tx, msg))
    elif run.access is AccessMode.EXCLUSIVE:

        def body(tx: StageTx) -> None:
            journal.begin(tx.conn, run)
            tx.conn.execute("SELECT set_config('work_mem', %s, true)", (get_settings().load_work_mem,))
            steps = _phase(_steps(connector, tx.conn, run, whole=True), decision)
            counts = _sum(step(tx.conn, run) for step in steps)
            failpoints.hit("load.merged")
            _end(tx, msg, run, decision, counts)

        run_stage(msg, body)
    else:
        offset = _REST_BATCHES if decision == "rest" else 0
        _apply_online(msg, run, connector, decision, offset)

        def final(tx: StageTx) -> None:
            journal.begin(tx.conn, run)
            rows = store.fetch_all(
                tx.conn,
                "SELECT counts FROM sync.load_batches WHERE run_id = %s AND batch_no >= %s",
                (msg.run_id, offset),
            )
            counts = _sum(r["counts"] for r in rows)
            if decision != "rest":  # the run's finish belongs to its first part
                counts = _sum([counts, connector.finish(tx.conn, run)])
            failpoints.hit("load.merged")
            _end(tx, msg, run, decision, counts)

        run_stage(msg, final)


def _decide(msg: LoadRun) -> tuple[str, RunRow | None]:
    """Prepare and plan once per run (kept on the run, so a redelivery decides the same way)."""
    with store.connect() as conn:
        run = read_run(conn, msg.run_id, lock="UPDATE")
        assert run is not None
        if run.status is not RunStatus.IN_PROGRESS:
            return "skip", None
        connector = loader(run)
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
            plan.update(_rows_seen(conn, run.id))
            # Decided once: every transaction of this load journals, or none does.
            journaled = get_settings().journal and not run.dry_run
            record.set_plan(conn, msg.run_id, plan, journaled=journaled)
            run = replace(run, plan=plan, journaled=journaled)
        assert run.plan is not None
        if run.dry_run:
            return "dry_run", run
        if msg.approved:
            return ("rest" if run.plan.get("held_deactivations") else "apply"), run
        if run.plan.get("population") is not None:
            reasons = connector.exceeded_thresholds(run, run.plan)
            if reasons:
                partial = _holds_only_deactivations(run, connector, run.plan)
                held = {**run.plan, "held_because": reasons, "held_deactivations": partial}
                record.set_plan(conn, msg.run_id, held)
                return ("partial" if partial else "hold"), replace(run, plan=held)
        return "apply", run


def _rows_seen(conn: psycopg.Connection[Any], run_id: int) -> dict[str, int]:
    """Rows read and rows rejected so far (for max_reject_share), counted as finalize counts them."""
    row = store.fetch_one(
        conn,
        """SELECT (SELECT coalesce(sum(rows_read), 0) FROM sync.run_files WHERE run_id = %(r)s) AS read,
                  (SELECT count(DISTINCT (file_id, line)) FROM sync.row_errors WHERE run_id = %(r)s AND rejected)
                    AS rejected""",
        {"r": run_id},
    )
    assert row is not None
    return {"rows_read": int(row["read"]), "rows_rejected": int(row["rejected"])}


def _holds_only_deactivations(run: RunRow, connector: Load, plan: dict[str, Any]) -> bool:
    """``skip_deactivations`` applies: the plan would pass its thresholds without its deactivations,
    and every deactivation is the deactivation step's (a mapped state deactivates while updating)."""
    if run.trigger is TriggerType.UNDO or getattr(run.config, "on_threshold", "hold") != "skip_deactivations":
        return False
    if plan.get("state_deactivations"):
        return False
    return not connector.exceeded_thresholds(run, _without_deactivations(plan))


def _without_deactivations(plan: dict[str, Any]) -> dict[str, Any]:
    out = {**plan, "deactivations": 0}
    for k, v in plan.items():
        if isinstance(v, dict) and "deactivations" in v:
            out[k] = {**v, "deactivations": 0}
    return out


def _phase(steps: list[Step], decision: str) -> list[Step]:
    """The steps of this part of the load: all of them, all but the deactivations ("partial"), or
    the deactivations and what follows them but the finish ("rest", once approved)."""
    names = [_step_name(s) for s in steps]
    if decision == "partial":
        return [s for s, n in zip(steps, names, strict=True) if n != DEACTIVATE]
    if decision == "rest":
        first = names.index(DEACTIVATE) if DEACTIVATE in names else len(steps)
        return [s for s, n in list(zip(steps, names, strict=True))[first:] if n != "finish"]
    return steps


def _steps(connector: Load, conn: psycopg.Connection[Any], run: RunRow, *, whole: bool) -> list[Step]:
    steps = list(connector.load_steps(conn, run, whole=whole, batch_rows=get_settings().load_batch_rows))
    if isinstance(connector, ImportKind) and connector.ASSIGNS_GROUPS:
        # Last, after the deactivations: a deactivated person leaves their groups. An undo is no
        # ImportKind: it gives memberships back from the journal instead.
        steps.append(assign)
    return steps


def assign(conn: psycopg.Connection[Any], run: RunRow) -> dict[str, int]:
    """The assign step: every active group's rule evaluated again for the people the load changed
    (each change in sync.membership_changes, journaled as the load's other changes). A step like
    the kind's, so a redelivered load does not evaluate it twice: an online load claims it in
    sync.load_batches, an exclusive one commits it with the stage's outcome."""
    return rules.evaluate(conn, run_id=run.id, people=import_kind(run.kind).changed_people(run))


def _apply_online(msg: LoadRun, run: RunRow, connector: Load, decision: str, offset: int) -> None:
    with store.connect() as conn:
        steps = _phase(_steps(connector, conn, run, whole=False), decision)
    for batch_no, step in enumerate(steps, start=offset):
        with store.connect() as conn:
            if enter_run(conn, msg.run_id) == "cancelled":
                return  # an admin cancelled the run: no further batch
            claimed = conn.execute(
                "INSERT INTO sync.load_batches (run_id, batch_no, phase) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                (msg.run_id, batch_no, _step_name(step)),
            ).rowcount
            if not claimed:
                continue  # committed by an earlier delivery of this load
            journal.begin(conn, run)
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


def _end(tx: StageTx, msg: LoadRun, run: RunRow, decision: str, counts: dict[str, int]) -> None:
    """The part of the load done: the run closes, or (its deactivations held) waits for approval."""
    assert run.plan is not None
    if decision == "partial":
        record.add_to_plan(tx.conn, msg.run_id, "applied_counts", counts)
        _hold(tx, msg)
        tx.counts = {**counts, "awaiting_approval": 1}
        return
    if decision == "rest":
        counts = _sum([run.plan.get("applied_counts", {}), counts])
    _close(tx, msg, counts)


def _close(tx: StageTx, msg: LoadRun, counts: dict[str, int]) -> None:
    # People who arrived already inactive (users) were inserted: neither created nor unchanged.
    arrived = counts.pop("arrived_inactive", 0)
    if "valid" in counts:
        counts["unchanged"] = counts.pop("valid") - counts.get("created", 0) - counts.get("updated", 0) - arrived
    record.add_counts(tx.conn, msg.run_id, counts)
    tx.counts = counts
    route.send(tx.conn, tx.outbox, "load", "finalize", msg.run_id)


def _hold(tx: StageTx, msg: LoadRun) -> None:
    lifecycle.hold(tx.conn, msg.run_id)
    tx.counts = {"awaiting_approval": 1}
    log.warning("run exceeds a safety threshold; waiting for approval (feedsync approve / reject)")


def _step_name(step: Step) -> str:
    return str(getattr(step, "__name__", None) or getattr(getattr(step, "func", None), "__name__", "batch"))
