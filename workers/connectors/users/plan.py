"""Kind ``users``, the load's decision: duplicates, the classification against the store, the plan
and the safety thresholds (what a full feed may deactivate)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from workers import store
from workers.connectors.thresholds import growth_reasons, limit_text, unreadable_reason, unreadable_rows
from workers.connectors.users.filters import apply_filters, deactivates_leavers, leavers
from workers.connectors.users.transform import config_of
from workers.rows import RunRow
from workers.staging import stage_table

BUCKETS = 256  # the classified rows are cut into this many hash buckets of the key; a batch is a range of them


def prepare(conn: psycopg.Connection[Any], run: RunRow) -> int:
    """Reject people who appear more than once in the run (all their rows, staged or same), then
    set aside those the connection's filters leave out (filters.py). Idempotent."""
    duplicates = _duplicates(conn, run)
    apply_filters(conn, run.id, run.connection_id, config_of(run.config), partial=_delta(conn, run))
    return duplicates


def _delta(conn: psycopg.Connection[Any], run: RunRow) -> bool:
    """The run's feed is a Graph delta (workers/stages/fetch.py): only the people who changed."""
    row = store.fetch_one(
        conn, "SELECT coalesce((counts ->> 'fetch_delta')::int, 0) AS delta FROM sync.runs WHERE id = %s", (run.id,)
    )
    return bool(row and row["delta"])


def _duplicates(conn: psycopg.Connection[Any], run: RunRow) -> int:
    run_id = run.id
    cfg = config_of(run.config)
    typed, same = stage_table("users", run_id), stage_table("same", run_id)
    # A file rejected after some of its chunks were transformed (a workbook broken half-way):
    # nothing of it is imported, and its keys protect nobody. Looked for first, so a run whose files
    # all parsed (nearly every run) does not scan its staged rows for nothing.
    rejected = [
        r["file_id"]
        for r in store.fetch_all(
            conn, "SELECT file_id FROM sync.run_files WHERE run_id = %s AND status <> 'parsed'", (run_id,)
        )
    ]
    if rejected:
        for table in (typed, same):
            conn.execute(sql.SQL("DELETE FROM {} WHERE file_id = ANY(%s)").format(table), (rejected,))
    conn.execute(sql.SQL("ANALYZE {}").format(typed))
    conn.execute(sql.SQL("ANALYZE {}").format(same))
    # First the keys alone, one hash aggregate; the rows of a duplicated key are read only if any.
    dups = stage_table("dup", run_id)
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(dups))
    found = conn.execute(
        sql.SQL(
            """CREATE UNLOGGED TABLE {d} AS
               SELECT key FROM (SELECT key FROM {t} UNION ALL SELECT key FROM {same}) k
               GROUP BY key HAVING count(*) > 1"""
        ).format(d=dups, t=typed, same=same)
    ).rowcount
    if not found:
        return 0
    dup = store.fetch_one(
        conn,
        sql.SQL(
            """
            WITH d AS (SELECT key FROM {d}),
            rows AS (SELECT file_id, line_no, key, email FROM {t} JOIN d USING (key)
                     UNION ALL SELECT file_id, line_no, key, key FROM {same} JOIN d USING (key)),
            occ AS (
                SELECT s.file_id, s.line_no, s.key, s.email, f.original_path AS fname,
                       (rf.columns -> 'email' ->> 'no')::int AS col
                FROM rows s
                JOIN sync.feed_files f ON f.id = s.file_id
                JOIN sync.run_files rf ON rf.run_id = %(run)s AND rf.file_id = s.file_id
            ),
            places AS (
                SELECT key, string_agg(fname || ' line ' || line_no, ', ' ORDER BY fname, line_no) AS places
                FROM occ GROUP BY key
            ),
            errs AS (
                INSERT INTO sync.row_errors (run_id, file_id, file_name, line, column_no, column_name, code,
                                             message, value, rejected)
                SELECT %(run)s, o.file_id, o.fname, o.line_no, o.col, %(email_col)s, 'duplicate_user',
                       'this person appears more than once in the run (' || p.places
                       || '); keep one row per person and rerun', o.email, true
                FROM occ o JOIN places p USING (key)
                RETURNING 1
            ),
            kept AS (INSERT INTO {kept} (file_id, line_no, key) SELECT file_id, line_no, key FROM occ),
            del AS (DELETE FROM {t} s USING d WHERE s.key = d.key RETURNING 1),
            del_same AS (DELETE FROM {same} s USING d WHERE s.key = d.key RETURNING 1)
            -- (Data-modifying WITH statements run whether or not they are read.)
            SELECT (SELECT count(*) FROM errs) AS duplicates
            """
        ).format(t=typed, same=same, d=dups, kept=stage_table("kept", run_id)),
        {"run": run_id, "email_col": cfg.mapping["email"]},
    )
    assert dup is not None
    return int(dup["duplicates"])


