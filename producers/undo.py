"""``feedsync undo RUN_ID``: queue a run of type ``undo`` that restores what a run changed
(workers/runs/undo.py does it, in the load stage), or preview it (``--dry-run``) without changing
anything. The CLI and the console call these."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import psycopg
from psycopg import sql

from producers.commands import CommandError
from producers.dlq import admin_identity
from schemas.states import TriggerType
from workers import store
from workers.rows import ConnectionRow, read_run
from workers.runs import undo
from workers.runs.create import create_run, live_connection
from workers.runs.outbox import OutboxBatch


def preview(run_id: int) -> dict[str, Any]:
    """What undoing ``run_id`` would do: counts per table and for people, units and positions, the
    conflicts (rows changed since), and the thresholds it would exceed. Changes nothing."""
    with store.connect() as conn:
        try:
            target = undo.check_undoable(conn, run_id)
        except undo.UndoRefused as exc:
            raise CommandError(str(exc)) from None
        table = sql.Identifier("stage", f"undo_preview_{run_id}_{conn.info.backend_pid}")
        undo.summarize(conn, run_id, table)
        n, sample = undo.conflicts(conn, table)
        undo.skip_conflicting(conn, table)
        result = undo.counts_of(conn, table, target["connection_id"])
        connection = live_connection(conn, target["connection"])
        run = read_run(conn, run_id)
        assert connection is not None and run is not None
        result["exceeds"] = undo.exceeded_thresholds(replace(run, stored_config=connection["config"]), result)
        conn.rollback()  # the preview's table goes with it
    result.update(run_id=run_id, connection=target["connection"], conflicts=n, conflicts_sample=sample)
    return result


def start_undo(run_id: int, *, skip_conflicts: bool = False) -> int:
    """Queue the undo of ``run_id``; refused (CommandError naming the rows) if rows it changed were
    changed since, unless ``skip_conflicts``. The undo run checks again when it loads."""
    p = preview(run_id)
    if p["conflicts"] and not skip_conflicts:
        raise CommandError(undo.refusal(run_id, p["conflicts"], p["conflicts_sample"]))
    outbox = OutboxBatch()
    with store.connect() as conn:
        connection = live_connection(conn, p["connection"])
        if connection is None:
            raise CommandError(f"connection {p['connection']!r} has been deleted")
        try:
            undo_id, _ = create_run(
                conn,
                ConnectionRow.of(connection),
                TriggerType.UNDO,
                outbox,
                undo_of=run_id,
                undo_skip_conflicts=skip_conflicts,
                coalesce=False,
            )
        except psycopg.errors.UniqueViolation:  # sync.runs_one_undo: another undo of it was queued meanwhile
            raise CommandError(f"run {run_id} is being undone (or was) by another undo run") from None
        conn.execute(
            """INSERT INTO sync.run_actions (run_id, action, from_status, reason, done_by)
               SELECT id, 'undo', status, %s, %s FROM sync.runs WHERE id = %s""",
            (f"undone by run {undo_id}", admin_identity(), run_id),
        )
    outbox.flush()
    return undo_id
