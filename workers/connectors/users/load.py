"""Kind ``users``, the merge: new people and changed people by ranges of key-hash buckets, then
deactivations, each step committed on its own in an online load."""

from __future__ import annotations

from functools import partial
from typing import Any

import psycopg
import structlog
from psycopg import sql

from schemas.settings import get_settings
from workers import store
from workers.connectors import people_bulk as bulk
from workers.connectors.contract import Step
from workers.connectors.users.plan import BUCKETS, MOVES, STATE_GONE, deactivates, gone_filter
from workers.connectors.users.transform import EMAIL_RE, bad_email, config_of
from workers.rows import RunRow
from workers.staging import stage_table

log = structlog.get_logger(__name__)


def batch_ranges(
    conn: psycopg.Connection[Any], run: RunRow, batch_rows: int, where: sql.Composable
) -> list[tuple[int, int]]:
    """Bucket ranges of about batch_rows staged rows (those ``where`` selects) each; none for none."""
    query = sql.SQL("SELECT count(*) AS n FROM {t} c WHERE {w}").format(t=stage_table("cls", run.id), w=where)
    row = store.fetch_one(conn, query)
    n = int(row["n"]) if row else 0
    count = min(BUCKETS, -(-n // batch_rows))
    if count == 0:
        return []
    edges = [round(i * BUCKETS / count) for i in range(count + 1)]
    return [(edges[i], edges[i + 1] - 1) for i in range(count)]


def load_steps(conn: psycopg.Connection[Any], run: RunRow, *, whole: bool, batch_rows: int) -> list[Step]:
    """The load as steps: new people by bucket range, then changed people by bucket range (one
    range each when whole), then deactivations; a whole load also finishes in the same transaction,
    an online one after its batches. New people go in far larger batches
    (FEEDSYNC_LOAD_INSERT_ROWS) than updates: an insert locks nothing a reader waits for, and a
    million rows in one INSERT took half the time of the same rows in 50,000-row batches."""
    everything = [(0, BUCKETS - 1)]
    if whole:
        inserts = updates = everything
    else:
        ensure_bucket_index(conn, run.id)
        inserts = batch_ranges(conn, run, get_settings().load_insert_rows, sql.SQL("c.old_id IS NULL"))
        updates = batch_ranges(conn, run, batch_rows, sql.SQL("c.old_id IS NOT NULL"))
        if len(inserts) + len(updates) > 2:
            # Each batch reads its staged rows by key: an index beats a scan of the run per batch.
            conn.execute(
                sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (key)").format(
                    sql.Identifier(f"users_{run.id}_key"), stage_table("users", run.id)
                )
            )
    steps: list[Step] = [partial(insert_people, lo=lo, hi=hi) for lo, hi in inserts]
    steps += [partial(update_people, lo=lo, hi=hi) for lo, hi in updates]
    return [*steps, mark_deleted, apply_deactivations, *([finish] if whole else [])]


def ensure_bucket_index(conn: psycopg.Connection[Any], run_id: int) -> None:
    conn.execute(
        sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (kbucket)").format(
            sql.Identifier(f"cls_{run_id}_kbucket"), stage_table("cls", run_id)
        )
    )