def classify(conn: psycopg.Connection[Any], run: RunRow) -> None:
    """One hash join of the run's keys with the store, keeping only the keys with work to do: new
    people (with an id drawn from the sequence now), changed people, and people whose manager is
    not linked yet, each with their manager's id (a person of this feed, or of the store). A person
    whose row hash matches the store and whose manager is linked goes no further: on a daily feed
    that is ninety per cent of the rows. It carries the staged values the load writes, so its
    insert and update read one table, not a hash join of it with the run's staging (at a first
    import of 1M people that join was a third of the insert)."""
    run_id = run.id
    # Looked up once: as a function call inside the statement it would run once per row.
    seq = store.fetch_one(conn, "SELECT pg_get_serial_sequence('lms.users', 'id') AS seq")
    assert seq is not None
    # The planner cannot know the materialized rows' keys are unique, guesses billions of rows for
    # the join of a person to their manager, and sorts both sides to disk for a merge join; a hash
    # join of the narrow rows fits in the load's work_mem (1M people: 7.6 s against 4.0 s).
    conn.execute("SELECT set_config('enable_mergejoin', 'off', true)")
    conn.execute(
        sql.SQL(
            """CREATE UNLOGGED TABLE IF NOT EXISTS {cls} AS
               WITH work AS MATERIALIZED (
                   -- Materialized: nextval must run once per row, whatever the joins below do.
                   SELECT s.key, s.manager_key, u.id AS old_id, u.manager_id AS old_manager,
                          -- The staged values the load writes: its steps read them here, not by key.
                          s.email, s.first_name, s.last_name, s.attrs, s.row_hash,
                          -- active as the feed wants it: a row reactivates its person, unless its state says gone
                          u.id IS NOT NULL AND (u.source_hash IS DISTINCT FROM s.row_hash OR u.active = s.inactive)
                            AS changed,
                          s.inactive, coalesce(u.active, false) AS old_active,
                          coalesce(u.id, nextval({seq}::regclass)) AS uid,
                          -- Batches are hash buckets of the key: no sort of the run's rows to cut them.
                          (hashtext(s.key) & {mask})::smallint AS kbucket
                   FROM {t} s LEFT JOIN lms.users u ON u.email_key = s.key
                   WHERE u.id IS NULL OR u.source_hash IS DISTINCT FROM s.row_hash OR u.active = s.inactive
                      OR (s.manager_key IS NOT NULL AND u.manager_id IS NULL))
               SELECT w.*, coalesce(mw.uid, mu.id) AS manager_uid, false AS adopted
               FROM work w
               LEFT JOIN work mw ON mw.key = w.manager_key
               LEFT JOIN lms.users mu ON mu.email_key = w.manager_key"""
        ).format(
            cls=stage_table("cls", run_id),
            t=stage_table("users", run_id),
            seq=sql.Literal(seq["seq"]),
            mask=sql.Literal(BUCKETS - 1),
        )
    )
    conn.execute("SELECT set_config('enable_mergejoin', 'on', true)")
    conn.execute(sql.SQL("ANALYZE {}").format(stage_table("cls", run_id)))


def deactivation_filter(run: RunRow) -> sql.Composed:
    """Active people of this connection missing from the feed (one anti-join). People whose key the
    run saw in a rejected row are kept: being refused is not being gone; nor is being filtered out,
    unless the connection deactivates those who leave its filters."""
    run_id = run.id
    unfiltered = (
        sql.SQL("")
        if deactivates_leavers(config_of(run.config))
        else sql.SQL(" AND NOT EXISTS (SELECT 1 FROM {f} s WHERE s.key = u.email_key)").format(
            f=stage_table("filtered", run_id)
        )
    )
    return sql.SQL(
        """u.source_connection_id = %(conn)s AND u.active
           AND NOT EXISTS (SELECT 1 FROM {t} s WHERE s.key = u.email_key)
           AND NOT EXISTS (SELECT 1 FROM {same} s WHERE s.key = u.email_key)
           AND NOT EXISTS (SELECT 1 FROM {kept} s WHERE s.key = u.email_key){unfiltered}"""
    ).format(
        t=stage_table("users", run_id),
        same=stage_table("same", run_id),
        kept=stage_table("kept", run_id),
        unfiltered=unfiltered,
    )


