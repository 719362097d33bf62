"""The load of an undo run (``feedsync undo RUN_ID``): restores every store row the undone run
changed, from the run journal (workers/runs/journal.py), where the row still holds what that run wrote.

It takes the load's place for runs of trigger ``undo`` (workers/stages/load.py) and goes through
the same plan, thresholds and approval as the connection's own loads. Per row the run touched:

- a row it updated (or removed) gets its image from before the run back;
- a row it created is deactivated (people, units, positions) or retired (courses), never deleted;
  a membership, record or statement it created is removed (a removed learning record, skill or
  statement leaves a removal in ``sync.removals``, by trigger, that the next exports send);
- a row changed since by another run, or outside any run, is a conflict: the undo is refused,
  naming the rows, unless it was asked to skip them (they stay as they are now).

The undo is journaled like any load, so it can itself be undone.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from schemas.settings import get_settings
from workers import store
from workers.connectors import import_kind
from workers.connectors.contract import Load, Step
from workers.errors import TerminalError
from workers.rows import RunRow
from workers.runs import journal
from workers.runs.undo_preview import conflicts, counts_of, refusal
from workers.staging import stage_table


class UndoRefused(TerminalError):
    """The run cannot be undone as asked: the sentence says why and what to do."""


def check_undoable(conn: psycopg.Connection[Any], run_id: int, *, by: int | None = None) -> dict[str, Any]:
    """The run to undo, if it may be: a completed, journaled, real run of an import kind, not
    undone already (nor being undone by another run than ``by``). Raises UndoRefused saying why not."""
    row = store.fetch_one(
        conn,
        """SELECT r.id, r.kind, r.status, r.dry_run, r.journaled, r.undone_by, r.connection_id,
                  to_char(r.journal_purged_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS journal_purged_on,
                  r.plan ? 'applied_counts' AS partly_applied,
                  c.name AS connection, c.deleted_at IS NULL AS live,
                  (SELECT u.id FROM sync.runs u WHERE u.undo_of = r.id AND u.id IS DISTINCT FROM %(by)s
                     AND u.status IN ('queued', 'in_progress', 'awaiting_approval') LIMIT 1) AS undoing
           FROM sync.runs r JOIN sync.connections c ON c.id = r.connection_id WHERE r.id = %(run)s""",
        {"run": run_id, "by": by},
    )
    if row is None:
        raise UndoRefused(f"there is no run {run_id}: feedsync history lists the runs and their ids")
    try:
        import_kind(row["kind"])
    except KeyError:
        raise UndoRefused(f"run {run_id} is a {row['kind']} run: only runs of import kinds can be undone") from None
    # A skip_deactivations run whose held deactivations were rejected keeps the part it applied.
    partly = row["status"] == "rejected" and row["partly_applied"]
    if row["status"] not in ("completed", "completed_with_errors") and not partly:
        raise UndoRefused(
            f"run {run_id} is {row['status']}: only completed runs can be undone; " + _instead(run_id, row)
        )
    if row["dry_run"]:
        raise UndoRefused(f"run {run_id} was a dry run: it changed nothing")
    if row["undone_by"] is not None:
        raise UndoRefused(
            f"run {run_id} was undone by run {row['undone_by']}; to have its changes back, undo run {row['undone_by']}"
        )
    if row["undoing"] is not None:
        raise UndoRefused(f"run {row['undoing']} is undoing run {run_id} already: see feedsync run {row['undoing']}")
    if not row["journaled"]:
        raise UndoRefused(
            f"run {run_id} was loaded without the run journal (FEEDSYNC_JOURNAL off, or before it existed): "
            f"it cannot be undone; to put its rows back, import the feed as it was before run {run_id} again"
        )
    if row["journal_purged_on"] is not None:
        raise UndoRefused(
            f"run {run_id}'s journal was removed on {row['journal_purged_on']}, "
            f"FEEDSYNC_JOURNAL_RETENTION_DAYS ({get_settings().journal_retention_days}) after the run: it can no "
            f"longer be undone; to put its rows back, import the feed as it was before run {run_id} again"
        )
    if not row["live"]:
        raise UndoRefused(f"run {run_id}'s connection {row['connection']!r} has been deleted")
    # The journal shows a later change to a row this run created only if the later writer journaled:
    # a load with the journal off may have changed (or written records on) any of them, unseen.
    blind = store.fetch_one(
        conn,
        """SELECT b.id FROM sync.runs b, sync.runs a
           WHERE a.id = %(run)s AND b.id <> a.id AND b.id IS DISTINCT FROM %(by)s
             AND b.plan IS NOT NULL AND NOT b.journaled AND NOT b.dry_run
             AND (b.finished_at IS NULL OR b.finished_at > a.started_at)
           ORDER BY b.id LIMIT 1""",
        {"run": run_id, "by": by},
    )
    if blind is not None:
        raise UndoRefused(
            f"run {run_id} cannot be undone: run {blind['id']}, loaded since, was loaded without the run journal "
            "(FEEDSYNC_JOURNAL off), so changes it made to this run's rows cannot be seen and would be overwritten. "
            f"To put those rows back, import the feed as it was before run {run_id} again, as a new run"
        )
    return row


def _instead(run_id: int, row: dict[str, Any]) -> str:
    """What to do about a run that is not completed, in words for the admin."""
    if row["status"] in ("queued", "in_progress"):
        return "wait for it to end, then undo it"
    if row["status"] == "awaiting_approval":
        return f"to apply none of it, feedsync reject {run_id}"
    if row["status"] == "rejected":
        return "it applied nothing"
    # A failed or cancelled online load may have committed some batches: they stay.
    return f"anything it applied stays: to put those rows back, import the feed as it was before run {run_id} again"


def summarize(conn: psycopg.Connection[Any], undone: int, into: sql.Composable) -> None:
    """The rows of run ``undone`` to restore, into table ``into`` (with a ``skip`` flag)."""
    journal.summarize(conn, undone, into)
    conn.execute(sql.SQL("ALTER TABLE {} ADD COLUMN skip boolean NOT NULL DEFAULT false").format(into))


def prepare(conn: psycopg.Connection[Any], run: RunRow) -> int:
    """The rows to restore, and the conflicts: refused (the run fails naming them) unless the undo
    skips them."""
    assert run.undo_of is not None
    check_undoable(conn, run.undo_of, by=run.id)
    table = stage_table("undo", run.id)
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
    summarize(conn, run.undo_of, table)
    n, sample = conflicts(conn, table)
    if n and not run.undo_skip_conflicts:
        raise UndoRefused(refusal(run.undo_of, n, sample))
    skip_conflicting(conn, table)
    return 0


def skip_conflicting(conn: psycopg.Connection[Any], table: sql.Composable) -> None:
    conn.execute(sql.SQL("UPDATE {} s SET skip = true WHERE cardinality(s.later_runs) > 0 OR s.outside").format(table))


def classify(conn: psycopg.Connection[Any], run: RunRow) -> None:
    return None


def needs_plan(run: RunRow) -> bool:
    return True


def plan(conn: psycopg.Connection[Any], run: RunRow) -> dict[str, Any]:
    table = stage_table("undo", run.id)
    result = counts_of(conn, table, run.connection_id)
    n, sample = conflicts(conn, table)
    result.update(undo_of=run.undo_of, conflicts_skipped=n, conflicts_sample=sample)
    return result


def exceeded_thresholds(run: RunRow, p: dict[str, Any]) -> list[str]:
    """The connection's own thresholds, as its kind reads them."""
    return import_kind(run.kind).exceeded_thresholds(run, p)


def load_steps(conn: psycopg.Connection[Any], run: RunRow, *, whole: bool, batch_rows: int) -> list[Step]:
    return [restore]


def finish(conn: psycopg.Connection[Any], run: RunRow) -> dict[str, int]:
    return {}


def restore(conn: psycopg.Connection[Any], run: RunRow) -> dict[str, int]:
    """Every row of the summary not skipped, table by table (records before what they point at)."""
    assert run.undo_of is not None
    table = stage_table("undo", run.id)
    # The plan's conflicts may be hours old (the undo waited for approval): the rows are locked
    # and looked at again in this transaction, so nothing changed meanwhile is overwritten.
    prepare(conn, run)
    _lock_rows(conn, table)
    prepare(conn, run)
    plan_counts = counts_of(conn, table, run.connection_id)["people"]
    total = {"restored": 0, "removed": 0, "deactivated": 0, "reactivated": 0}
    total["deactivated"], total["reactivated"] = plan_counts["deactivations"], plan_counts["reactivations"]
    present = {r["tbl"] for r in store.fetch_all(conn, sql.SQL("SELECT DISTINCT tbl FROM {}").format(table))}
    journaled = journal.tables()
    if present - journaled.keys():
        # A table the triggers journal but no kind declares: skipping it would undo the run in part.
        raise UndoRefused(
            f"run {run.undo_of} changed lms.{sorted(present - journaled.keys())[0]}, which no kind declares as "
            "journaled; nothing was changed. Declare the table in its kind's TABLES and undo again"
        )
    for tbl in (t for t in journaled if t in present):
        try:
            with conn.transaction():
                restored, removed = _restore_table(conn, table, tbl)
        except psycopg.errors.IntegrityError as exc:
            raise _clash(run.undo_of, tbl, exc) from None
        total["restored"] += restored
        total["removed"] += removed
    skipped = store.fetch_one(conn, sql.SQL("SELECT count(*) AS n FROM {} WHERE skip").format(table))
    total["conflicts_skipped"] = int(skipped["n"]) if skipped else 0
    # Not a status change (workers/runs/lifecycle.py owns those): the undone run only learns its undo.
    conn.execute("""UPDATE sync.runs SET undone_by = %s WHERE id = %s AND undone_by IS NULL""", (run.id, run.undo_of))
    return total


def _clash(run_id: int, tbl: str, exc: psycopg.errors.IntegrityError) -> UndoRefused:
    """A row put back clashes with one written since by someone else (not a conflict the journal
    sees: the other row is not one the run touched). Named by table and constraint, never by value."""
    diag = exc.diag
    what = f"constraint {diag.constraint_name}" if diag.constraint_name else (diag.sqlstate or "a constraint")
    return UndoRefused(
        f"undoing run {run_id} would put back a row of lms.{tbl} that clashes with a row written since "
        f"({what}: for example an e-mail or id another person now has); nothing was changed. Find that row "
        f"(feedsync history lists the runs since run {run_id}), change or deactivate it, and undo again"
    )


def _lock_rows(conn: psycopg.Connection[Any], table: sql.Composable) -> None:
    """Lock the store rows the undo restores, so no writer changes one between the conflict check and
    the restore (a writer that commits before the lock is granted is seen by the check after it)."""
    for tbl in journal.tables():
        match = journal.key_match(conn, tbl, "t", sql.SQL("s.key"))
        conn.execute(
            sql.SQL("SELECT 1 FROM {t} t JOIN {s} s ON s.tbl = %(tbl)s AND {match} FOR UPDATE OF t").format(
                t=sql.Identifier("lms", tbl), s=table, match=match
            ),
            {"tbl": tbl},
        )


def _restore_table(conn: psycopg.Connection[Any], summary: sql.Composable, tbl: str) -> tuple[int, int]:
    target = sql.Identifier("lms", tbl)
    match = journal.key_match(conn, tbl, "t", sql.SQL("s.key"))
    declared = journal.tables()[tbl]
    keys = set(declared.key)
    cols = journal.writable_columns(conn, tbl)
    params = {"tbl": tbl}
    mine = sql.SQL("s.tbl = %(tbl)s AND NOT s.skip")
    if declared.created == "deactivate":
        gone = sql.SQL(
            "UPDATE {t} t SET active = false, deactivated_at = coalesce(t.deactivated_at, clock_timestamp()), "
            "updated_at = clock_timestamp() FROM {s} s WHERE {mine} AND s.first_op = 'I' AND {match} AND t.active"
        )
    elif declared.created == "retire":
        gone = sql.SQL(
            "UPDATE {t} t SET status = 'retired', retired_at = coalesce(t.retired_at, clock_timestamp()), "
            "updated_at = clock_timestamp() FROM {s} s WHERE {mine} AND s.first_op = 'I' AND {match} "
            "AND t.status <> 'retired'"
        )
    else:
        gone = sql.SQL("DELETE FROM {t} t USING {s} s WHERE {mine} AND s.first_op = 'I' AND {match}")
    removed = conn.execute(gone.format(t=target, s=summary, mine=mine, match=match), params).rowcount
    # Rows that existed before the run: their image back, in place or (removed by the run) again.
    source = sql.SQL("{s} s CROSS JOIN LATERAL jsonb_populate_record(NULL::{t}, s.before) b").format(
        s=summary, t=target
    )
    updatable = [c for c in cols if c not in keys]

    def value(c: str) -> sql.Composable:
        if c == "updated_at" and declared.exported_by_change:
            return sql.SQL("clock_timestamp()")
        return sql.SQL("b.{}").format(sql.Identifier(c))

    restored = (
        0
        if not updatable
        else conn.execute(
            sql.SQL("UPDATE {t} t SET {sets} FROM {source} WHERE {mine} AND s.first_op <> 'I' AND {match}").format(
                t=target,
                sets=sql.SQL(", ").join(
                    sql.SQL("{c} = {v}").format(c=sql.Identifier(c), v=value(c)) for c in updatable
                ),
                source=source,
                mine=mine,
                match=match,
            ),
            params,
        ).rowcount
    )
    restored += conn.execute(
        sql.SQL(
            """INSERT INTO {t} ({cols}) OVERRIDING SYSTEM VALUE
               SELECT {vals} FROM {source} WHERE {mine} AND s.first_op <> 'I'
                 AND NOT EXISTS (SELECT 1 FROM {t} t WHERE {match})"""
        ).format(
            t=target,
            cols=sql.SQL(", ").join(sql.Identifier(c) for c in cols),
            vals=sql.SQL(", ").join(value(c) for c in cols),
            source=source,
            mine=mine,
            match=match,
        ),
        params,
    ).rowcount
    return restored, removed


class UndoLoad(Load):
    """An undo run's load: the journal's rows instead of a kind's staging."""

    prepare = staticmethod(prepare)
    classify = staticmethod(classify)
    needs_plan = staticmethod(needs_plan)
    plan = staticmethod(plan)
    exceeded_thresholds = staticmethod(exceeded_thresholds)
    load_steps = staticmethod(load_steps)
    finish = staticmethod(finish)


LOAD = UndoLoad()
