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
from workers.runs import undo, undo_preview
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
        n, sample = undo_preview.conflicts(conn, table)
        undo.skip_conflicting(conn, table)
        result = undo_preview.counts_of(conn, table, target["connection_id"])
        connection = live_connection(conn, target["connection"])
        run = read_run(conn, run_id)
        assert connection is not None and run is not None
        result["exceeds"] = undo.exceeded_thresholds(replace(run, stored_config=connection["config"]), result)
        conn.rollback()  # the preview's table goes with it
    result.update(run_id=run_id, connection=target["connection"], conflicts=n, conflicts_sample=sample)
    return result


#: The store's tables in the admin's words (people, units and positions have lines of their own).
_NOUNS = {
    "courses": "courses",
    "learner_progress": "learning records",
    "user_skills": "people's skills",
    "course_skills": "courses' skills",
    "group_members": "group memberships",
    "assignments": "assignments",
    "xapi_statements": "xAPI statements",
}


def preview_lines(p: dict[str, Any], *, skip_hint: str = "refused unless --skip-conflicts") -> list[str]:
    """The preview in words, line by line: the CLI (``feedsync undo --dry-run``) and the console's
    undo page print these same lines. Each person, unit or position is counted once: restored,
    deactivated or reactivated."""
    lines = [f"undoing run {p['run_id']} ({p['connection']}) would (dry run, nothing changed):"]
    for part in ("people", "units", "positions"):
        e = p[part]
        done = [
            f"{verb} {e[key]}"
            for verb, key in (("restore", "restores"), ("deactivate", "deactivations"), ("reactivate", "reactivations"))
            if e[key]
        ]
        if done:
            lines.append(f"  {part}: " + ", ".join(done))
    for tbl, c in p["by_table"].items():
        if tbl in undo_preview.PARTS:
            continue
        noun = _NOUNS.get(tbl, f"lms.{tbl} rows")
        verb = "retired" if tbl == "courses" else "removed"
        lines.append(f"  {noun}: {c['restored']} restored, {c['created']} the run created {verb}")
    if len(lines) == 1:
        lines.append("  change nothing: the run changed no row")
    if p["conflicts"]:
        lines.append(f"conflicts: {p['conflicts']} row(s) changed since ({skip_hint}):")
        lines += [f"  {c}" for c in p["conflicts_sample"]]
        if p["conflicts"] > len(p["conflicts_sample"]):
            lines.append(f"  ... and {p['conflicts'] - len(p['conflicts_sample'])} more")
    lines += [f"would wait for approval: {why}" for why in p["exceeds"]]
    return lines


def start_undo(run_id: int, *, skip_conflicts: bool = False, skip_how: str = undo_preview.CLI_SKIP) -> int:
    """Queue the undo of ``run_id``; refused (CommandError naming the rows) if rows it changed were
    changed since, unless ``skip_conflicts`` (the refusal says how to skip them as ``skip_how``).
    The undo run checks again when it loads."""
    p = preview(run_id)
    if p["conflicts"] and not skip_conflicts:
        raise CommandError(undo_preview.refusal(run_id, p["conflicts"], p["conflicts_sample"], skip_how))
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