def gone_filter(run: RunRow, deactivating: bool) -> sql.Composed | None:
    """The people the load deactivates as absent or leaving the filters (``u``, lms.users): those
    missing from a full feed that may deactivate (``deactivating``), and with ``filter_leavers =
    "deactivate"`` those the filters now leave out, in any run; None: nobody."""
    parts = [deactivation_filter(run)] if deactivating else []
    if deactivates_leavers(config_of(run.config)):
        parts.append(leavers(run.id))
    if not parts:
        return None
    return sql.SQL("(({}))").format(sql.SQL(") OR (").join(parts))


def _unreadable(conn: psycopg.Connection[Any], run: RunRow, sample: int) -> dict[str, Any]:
    """Rejected rows whose person could not be read (a broken line, bytes not in the encoding, no
    valid e-mail): anyone missing from the feed may be one of them. Their places, never values."""
    return unreadable_rows(conn, run.id, stage_table("kept", run.id), sample)


def deactivates(run: RunRow, conn: psycopg.Connection[Any]) -> bool:
    if not config_of(run.config).full_feed:
        return False
    if run.counts.get("fetch_mode") == "incremental":  # a Workday pull of the changed workers only
        return False
    files = store.fetch_one(
        conn,
        """SELECT count(*) FILTER (WHERE status = 'rejected') AS rejected,
                  count(*) FILTER (WHERE status = 'parsed' AND rows_read > 0) AS read
           FROM sync.run_files WHERE run_id = %s""",
        (run.id,),
    )
    # Only a run that read a feed may say who is gone: not a run with no file (a trigger that found
    # nothing new), not one where a file could not be read, and not a Graph delta (only what changed).
    return files is not None and files["rejected"] == 0 and files["read"] > 0 and not _delta(conn, run)


def needs_plan(run: RunRow) -> bool:
    """A plan is computed when someone will read it or a safety rule depends on it."""
    cfg = config_of(run.config)
    return bool(
        run.dry_run
        or cfg.full_feed
        or cfg.deactivates_by_state
        or cfg.max_change is not None
        or cfg.max_deactivate is not None
        or cfg.max_create is not None
        or cfg.max_reject_share is not None
        or cfg.filters is not None
    )


#: People already in the store whose manager the feed changes (a new person's manager is no move).
MOVES = sql.SQL("c.old_id IS NOT NULL AND c.manager_uid IS NOT NULL AND c.manager_uid IS DISTINCT FROM c.old_manager")
#: Active people the feed's state column says are gone (``state = "userState"``: DELETED ...).
STATE_GONE = sql.SQL("c.old_active AND c.inactive")
#: People the feed brings for the first time already gone (ALM's DELETED): kept, inactive, and
#: counted as deactivated, not created (workers/connectors/users/load.py's insert).
ARRIVE_INACTIVE = sql.SQL("c.old_id IS NULL AND c.inactive")


def plan(conn: psycopg.Connection[Any], run: RunRow, sample: int = 5) -> dict[str, Any]:
    """What the load would do, from the classification, without writing to lms."""
    run_id = run.id
    cls = stage_table("cls", run_id)
    params = {"run": run_id, "conn": run.connection_id, "n": sample}
    conditions = {
        "creates": sql.SQL("c.old_id IS NULL AND NOT c.inactive"),
        "arrive_inactive": ARRIVE_INACTIVE,
        "updates": sql.SQL("c.changed"),
        "manager_moves": MOVES,
        "state_deactivations": STATE_GONE,
    }
    counts = store.fetch_one(
        conn,
        sql.SQL("SELECT {cols} FROM {cls} c").format(
            cols=sql.SQL(", ").join(
                sql.SQL("count(*) FILTER (WHERE {c}) AS {n}").format(c=c, n=sql.Identifier(n))
                for n, c in conditions.items()
            ),
            cls=cls,
        ),
    )
    assert counts is not None
    result: dict[str, Any] = {k: int(v) for k, v in counts.items()}
    for name, c in conditions.items():
        result[f"{name}_sample"] = [
            r["email"]
            for r in store.fetch_all(
                conn,
                sql.SQL("SELECT s.email FROM {cls} c JOIN {t} s ON s.key = c.key WHERE {c} LIMIT %(n)s").format(
                    cls=cls, t=stage_table("users", run_id), c=c
                ),
                params,
            )
        ]
    deactivating = deactivates(run, conn)
    # Deactivations by state count with those of a full feed, for the same thresholds and approval,
    # and, as the counts do, with the people who arrive already gone (no active person is lost:
    # the thresholds leave them out, ``_deactivating``).
    result["deactivations"] = result["state_deactivations"] + result["arrive_inactive"]
    result["deactivations_sample"] = [*result["state_deactivations_sample"], *result["arrive_inactive_sample"]]
    result.update(unreadable_rejected=0, unreadable_sample=[])
    result.update(_filtered(conn, run, params))
    if deactivating:
        result.update(_unreadable(conn, run, sample))
    where = gone_filter(run, deactivating)
    if where is not None:
        gone = sql.SQL("FROM lms.users u WHERE {f}").format(f=where)
        row = store.fetch_one(conn, sql.SQL("SELECT count(*) AS n {g}").format(g=gone), params)
        result["deactivations"] += int(row["n"]) if row else 0
        result["deactivations_sample"] += [
            r["email"] for r in store.fetch_all(conn, sql.SQL("SELECT u.email {g} LIMIT %(n)s").format(g=gone), params)
        ]
        result["deactivations_sample"] = result["deactivations_sample"][:sample]
    population = store.fetch_one(
        conn, "SELECT count(*) AS n FROM lms.users WHERE source_connection_id = %s AND active", (run.connection_id,)
    )
    result["population"] = int(population["n"]) if population else 0
    result["full_feed"] = config_of(run.config).full_feed
    result["deactivation_skipped"] = result["full_feed"] and not deactivating
    return result