def insert_people(conn: psycopg.Connection[Any], run: RunRow, lo: int, hi: int) -> dict[str, int]:
    """For buckets lo..hi: new people, with their manager, in one plain INSERT ... SELECT.

    The classification knows they are new, but it may be old news: another connection may have
    created one of them since (a run approved after hours, two feeds bringing the same new person at
    once). That is rare, so it is not paid for on every row: the plain insert runs in a savepoint,
    and only if it meets such a person (a unique violation) does the batch go again the careful way
    (``_insert_adopting``). The plain insert is what lets a first import build the e-mail index after
    the rows (people_bulk.py: ON CONFLICT needs that index), and it writes a fifth less WAL (no
    confirmation record per row: 3.99M records against 4.98M at 1M people); on an idle machine the
    two took the same time with all indexes kept (17.6 s and 17.5 s)."""
    cls = stage_table("cls", run.id)
    params = {"conn": run.connection_id, "lo": lo, "hi": hi}
    insert = sql.SQL(
        """INSERT INTO lms.users (id, email, first_name, last_name, attributes, manager_id,
                                  source_connection_id, source_hash, active, deactivated_at)
           OVERRIDING SYSTEM VALUE
           SELECT c.uid, c.email, c.first_name, c.last_name, jsonb_strip_nulls(c.attrs), c.manager_uid,
                  %(conn)s, c.row_hash, NOT c.inactive, CASE WHEN c.inactive THEN clock_timestamp() END
           FROM {cls} c
           WHERE c.old_id IS NULL AND c.kbucket BETWEEN %(lo)s AND %(hi)s
           {conflict}"""
    )
    # Everyone the batch wants, from the narrow classification: the counts, and whether it is a
    # first import big enough to build the indexes after the rows (bulk.py).
    row = store.fetch_one(
        conn,
        sql.SQL(
            """SELECT count(*) FILTER (WHERE NOT c.inactive) AS created, count(*) FILTER (WHERE c.inactive) AS gone
               FROM {cls} c WHERE c.old_id IS NULL AND c.kbucket BETWEEN %(lo)s AND %(hi)s"""
        ).format(cls=cls),
        params,
    )
    assert row is not None
    plain = insert.format(cls=cls, conflict=sql.SQL(""))
    # A savepoint of the step's own transaction (never a transaction of its own: the step commits).
    conn.execute("SAVEPOINT insert_people")
    try:
        wanted = int(row["created"]) + int(row["gone"])
        if not bulk.insert_with_indexes_rebuilt(conn, wanted, plain, params):
            conn.execute(plain, params)
    except psycopg.errors.UniqueViolation:
        conn.execute("ROLLBACK TO SAVEPOINT insert_people")
        return _insert_adopting(conn, run, insert.format(cls=cls, conflict=_ADOPT), params)
    conn.execute("RELEASE SAVEPOINT insert_people")
    # Everyone the batch wanted went in.
    return _insert_counts(int(row["created"]), int(row["gone"]))


_ADOPT = sql.SQL("ON CONFLICT (email_key) DO NOTHING RETURNING active")


def _insert_counts(created: int, arrived_inactive: int) -> dict[str, int]:
    # A person the feed brings for the first time already gone (ALM's userState DELETED or SUSPENDED)
    # is kept, inactive: counted as deactivated, not as created (nor, by the load stage, as unchanged).
    return {"created": created, "deactivated": arrived_inactive, "arrived_inactive": arrived_inactive}


def _insert_adopting(
    conn: psycopg.Connection[Any], run: RunRow, insert: sql.Composed, params: dict[str, Any]
) -> dict[str, int]:
    """The batch again, skipping the people someone else created meanwhile, who are then adopted:
    updated as existing people of this connection, in the same transaction, and everyone pointing
    at the id drawn for them points at theirs."""
    row = store.fetch_one(
        conn,
        sql.SQL(
            """WITH ins AS ({insert})
               SELECT (SELECT count(*) FROM ins WHERE active) AS created,
                      (SELECT count(*) FROM ins WHERE NOT active) AS arrived_inactive,
                      (SELECT count(*) FROM {cls} c WHERE c.old_id IS NULL AND c.kbucket BETWEEN %(lo)s AND %(hi)s)
                        AS wanted"""
        ).format(insert=insert, cls=stage_table("cls", run.id)),
        params,
    )
    assert row is not None
    counts = _insert_counts(int(row["created"]), int(row["arrived_inactive"]))
    if row["created"] + row["arrived_inactive"] < row["wanted"]:
        counts.update(_adopt(conn, run, params["lo"], params["hi"]))
    return counts


def _adopt(conn: psycopg.Connection[Any], run: RunRow, lo: int, hi: int) -> dict[str, int]:
    """The people of buckets lo..hi the insert found already there: reclassified as existing
    (old_id, their manager) and updated now; ids drawn for them are replaced wherever used."""
    cls = stage_table("cls", run.id)
    params = {"lo": lo, "hi": hi}
    moved = store.fetch_all(
        conn,
        sql.SQL(
            """WITH lost AS (
                 SELECT c.key, c.uid AS drawn, u.id, u.manager_id FROM {cls} c JOIN lms.users u ON u.email_key = c.key
                 WHERE c.old_id IS NULL AND c.kbucket BETWEEN %(lo)s AND %(hi)s AND u.id <> c.uid)
               UPDATE {cls} c SET old_id = l.id, uid = l.id, old_manager = l.manager_id, changed = true, adopted = true
               FROM lost l WHERE c.key = l.key
               RETURNING l.drawn, l.id"""
        ).format(cls=cls),
        params,
    )
    if not moved:
        return {}
    ids = {"drawn": [m["drawn"] for m in moved], "id": [m["id"] for m in moved]}
    # Drawn ids were never anyone's: a person of this run (this batch or an earlier one) whose
    # manager was one of them gets the adopted person's id instead.
    swap = sql.SQL("SELECT * FROM unnest(%(drawn)s::bigint[], %(id)s::bigint[]) AS x(drawn, id)")
    conn.execute(
        sql.SQL("UPDATE {cls} c SET manager_uid = x.id FROM ({swap}) x WHERE c.manager_uid = x.drawn").format(
            cls=cls, swap=swap
        ),
        ids,
    )
    conn.execute(
        sql.SQL("UPDATE lms.users u SET manager_id = x.id FROM ({swap}) x WHERE u.manager_id = x.drawn").format(
            swap=swap
        ),
        ids,
    )
    log.warning(
        "people another connection created since this run was planned were adopted, not inserted",
        adopted=len(moved),
    )
    return _update(conn, run, sql.SQL("c.adopted AND c.kbucket BETWEEN %(lo)s AND %(hi)s"), params)


