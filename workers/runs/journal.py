"""The run journal: what each load changed, row by row, so a run can be undone (``feedsync undo``).

Written by statement-level triggers on the store's tables (schemas/sql/021_run_journal.sql), in
bulk and in the same transaction as the change, whenever the transaction says which run it is
(``begin``). The load's stage module calls ``begin`` at the start of every transaction it opens,
so no kind's SQL knows about the journal. Inserts into a table keyed by a drawn id are kept as
ranges of ids (046_journal_ranges.sql); ``sync.journal_rows`` reads them back a row per row.

Read here: per row a run touched, its first operation and image before the run, its last
operation and the hash of the row after it, and the later runs that changed it since.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
import structlog
from psycopg import sql

from schemas.settings import get_settings
from workers import store
from workers.connectors import declared_tables
from workers.connectors.contract import Table
from workers.rows import RunRow

log = structlog.get_logger(__name__)


def tables() -> dict[str, Table]:
    """The journaled tables (lms.<name>) as the kinds declare them, in the order undo applies them:
    memberships and records before the people, units and courses they point at."""
    return {t.name: t for t in declared_tables() if t.journaled}


def begin(conn: psycopg.Connection[Any], run: RunRow) -> None:
    """This transaction's changes to the store are the run's (journaled if the run is)."""
    if run.journaled:
        conn.execute("SELECT set_config('feedsync.run_id', %s, true)", (str(run.id),))


def key_match(conn: psycopg.Connection[Any], table: str, row: str, key: sql.Composable) -> sql.Composed:
    """SQL: row ``row`` of lms.``table`` has the key in the text[] ``key`` (an SQL expression),
    compared in the column's own type so the primary key's index is used."""
    # The type by its schema and name, so it is an identifier of the statement rather than text.
    types = {
        r["attname"]: sql.Identifier(r["nspname"], r["typname"])
        for r in store.fetch_all(
            conn,
            """SELECT a.attname, n.nspname, t.typname FROM pg_attribute a
               JOIN pg_type t ON t.oid = a.atttypid JOIN pg_namespace n ON n.oid = t.typnamespace
               WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped""",
            (f"lms.{table}",),
        )
    }
    return sql.SQL(" AND ").join(
        sql.SQL("{row}.{col} = ({key})[{i}]::{type}").format(
            row=sql.Identifier(row),
            col=sql.Identifier(col),
            key=key,
            i=sql.Literal(i + 1),
            type=types[col],
        )
        for i, col in enumerate(tables()[table].key)
    )


def writable_columns(conn: psycopg.Connection[Any], table: str) -> list[str]:
    """lms.``table``'s columns that can be written (not generated), in table order."""
    return [
        r["attname"]
        for r in store.fetch_all(
            conn,
            """SELECT a.attname FROM pg_attribute a
               WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
               ORDER BY a.attnum""",
            (f"lms.{table}",),
        )
    ]