def _filtered(conn: psycopg.Connection[Any], run: RunRow, params: dict[str, Any]) -> dict[str, Any]:
    """The people the filters left out, and the leavers among them: people of this connection,
    active, whom the filters now leave out (reported; deactivated only with filter_leavers)."""
    n = store.fetch_one(conn, sql.SQL("SELECT count(*) AS n FROM {}").format(stage_table("filtered", run.id)))
    gone = sql.SQL("FROM lms.users u WHERE {}").format(leavers(run.id))
    left = store.fetch_one(conn, sql.SQL("SELECT count(*) AS n {}").format(gone), params)
    sample = store.fetch_all(conn, sql.SQL("SELECT u.email {} ORDER BY u.email LIMIT %(n)s").format(gone), params)
    return {
        "filtered": int(n["n"]) if n else 0,
        "filter_leavers": int(left["n"]) if left else 0,
        "filter_leavers_sample": [r["email"] for r in sample],
    }


def exceeded_thresholds(run: RunRow, p: dict[str, Any]) -> list[str]:
    """Which safety thresholds the plan exceeds, as sentences for the admin."""
    cfg = config_of(run.config)
    max_deactivate, max_change = cfg.thresholds()
    reasons = []
    gone = _deactivating(p)
    if max_deactivate is not None and max_deactivate.exceeded(gone, p["population"]):
        reasons.append(f"it would deactivate {gone} of {p['population']} people (max_deactivate = {limit_text(cfg)})")
    reasons += unreadable_reason(p, "people")
    changes = p["updates"] + gone
    if max_change is not None and max_change.exceeded(changes, p["population"]):
        reasons.append(f"it would change {changes} of {p['population']} people (max_change = {cfg.max_change})")
    return reasons + growth_reasons(cfg, p)


def _deactivating(p: dict[str, Any]) -> int:
    """The active people the plan would deactivate: its deactivations but those who arrive gone."""
    return max(0, int(p["deactivations"]) - int(p.get("arrive_inactive", 0)))


#: The columns of a plan's people list (the console's CSV): what the admin needs to decide, no more.
PLANNED_PEOPLE_COLUMNS = ["change", "email", "first_name", "last_name", "external_id"]


def planned_people(conn: psycopg.Connection[Any], run: RunRow) -> list[dict[str, Any]]:
    """Every person the held plan would create or deactivate (not a sample), while the run's
    staged tables are there: e-mail, name and the feed's key, for the admin's decision."""
    cls, staged = stage_table("cls", run.id), stage_table("users", run.id)
    params = {"run": run.id, "conn": run.connection_id}
    rows = store.fetch_all(
        conn,
        sql.SQL(
            """SELECT CASE WHEN c.old_id IS NULL AND NOT c.inactive THEN 'create' ELSE 'deactivate' END AS change,
                      s.email, s.first_name, s.last_name, s.key AS external_id
               FROM {cls} c JOIN {t} s ON s.key = c.key
               WHERE c.old_id IS NULL OR ({gone}) ORDER BY 1, s.email"""
        ).format(cls=cls, t=staged, gone=STATE_GONE),
        params,
    )
    if deactivates(run, conn):
        rows += store.fetch_all(
            conn,
            sql.SQL(
                """SELECT 'deactivate' AS change, u.email, u.first_name, u.last_name, u.email_key AS external_id
                   FROM lms.users u WHERE {f} ORDER BY u.email"""
            ).format(f=deactivation_filter(run)),
            params,
        )
    return rows