def update_people(conn: psycopg.Connection[Any], run: RunRow, lo: int, hi: int) -> dict[str, int]:
    """For buckets lo..hi: changed people (by row hash) and manager moves, by id."""
    where = sql.SQL("NOT c.adopted AND c.kbucket BETWEEN %(lo)s AND %(hi)s")
    return _update(conn, run, where, {"lo": lo, "hi": hi})


def _update(
    conn: psycopg.Connection[Any], run: RunRow, where: sql.Composable, params: dict[str, Any]
) -> dict[str, int]:
    """The classified people ``where`` selects (a fixed condition of this module, never data)."""
    cfg = config_of(run.config)
    cls = stage_table("cls", run.id)
    params = {**params, "conn": run.connection_id}
    keep = sql.SQL("coalesce(c.{c}, u.{c})") if not cfg.empty_erases else sql.SQL("c.{c}")
    attributes = (
        sql.SQL("u.attributes || jsonb_strip_nulls(c.attrs)")
        if not cfg.empty_erases
        else sql.SQL("(u.attributes - {keys}) || jsonb_strip_nulls(c.attrs)").format(
            keys=sql.Literal(cfg.profile_attributes)
        )
    )
    moved = store.fetch_one(
        conn,
        sql.SQL("SELECT count(*) AS n FROM {cls} c WHERE {where} AND {moves}").format(
            cls=cls, where=where, moves=MOVES
        ),
        params,
    )
    updated = store.fetch_one(
        conn,
        sql.SQL(
            """WITH upd AS (
                 UPDATE lms.users u SET
                   email = CASE WHEN c.changed THEN c.email ELSE u.email END,
                   first_name = CASE WHEN c.changed THEN {fn} ELSE u.first_name END,
                   last_name = CASE WHEN c.changed THEN {ln} ELSE u.last_name END,
                   attributes = CASE WHEN c.changed THEN {attributes} ELSE u.attributes END,
                   active = NOT c.inactive,
                   deactivated_at = CASE WHEN c.inactive THEN coalesce(u.deactivated_at, clock_timestamp()) END,
                   source_connection_id = %(conn)s, source_hash = c.row_hash,
                   manager_id = coalesce(c.manager_uid, u.manager_id), updated_at = clock_timestamp()
                 FROM {cls} c
                 WHERE u.id = c.old_id AND {where} AND (c.changed OR {moves})
                 RETURNING c.changed, {gone} AS gone)
               SELECT count(*) FILTER (WHERE changed) AS n, count(*) FILTER (WHERE gone) AS gone FROM upd"""
        ).format(
            cls=cls,
            fn=keep.format(c=sql.Identifier("first_name")),
            ln=keep.format(c=sql.Identifier("last_name")),
            attributes=attributes,
            where=where,
            moves=MOVES,
            gone=STATE_GONE,
        ),
        params,
    )
    assert updated is not None
    counts = {"updated": int(updated["n"]), "manager_moves": int(moved["n"]) if moved else 0}
    if updated["gone"]:  # deactivated by their state column (counted with a full feed's)
        counts["deactivated"] = int(updated["gone"])
    return counts


def mark_deleted(conn: psycopg.Connection[Any], run: RunRow) -> dict[str, int]:
    """The people the feed says are DELETED (ALM's userState), kept apart from SUSPENDED for the
    exports while they stay inactive; a person the feed has active again leaves the list."""
    t = stage_table("users", run.id)
    conn.execute(
        sql.SQL(
            """INSERT INTO lms.deleted_people (user_id)
               SELECT u.id FROM {t} s JOIN lms.users u ON u.email_key = s.key WHERE s.deleted AND NOT u.active
               ON CONFLICT DO NOTHING"""
        ).format(t=t)
    )
    conn.execute(
        sql.SQL(
            """DELETE FROM lms.deleted_people d USING {t} s, lms.users u
               WHERE u.email_key = s.key AND d.user_id = u.id AND u.active"""
        ).format(t=t)
    )
    return {}


