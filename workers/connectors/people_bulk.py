"""The first import of many people (kinds ``users`` and ``hierarchy``): their e-mail and manager
indexes built once, after the rows, instead of row by row.

Measured at 1M people (2 cores, shared_buffers 128 MB): a COPY into lms.users' shape took 17.0 s
with its indexes and 4.3 s without them, and building the two random-order indexes afterwards
took 2.1 s. The primary key stays (seven tables point at it, and the drawn ids arrive in order,
so it grows at its right edge). Dropping an index takes lms.users for this transaction alone, so
this is done only when the batch brings at least as many people as the store has (a first
import, or a store that doubles): readers wait for the insert, never more than the table is worth.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg
import structlog
from psycopg import sql

from schemas.settings import get_settings
from workers import store

log = structlog.get_logger(__name__)

#: The indexes dropped and rebuilt, as migrations 002 and 008 define them
#: (tests/unit/test_bulk_insert.py holds these equal to the database's own definitions).
INDEXES: tuple[tuple[str, sql.SQL], ...] = (
    ("users_email_key", sql.SQL("CREATE UNIQUE INDEX users_email_key ON lms.users (email_key)")),
    ("users_manager", sql.SQL("CREATE INDEX users_manager ON lms.users (manager_id) WHERE (manager_id IS NOT NULL)")),
)


def insert_with_indexes_rebuilt(conn: psycopg.Connection[Any], wanted: int, insert: Callable[[], object]) -> bool:
    """``insert()`` of ``wanted`` new people with the e-mail and manager indexes dropped before and
    built after, in the caller's transaction, when that is worth it: at least
    FEEDSYNC_LOAD_BULK_ROWS of them, and no fewer than the store has. False, and nothing done, when
    it is not, or when lms.users cannot be had within FEEDSYNC_LOAD_BULK_LOCK_S (a long report
    reading the store is not made to fail): the caller inserts the usual way. A unique violation
    (someone created one of these people since the run was classified) is raised by the index
    build, as it would be by the insert."""
    settings = get_settings()
    if not settings.load_bulk_rows or wanted < settings.load_bulk_rows:
        return False
    # The planner's estimate first, without a lock: a store far larger is not worth locking for.
    estimate = store.fetch_one(conn, "SELECT reltuples AS n FROM pg_class WHERE oid = 'lms.users'::regclass")
    if estimate is not None and estimate["n"] > wanted:
        return False
    before = store.fetch_one(conn, "SELECT current_setting('lock_timeout') AS t")
    assert before is not None
    conn.execute("SAVEPOINT bulk_lock")
    try:
        conn.execute("SELECT set_config('lock_timeout', %s, true)", (f"{int(settings.load_bulk_lock_s * 1000)}ms",))
        # Taken before anything of lms.users is read: no weaker lock of ours to upgrade (two loads
        # upgrading at once would deadlock).
        conn.execute("LOCK TABLE lms.users IN ACCESS EXCLUSIVE MODE")
    except (psycopg.errors.LockNotAvailable, psycopg.errors.DeadlockDetected):
        conn.execute("ROLLBACK TO SAVEPOINT bulk_lock")
        log.info("the store is being read; new people are inserted with their indexes kept")
        return False
    conn.execute("SELECT set_config('lock_timeout', %s, true)", (before["t"],))
    # The exact number, counting at most wanted + 1 people (never the whole table).
    row = store.fetch_one(conn, "SELECT count(*) AS n FROM (SELECT 1 FROM lms.users LIMIT %s) u", (wanted + 1,))
    if row is None or int(row["n"]) > wanted:
        conn.execute("ROLLBACK TO SAVEPOINT bulk_lock")  # and the lock with it
        return False
    conn.execute("RELEASE SAVEPOINT bulk_lock")
    for name, _ in INDEXES:
        conn.execute(sql.SQL("DROP INDEX lms.{}").format(sql.Identifier(name)))
    t0 = time.perf_counter()
    insert()
    t1 = time.perf_counter()
    conn.execute("SELECT set_config('maintenance_work_mem', %s, true)", (settings.load_index_mem,))
    for _, create in INDEXES:
        conn.execute(create)
    log.info(
        "new people inserted, their indexes built after them",
        people=wanted,
        insert_s=round(t1 - t0, 3),
        indexes_s=round(time.perf_counter() - t1, 3),
    )
    return True
