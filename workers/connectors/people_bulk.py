"""The first import of many people (kinds ``users`` and ``hierarchy``): lms.users' primary key and
its e-mail and manager indexes built once, after the rows, instead of row by row.

Measured at 1M people (2 cores, shared_buffers 128 MB): a COPY into lms.users' shape took 17.0 s
with its indexes and 4.3 s without them, and building the two random-order indexes afterwards
took 2.1 s. The primary key cost as much again (2026-12-08, 990,000 rows from the run's staging,
on a busy machine: 7.0-8.0 s with it, 3.7 s without it and 1.9-2.2 s to build it after): each row
still walks its btree, however well its id arrives in order. The seven foreign keys pointing at it
go with it and come back with it, as the catalog defines them, checked again on their tables' rows.
Dropping takes lms.users and those tables for this transaction alone, so this is done only when
the batch brings at least as many people as the store has (a first import, or a store that
doubles): readers wait for the insert, never more than the table is worth.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import psycopg
import structlog
from psycopg import sql

from schemas.settings import get_settings
from workers import fkeys, store

log = structlog.get_logger(__name__)

#: The indexes dropped and rebuilt, as migrations 002 and 008 define them
#: (tests/unit/test_bulk_insert.py holds these equal to the database's own definitions).
INDEXES: tuple[tuple[str, sql.SQL], ...] = (
    ("users_email_key", sql.SQL("CREATE UNIQUE INDEX users_email_key ON lms.users (email_key)")),
    ("users_manager", sql.SQL("CREATE INDEX users_manager ON lms.users (manager_id) WHERE (manager_id IS NOT NULL)")),
)


#: The insert with its journal, as the insert trigger of migration 046 (sync.journal_insert) writes
#: it: ranges of consecutive ids, one journal statement number, nothing outside a journaled run.
_JOURNALED = sql.SQL(
    """WITH ins AS ({insert} RETURNING id),
            run AS (SELECT nullif(current_setting('feedsync.run_id', true), '')::bigint AS id)
       INSERT INTO sync.journal (seq, run_id, tbl, key, op)
       SELECT (SELECT nextval('sync.journal_statement')), run.id, 'users', ARRAY[min(i.id)::text, max(i.id)::text], 'R'
       FROM (SELECT id, id - row_number() OVER (ORDER BY id) AS island FROM ins) i, run
       WHERE run.id IS NOT NULL
       GROUP BY run.id, i.island"""
)

#: The primary key, as migration 002 defines it (tests/unit/test_bulk_insert.py holds it equal).
PRIMARY_KEY = sql.SQL("ALTER TABLE lms.users ADD CONSTRAINT users_pkey PRIMARY KEY (id)")


def insert_with_indexes_rebuilt(
    conn: psycopg.Connection[Any], wanted: int, insert: sql.Composed, params: Mapping[str, Any]
) -> bool:
    """``insert`` (a plain ``INSERT INTO lms.users … SELECT``, run with ``params``) of ``wanted`` new
    people, with the primary key (and the foreign keys pointing at it), the e-mail and the manager
    indexes dropped before and built after, in the caller's transaction, when that is worth it: at
    least FEEDSYNC_LOAD_BULK_ROWS of them, and no fewer than the store has. False, and nothing done,
    when it is not, or when lms.users or a table pointing at it cannot be had within
    FEEDSYNC_LOAD_BULK_LOCK_S (a long report reading the store is not made to fail): the caller
    inserts the usual way. A unique violation (someone created one of these people since the run was
    classified) is raised by the index build, as it would be by the insert."""
    settings = get_settings()
    if not settings.load_bulk_rows or wanted < settings.load_bulk_rows:
        return False
    # The planner's estimate first, without a lock: a store far larger is not worth locking for.
    estimate = store.fetch_one(conn, "SELECT reltuples AS n FROM pg_class WHERE oid = 'lms.users'::regclass")
    if estimate is not None and estimate["n"] > wanted:
        return False
    primary = _primary_worth_it(conn, wanted)

    def take() -> bool:
        # Taken before anything of lms.users is read: no weaker lock of ours to upgrade (two loads
        # upgrading at once would deadlock).
        conn.execute("LOCK TABLE lms.users IN ACCESS EXCLUSIVE MODE")
        # The exact number, counting at most wanted + 1 people (never the whole table).
        row = store.fetch_one(conn, "SELECT count(*) AS n FROM (SELECT 1 FROM lms.users LIMIT %s) u", (wanted + 1,))
        if row is None or int(row["n"]) > wanted:
            return False
        # Under the same lock timeout: the tables the foreign keys belong to are taken as they are
        # dropped, and one being written (an xAPI load) sends this batch the usual way.
        _drop_keys(conn, primary)
        return True

    if not fkeys.taken(conn, settings.load_bulk_lock_s, take):
        log.info("the store or a table pointing at it is in use; new people are inserted with their indexes kept")
        return False
    t0 = time.perf_counter()
    # The run journal's insert trigger keeps every new row whole (a transition table: 175 MB spilled
    # to disk at 1M people) to read their ids back; the statement hands the journal its ids itself,
    # as the same ranges. Off for this statement, in this transaction (the table is ours alone).
    if _journaled(conn):
        conn.execute("ALTER TABLE lms.users DISABLE TRIGGER journal_i")
        conn.execute(_JOURNALED.format(insert=insert), params)
        conn.execute("ALTER TABLE lms.users ENABLE TRIGGER journal_i")
    else:  # no journal trigger to stand in for (the bench measures the store without it)
        conn.execute(insert, params)
    t1 = time.perf_counter()
    conn.execute("SELECT set_config('maintenance_work_mem', %s, true)", (settings.load_index_mem,))
    _rebuild_keys(conn, primary)
    log.info(
        "new people inserted, their indexes built after them",
        people=wanted,
        insert_s=round(t1 - t0, 3),
        indexes_s=round(time.perf_counter() - t1, 3),
    )
    return True


def _journaled(conn: psycopg.Connection[Any]) -> bool:
    row = store.fetch_one(
        conn,
        "SELECT tgenabled <> 'D' AS on FROM pg_trigger WHERE tgrelid = 'lms.users'::regclass AND tgname = 'journal_i'",
    )
    return row is not None and bool(row["on"])


#: The foreign keys pointing at lms.users' primary key.
POINTING_AT_USERS = sql.SQL("confrelid = 'lms.users'::regclass")


def _primary_worth_it(conn: psycopg.Connection[Any], wanted: int) -> bool:
    """Whether to build the primary key after the rows too: its foreign keys are checked again on
    every row of their tables, so only when those hold no more rows than the batch brings."""
    return fkeys.rows(conn, POINTING_AT_USERS) <= wanted


def _drop_keys(conn: psycopg.Connection[Any], primary: bool) -> None:
    """The e-mail and manager indexes and, with ``primary``, the foreign keys pointing at lms.users
    (kept, as the catalog defines them, in a table of this transaction) and its primary key. No
    CASCADE: anything else depending on the key stops the drop, and the batch goes the usual way."""
    for name, _ in INDEXES:
        conn.execute(sql.SQL("DROP INDEX lms.{}").format(sql.Identifier(name)))
    if not primary:
        return
    fkeys.drop(conn, "bulk_users_fkeys", POINTING_AT_USERS)
    conn.execute("ALTER TABLE lms.users DROP CONSTRAINT users_pkey")


def _rebuild_keys(conn: psycopg.Connection[Any], primary: bool) -> None:
    """What _drop_keys dropped, as it was: a unique violation raises here, as it would in the insert."""
    if primary:
        conn.execute(PRIMARY_KEY)
    for _, create in INDEXES:
        conn.execute(create)
    if not primary:
        return
    fkeys.restore(conn, "bulk_users_fkeys")