def apply_deactivations(conn: psycopg.Connection[Any], run: RunRow) -> dict[str, int]:
    """Full feeds: the people missing from it, and (filter_leavers = "deactivate") those leaving the
    filters, noted in ``gone`` for the assign step."""
    where = gone_filter(run, deactivates(run, conn))
    if where is None:
        return {"deactivated": 0}
    n = conn.execute(
        sql.SQL(
            """WITH d AS (UPDATE lms.users u SET active = false, deactivated_at = clock_timestamp(),
                                 updated_at = clock_timestamp() WHERE {f} RETURNING u.id)
               INSERT INTO {gone} (user_id) SELECT id FROM d ON CONFLICT DO NOTHING"""
        ).format(f=where, gone=stage_table("gone", run.id)),
        {"run": run.id, "conn": run.connection_id},
    ).rowcount
    return {"deactivated": n}


def changed_people(run: RunRow) -> sql.Composed:
    """For the assign step: everyone the classification gave work to (created, changed,
    reactivated, deactivated by their state, moved or linked to their manager), everyone below a
    person whose manager changed (their chain of managers changed with it), and the people the
    full feed deactivated."""
    return sql.SQL(
        """(WITH RECURSIVE team(id) AS (
               SELECT c.uid FROM {cls} c WHERE {moves}
               UNION SELECT u.id FROM lms.users u JOIN team ON u.manager_id = team.id)
           SELECT c.uid AS user_id FROM {cls} c
           UNION SELECT id FROM team
           UNION SELECT user_id FROM {gone}) AS changed"""
    ).format(cls=stage_table("cls", run.id), moves=MOVES, gone=stage_table("gone", run.id))


def finish(conn: psycopg.Connection[Any], run: RunRow) -> dict[str, int]:
    """Row warnings for managers nobody has."""
    run_id = run.id
    cls = stage_table("cls", run_id)
    unknown = conn.execute(
        sql.SQL(
            """INSERT INTO sync.row_errors (run_id, file_id, file_name, line, column_no, column_name, code, message,
                                            value, rejected)
               SELECT %(run)s, s.file_id, f.original_path, s.line_no, (rf.columns -> 'manager' ->> 'no')::int,
                      rf.columns -> 'manager' ->> 'column', e.code, e.message, coalesce(s.manager_text, c.manager_key),
                      false
               FROM {cls} c JOIN {t} s ON s.key = c.key
               JOIN sync.feed_files f ON f.id = s.file_id
               JOIN sync.run_files rf ON rf.run_id = %(run)s AND rf.file_id = s.file_id
               CROSS JOIN LATERAL (SELECT
                   CASE WHEN {bad_manager} THEN 'invalid_manager'
                        ELSE 'unknown_manager' END AS code) k
               CROSS JOIN LATERAL (SELECT k.code, CASE k.code
                   WHEN 'invalid_manager' THEN 'the manager must be given as an e-mail address; the user was '
                                               || 'imported without a manager change'
                   ELSE 'no user has this manager e-mail; the user was imported without a manager change: add the '
                        || 'manager to the feed or correct the address' END AS message) e
               WHERE c.manager_key IS NOT NULL AND c.manager_uid IS NULL
                 -- A manager the filters left out is known, not missing: their reports are imported without them.
                 AND NOT EXISTS (SELECT 1 FROM {filtered} f WHERE f.key = c.manager_key)"""
        ).format(
            cls=cls,
            t=stage_table("users", run_id),
            filtered=stage_table("filtered", run_id),
            bad_manager=bad_email(sql.SQL("c.manager_key")),
        ),
        {"run": run_id, "re": EMAIL_RE},
    ).rowcount
    # Every valid row: the staged ones (with the unchanged ones classify left behind) and the same ones.
    valid = store.fetch_one(
        conn,
        sql.SQL("SELECT (SELECT count(*) FROM {t}) + (SELECT count(*) FROM {same}) AS n").format(
            t=stage_table("users", run_id), same=stage_table("same", run_id)
        ),
    )
    filtered = store.fetch_one(conn, sql.SQL("SELECT count(*) AS n FROM {}").format(stage_table("filtered", run_id)))
    return {
        "unknown_managers": unknown,
        "valid": int(valid["n"]) if valid else 0,
        "filtered": int(filtered["n"]) if filtered else 0,
    }