def summarize(conn: psycopg.Connection[Any], run_id: int, into: sql.Composable) -> None:
    """One row per store row run ``run_id`` changed, into the new table ``into``: its first operation
    and the image before the run, the later runs that changed it since and were not undone since
    (``later_runs``), and whether its last journaled change is what the row holds now (``outside``
    is true when not: changed by something that is not a journaled run).

    An undo's restores cancel the run they undo: a row run 2 changed and undo of run 2 gave back
    holds what run 1 wrote, so undoing run 1 finds no conflict there (sync.journal_net_runs)."""
    conn.execute(
        sql.SQL(
            """CREATE UNLOGGED TABLE {into} AS
               WITH mine AS MATERIALIZED (
                   SELECT tbl, key, (array_agg(op ORDER BY seq))[1] AS first_op,
                          (array_agg(op ORDER BY seq DESC))[1] AS last_op,
                          (array_agg(before ORDER BY seq))[1] AS before,
                          (array_agg(after_hash ORDER BY seq DESC))[1] AS after_hash, max(seq) AS last_seq
                   FROM sync.journal_rows WHERE run_id = %(run)s GROUP BY tbl, key),
               -- One pass over the journal written since the run (a range of seq), not a look-up per row.
               later AS (
                   SELECT j.tbl, j.key, array_agg(j.run_id ORDER BY j.seq) AS runs,
                          array_agg(r.undo_of ORDER BY j.seq) AS undo_ofs,
                          (array_agg(j.op ORDER BY j.seq DESC))[1] AS last_op,
                          (array_agg(j.after_hash ORDER BY j.seq DESC))[1] AS after_hash
                   FROM sync.journal_rows j JOIN mine m ON m.tbl = j.tbl AND m.key = j.key AND j.seq > m.last_seq
                   LEFT JOIN sync.runs r ON r.id = j.run_id
                   WHERE j.seq > (SELECT min(last_seq) FROM mine) AND j.run_id <> %(run)s
                   GROUP BY j.tbl, j.key)
               SELECT m.tbl, m.key, m.first_op, m.before,
                      -- What the row should hold now: the last journaled change to it, by anyone.
                      coalesce(l.last_op, m.last_op) AS last_op,
                      CASE WHEN l.runs IS NULL THEN m.after_hash ELSE l.after_hash END AS after_hash,
                      coalesce(sync.journal_net_runs(l.runs, l.undo_ofs), '{{}}') AS later_runs, false AS outside
               FROM mine m LEFT JOIN later l USING (tbl, key)
               -- Created and removed again by the run itself: nothing of it to undo.
               WHERE NOT (m.first_op = 'I' AND m.last_op = 'D')"""
        ).format(into=into),
        {"run": run_id},
    )
    # Changed since by something that is not a journaled run: the row no longer holds what its last
    # journaled change wrote (its hash differs), or a removed row is back, or a written one is gone.
    for table in tables():
        match = key_match(conn, table, "t", sql.SQL("s.key"))
        conn.execute(
            sql.SQL(
                """UPDATE {into} s SET outside = true
                   WHERE s.tbl = %(tbl)s AND cardinality(s.later_runs) = 0 AND CASE s.last_op
                     WHEN 'U' THEN NOT EXISTS (SELECT 1 FROM {table} t WHERE {match} AND md5(t::text) = s.after_hash)
                     WHEN 'D' THEN EXISTS (SELECT 1 FROM {table} t WHERE {match})
                     ELSE NOT EXISTS (SELECT 1 FROM {table} t WHERE {match}) END"""
            ).format(into=into, table=sql.Identifier("lms", table), match=match),
            {"tbl": table},
        )


def purge(*, at: datetime | None = None) -> list[int]:
    """Remove the journal of every run that ended FEEDSYNC_JOURNAL_RETENTION_DAYS ago or more (on
    the database clock; ``at`` sets it, for tests); returns those runs' ids. A run still being
    undone keeps its journal until the undo ends. Run by run, each in its own transaction. The
    exports' removals (``sync.removals``) older than the same retention go too."""
    days = get_settings().journal_retention_days
    purged: list[int] = []
    with store.connect(autocommit=True) as conn:

        def clock() -> None:
            if at is not None:  # transaction-local: a pooled connection keeps no test clock
                conn.execute("SELECT set_config('feedsync.clock', %s, true)", (at.isoformat(),))

        with conn.transaction():
            clock()
            due = store.fetch_all(
                conn,
                """SELECT r.id FROM sync.runs r
                   WHERE r.journaled AND r.journal_purged_at IS NULL AND r.finished_at IS NOT NULL
                     AND r.finished_at + make_interval(days => %s) <= sync.clock()
                   ORDER BY r.id""",
                (days,),
            )
        for row in due:
            with conn.transaction():
                clock()
                # Locked, and checked again: an undo of this run queued meanwhile keeps the journal.
                gone = conn.execute(
                    """UPDATE sync.runs r SET journal_purged_at = sync.clock()
                       WHERE r.id = %s AND r.journal_purged_at IS NULL
                         AND NOT EXISTS (SELECT 1 FROM sync.runs u WHERE u.undo_of = r.id
                                         AND u.status IN ('queued', 'in_progress', 'awaiting_approval'))""",
                    (row["id"],),
                ).rowcount
                if gone:
                    conn.execute("DELETE FROM sync.journal WHERE run_id = %s", (row["id"],))
                    purged.append(int(row["id"]))
        # The removals the exports send (schemas/sql/028_export_removals.sql) name people too: kept as
        # long as a journal, long after any scheduled export has sent them.
        with conn.transaction():
            clock()
            removals = conn.execute(
                "DELETE FROM sync.removals WHERE removed_at + make_interval(days => %s) <= sync.clock()", (days,)
            ).rowcount
    if removals:
        log.info("export removals removed", removals=removals, days=days)
    if purged:
        log.info("run journals removed", runs=len(purged), first=purged[0], last=purged[-1], days=days)
    return purged
