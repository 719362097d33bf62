"""Foreign keys set aside for one bulk statement and added back after it, as the catalog defined
them: checked once, by one set-based query per key, instead of a lookup per row (with a row lock
on the row pointed at: a first import's 500,000 group memberships paid five of each).

Used where the tables are taken for the transaction anyway (a first import: people_bulk.py, and the
group rules' first evaluation in workers/rules.py). ``drop`` keeps the definitions in a table of the
transaction; ``restore`` adds them back and drops it. No CASCADE: a constraint something else
depends on stops the drop, and the caller's savepoint sends the statement the usual way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from workers import store


def rows(conn: psycopg.Connection[Any], which: sql.Composable) -> float:
    """How many rows the tables of the foreign keys ``which`` selects hold (SQL over
    pg_constraint): each would be checked again. The planner's counts; a table never analyzed, by
    its size."""
    row = store.fetch_one(
        conn,
        sql.SQL(
            """SELECT coalesce(sum(CASE WHEN c.reltuples < 0 THEN pg_relation_size(c.oid) / 100 ELSE c.reltuples END),
                               0) AS n
               FROM (SELECT DISTINCT conrelid FROM pg_constraint WHERE contype = 'f' AND {which}) k
               JOIN pg_class c ON c.oid = k.conrelid"""
        ).format(which=which),
    )
    return float(row["n"]) if row else 0.0


def drop(conn: psycopg.Connection[Any], name: str, which: sql.Composable) -> None:
    """Drop the foreign keys ``which`` selects, their definitions kept in the temporary table ``name``."""
    conn.execute(
        sql.SQL(
            """CREATE TEMP TABLE {t} ON COMMIT DROP AS
               SELECT conrelid::regclass AS tbl, conname, pg_get_constraintdef(oid) AS def
               FROM pg_constraint WHERE contype = 'f' AND {which}"""
        ).format(t=sql.Identifier(name), which=which)
    )
    conn.execute(
        sql.SQL(
            """DO $$ DECLARE f record; BEGIN
                   FOR f IN SELECT * FROM {t} ORDER BY tbl::text, conname LOOP
                       EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', f.tbl, f.conname);
                   END LOOP;
               END $$"""
        ).format(t=sql.Identifier(name))
    )


def restore(conn: psycopg.Connection[Any], name: str) -> None:
    """Add back what ``drop`` kept in ``name``: each checked once on its table's rows."""
    conn.execute(
        sql.SQL(
            """DO $$ DECLARE f record; BEGIN
                   FOR f IN SELECT * FROM {t} ORDER BY tbl::text, conname LOOP
                       EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I %s', f.tbl, f.conname, f.def);
                   END LOOP;
               END $$"""
        ).format(t=sql.Identifier(name))
    )
    conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))


def taken(conn: psycopg.Connection[Any], seconds: float, take: Callable[[], bool]) -> bool:
    """``take()`` (locks, drops) in a savepoint, waiting at most ``seconds`` for any lock: kept when
    it returns True; undone, savepoint and all, when it returns False or a lock is not had in time
    (or a deadlock would be), so a long report or a busy load is never made to fail for speed."""
    before = store.fetch_one(conn, "SELECT current_setting('lock_timeout') AS t")
    assert before is not None
    conn.execute("SAVEPOINT bulk_keys")
    try:
        conn.execute("SELECT set_config('lock_timeout', %s, true)", (f"{int(seconds * 1000)}ms",))
        kept = take()
    except (psycopg.errors.LockNotAvailable, psycopg.errors.DeadlockDetected):
        kept = False
    if not kept:
        conn.execute("ROLLBACK TO SAVEPOINT bulk_keys")  # the timeout and every lock with it
        return False
    conn.execute("SELECT set_config('lock_timeout', %s, true)", (before["t"],))
    conn.execute("RELEASE SAVEPOINT bulk_keys")
    return True
