"""Kind ``hierarchy``, applied in dependency order: units, positions, people, manager links,
deactivations (full feeds); each step notes the people it changed in ``affected``, for whom the
load's assign step then evaluates the group rules again."""

from __future__ import annotations

from functools import partial
from typing import Any

import psycopg
from psycopg import sql

from workers import store
from workers.connectors import people_bulk
from workers.connectors.contract import Step
from workers.connectors.hierarchy.plan import gone_filter
from workers.connectors.hierarchy.transform import LABEL, TREES, config_of, store_table
from workers.connectors.people_filters import create_filtered
from workers.rows import RunRow
from workers.staging import stage_table


def apply_tree(conn: psycopg.Connection[Any], run: RunRow, part: str) -> dict[str, int]:
    """Units or positions: new ones inserted, then every parent link set (a parent may come later in
    the file), changed ones rewritten. Moving a unit moves its whole sub-tree with it."""
    run_id = run.id
    t, table, name = stage_table(part, run_id), store_table(part), {"org": "units", "pos": "positions"}[part]
    params = {"conn": run.connection_id}
    before = store.fetch_one(
        conn,
        sql.SQL(
            """SELECT count(*) FILTER (WHERE u.source_hash IS DISTINCT FROM s.row_hash OR NOT u.active) AS updated,
                   count(*) FILTER (WHERE u.parent_id IS DISTINCT FROM p.id) AS moved
            FROM {t} s JOIN {table} u ON u.external_id = s.key LEFT JOIN {table} p ON p.external_id = s.parent_key"""
        ).format(t=t, table=table),
    )
    created = conn.execute(
        sql.SQL(
            """INSERT INTO {table} (external_id, name, attributes, source_connection_id, source_hash)
            SELECT s.key, s.name, s.attrs, %(conn)s, s.row_hash FROM {t} s
            WHERE NOT EXISTS (SELECT 1 FROM {table} u WHERE u.external_id = s.key) ORDER BY s.key"""
        ).format(t=t, table=table),
        params,
    ).rowcount
    moved_ids = [
        r["id"]
        for r in store.fetch_all(
            conn,
            sql.SQL(
                """WITH m AS (
                    SELECT u.id, s.name, s.attrs, s.row_hash, p.id AS parent_id,
                           u.parent_id IS DISTINCT FROM p.id AS moved
                    FROM {t} s JOIN {table} u ON u.external_id = s.key
                    LEFT JOIN {table} p ON p.external_id = s.parent_key
                    WHERE u.source_hash IS DISTINCT FROM s.row_hash OR NOT u.active
                       OR u.parent_id IS DISTINCT FROM p.id)
                UPDATE {table} u SET name = m.name, attributes = m.attrs, parent_id = m.parent_id, active = true,
                       deactivated_at = NULL, source_connection_id = %(conn)s, source_hash = m.row_hash,
                       updated_at = clock_timestamp()
                FROM m WHERE u.id = m.id
                RETURNING u.id, m.moved"""
            ).format(t=t, table=table),
            params,
        )
        if r["moved"]
    ]
    if part == "org" and moved_ids:
        # Everyone in a moved sub-tree now sits under other units: the rules look at them again.
        conn.execute(
            sql.SQL(
                """WITH RECURSIVE sub(id) AS (
                    SELECT unnest(%(ids)s::bigint[])
                    UNION SELECT o.id FROM lms.org_units o JOIN sub ON o.parent_id = sub.id)
                INSERT INTO {affected} (user_id)
                SELECT u.id FROM lms.users u JOIN sub ON u.org_unit_id = sub.id ON CONFLICT DO NOTHING"""
            ).format(affected=stage_table("affected", run_id)),
            {"ids": moved_ids},
        )
    assert before is not None
    return {
        f"{name}_created": created,
        f"{name}_updated": int(before["updated"]),
        f"{name}_moved": int(before["moved"]),
    }


def apply_users(conn: psycopg.Connection[Any], run: RunRow) -> dict[str, int]:
    """People matched by id number (or, the first time, by e-mail: a person another connection
    created is taken over, not duplicated); placed in their unit and position."""
    run_id = run.id
    h, affected, c = stage_table("huser", run_id), stage_table("affected", run_id), stage_table("hcls", run_id)
    cfg = config_of(run.config)

    def keep(column: str) -> sql.Composed:
        template = sql.SQL("c.{c}") if cfg.empty_erases else sql.SQL("coalesce(c.{c}, u.{c})")
        return template.format(c=sql.Identifier(column))

    params = {"conn": run.connection_id}
    seq = store.fetch_one(conn, "SELECT pg_get_serial_sequence('lms.users', 'id') AS seq")
    assert seq is not None
    # The planner cannot know the materialized rows' keys are unique and sorts both sides of the
    # join of a person to their manager to disk for a merge join; hash joins fit in the load's
    # work_mem (as in users' classify; 1M people: 14.7 s against 11.1 s).
    conn.execute("SELECT set_config('enable_mergejoin', 'off', true)")
    # New people get their id now, drawn in key order, so each is inserted with their manager
    # (a person of this bundle or of the store) instead of being written a second time to link it.
    conn.execute(
        sql.SQL(
            """CREATE UNLOGGED TABLE IF NOT EXISTS {c} AS
            WITH matched AS MATERIALIZED (
                SELECT s.*, coalesce(ux.id, ue.id) AS old_id, o.id AS org_unit_id, p.id AS position_id
                FROM {h} s
                LEFT JOIN lms.users ux ON ux.external_id = s.key
                LEFT JOIN lms.users ue ON ux.id IS NULL AND ue.email_key = lower(s.email)
                LEFT JOIN lms.org_units o ON o.external_id = s.unit_key
                LEFT JOIN lms.positions p ON p.external_id = s.position_key),
            -- Only the keys are sorted to draw the ids (the whole rows went to disk: 1M people, 4 s).
            drawn AS MATERIALIZED (
                SELECT k.key, k.old_id, CASE WHEN k.old_id IS NULL THEN nextval({seq}::regclass) END AS uid
                FROM (SELECT key, old_id FROM matched ORDER BY key) k)
            SELECT m.*, d.uid,
                   CASE WHEN m.manager_key IS NOT NULL THEN coalesce(dm.uid, dm.old_id, mu.id) END AS manager_uid
            FROM matched m JOIN drawn d ON d.key = m.key
            LEFT JOIN drawn dm ON dm.key = m.manager_key
            LEFT JOIN lms.users mu ON dm.key IS NULL AND mu.external_id = m.manager_key"""
        ).format(c=c, h=h, seq=sql.Literal(seq["seq"]))
    )
    conn.execute("SELECT set_config('enable_mergejoin', 'on', true)")
    # Its statistics: the update below and the manager links see how many people were there already.
    conn.execute(sql.SQL("ANALYZE {}").format(c))
    created = _insert_new(conn, run, c)
    updated = store.fetch_one(
        conn,
        sql.SQL(
            """WITH upd AS (
                UPDATE lms.users u SET email = c.email, external_id = c.key,
                       first_name = {first_name}, last_name = {last_name}, attributes = {attributes},
                       org_unit_id = {org_unit_id}, position_id = {position_id},
                       active = true, deactivated_at = NULL, source_connection_id = %(conn)s,
                       source_hash = c.row_hash, updated_at = clock_timestamp()
                FROM {c} c
                WHERE u.id = c.old_id AND (u.source_hash IS DISTINCT FROM c.row_hash OR NOT u.active
                                           OR u.external_id IS DISTINCT FROM c.key)
                RETURNING u.id),
            a AS (INSERT INTO {affected} (user_id) SELECT id FROM upd ON CONFLICT DO NOTHING)
            SELECT count(*) AS n FROM upd"""
        ).format(
            first_name=keep("first_name"),
            last_name=keep("last_name"),
            attributes=sql.SQL("c.attrs") if cfg.empty_erases else sql.SQL("u.attributes || c.attrs"),
            org_unit_id=keep("org_unit_id"),
            position_id=keep("position_id"),
            c=c,
            affected=affected,
        ),
        params,
    )
    assert updated is not None
    counts = {"created": int(created["n"]), "updated": int(updated["n"])}
    if created["managed"]:  # linked as they were inserted: counted as apply_managers counts a link
        counts["manager_moves"] = int(created["managed"])
    return counts


_INSERT = sql.SQL(
    """INSERT INTO lms.users (id, email, external_id, first_name, last_name, attributes, org_unit_id,
                              position_id, manager_id, source_connection_id, source_hash)
    OVERRIDING SYSTEM VALUE
    SELECT c.uid, c.email, c.key, c.first_name, c.last_name, c.attrs, c.org_unit_id, c.position_id,
           c.manager_uid, %(conn)s, c.row_hash
    FROM {c} c WHERE c.old_id IS NULL ORDER BY c.uid
    {conflict}"""
)


def _insert_new(conn: psycopg.Connection[Any], run: RunRow, c: sql.Composed) -> dict[str, int]:
    """The new people, with their manager, in one plain INSERT ... SELECT (a first import of many:
    the e-mail and manager indexes built after the rows, people_bulk.py); noted in ``affected``.

    Another load may have created one of these people since they were matched (two feeds bringing
    the same new person at once). That is rare, so it is not paid for on every row (at 1M people,
    ``ON CONFLICT DO NOTHING ... RETURNING`` cost as much again as the insert): the plain insert runs
    in a savepoint, and only if it meets such a person (a unique violation) does it go again the
    careful way, the others matched again and updated by the caller, as an existing person is."""
    params = {"conn": run.connection_id}
    row = store.fetch_one(
        conn,
        sql.SQL("SELECT count(*) AS wanted, count(manager_uid) AS managed FROM {c} WHERE old_id IS NULL").format(c=c),
    )
    assert row is not None
    wanted, managed = int(row["wanted"]), int(row["managed"])
    plain = _INSERT.format(c=c, conflict=sql.SQL(""))
    # A savepoint of the step's own transaction (never a transaction of its own: the step commits).
    conn.execute("SAVEPOINT insert_people")
    try:
        if not people_bulk.insert_with_indexes_rebuilt(conn, wanted, plain, params):
            conn.execute(plain, params)
    except psycopg.errors.UniqueViolation:
        conn.execute("ROLLBACK TO SAVEPOINT insert_people")
        return _insert_adopting(conn, run, c)
    conn.execute("RELEASE SAVEPOINT insert_people")
    # Ids drawn in this transaction: none of them is noted yet (no ON CONFLICT to pay per row).
    conn.execute(
        sql.SQL("INSERT INTO {a} (user_id) SELECT uid FROM {c} WHERE old_id IS NULL").format(
            a=stage_table("affected", run.id), c=c
        )
    )
    return {"n": wanted, "managed": managed}


def _insert_adopting(conn: psycopg.Connection[Any], run: RunRow, c: sql.Composed) -> dict[str, int]:
    """The new people again, skipping those someone else created meanwhile, who are matched to
    that person (``_rematch``)."""
    created = store.fetch_one(
        conn,
        sql.SQL(
            """WITH ins AS ({insert}),
            a AS (INSERT INTO {affected} (user_id) SELECT id FROM ins ON CONFLICT DO NOTHING)
            SELECT count(*) AS n, count(manager_id) AS managed,
                   (SELECT count(*) FROM {c} WHERE old_id IS NULL) AS wanted FROM ins"""
        ).format(
            insert=_INSERT.format(c=c, conflict=sql.SQL("ON CONFLICT DO NOTHING RETURNING id, manager_id")),
            c=c,
            affected=stage_table("affected", run.id),
        ),
        {"conn": run.connection_id},
    )
    assert created is not None
    if created["n"] < created["wanted"]:
        _rematch(conn, c)
    return {"n": int(created["n"]), "managed": int(created["managed"])}


def _rematch(conn: psycopg.Connection[Any], c: sql.Composed) -> None:
    """New people another load inserted first: matched to that person (updated by the caller), and
    whoever was linked to the id drawn for them is linked to theirs."""
    moved = store.fetch_all(
        conn,
        sql.SQL(
            """WITH lost AS (
                SELECT c.key, c.uid AS drawn,
                       coalesce((SELECT u.id FROM lms.users u WHERE u.external_id = c.key),
                                (SELECT u.id FROM lms.users u WHERE u.email_key = lower(c.email))) AS id
                FROM {c} c WHERE c.old_id IS NULL AND NOT EXISTS (SELECT 1 FROM lms.users u WHERE u.id = c.uid))
            UPDATE {c} c SET old_id = l.id FROM lost l WHERE c.key = l.key RETURNING l.drawn, l.id"""
        ).format(c=c),
    )
    ids = {"drawn": [m["drawn"] for m in moved], "id": [m["id"] for m in moved]}
    swap = sql.SQL("SELECT * FROM unnest(%(drawn)s::bigint[], %(id)s::bigint[]) AS x(drawn, id)")
    conn.execute(
        sql.SQL("UPDATE {c} c SET manager_uid = x.id FROM ({swap}) x WHERE c.manager_uid = x.drawn").format(
            c=c, swap=swap
        ),
        ids,
    )
    conn.execute(
        sql.SQL("UPDATE lms.users u SET manager_id = x.id FROM ({swap}) x WHERE u.manager_id = x.drawn").format(
            swap=swap
        ),
        ids,
    )


def apply_managers(conn: psycopg.Connection[Any], run: RunRow) -> dict[str, int]:
    """Manager links by id number, once every person of the bundle exists. A person who changes
    manager takes their whole team with them: all of them are looked at again by the rules.
    People new in this run were inserted with their manager (``apply_users``): only those who
    were in the store already (``old_id``, matched again ones included) are looked at."""
    run_id = run.id
    h, affected = stage_table("hcls", run_id), stage_table("affected", run_id)
    erase = config_of(run.config).empty_erases
    row = store.fetch_one(
        conn,
        sql.SQL(
            """WITH RECURSIVE m AS (
                SELECT u.id, mg.id AS manager_id FROM {h} s
                JOIN lms.users u ON u.id = s.old_id
                LEFT JOIN lms.users mg ON mg.external_id = s.manager_key
                WHERE (s.manager_key IS NOT NULL OR %(erase)s) AND u.manager_id IS DISTINCT FROM mg.id
                  -- A manager the filters left out and the store does not have: the link is left as it is.
                  AND (mg.id IS NOT NULL OR s.manager_key IS NULL)),
            upd AS (UPDATE lms.users u SET manager_id = m.manager_id, updated_at = clock_timestamp()
                    FROM m WHERE u.id = m.id RETURNING u.id),
            team(id) AS (SELECT id FROM m UNION SELECT u.id FROM lms.users u JOIN team ON u.manager_id = team.id),
            a AS (INSERT INTO {affected} (user_id) SELECT id FROM team ON CONFLICT DO NOTHING)
            SELECT count(*) AS n FROM upd"""
        ).format(h=h, affected=affected),
        {"erase": erase},
    )
    return {"manager_moves": int(row["n"]) if row else 0}


def apply_deactivations(conn: psycopg.Connection[Any], run: RunRow) -> dict[str, int]:
    """Full feeds: what is missing is deactivated, never deleted; people who leave the filters too,
    with filter_leavers = "deactivate". A deactivated unit that still has active people is reported
    on the run, not emptied."""
    run_id = run.id
    create_filtered(conn, run_id)  # a run staged before filters were taken has none
    params = {"conn": run.connection_id, "run": run_id}
    counts: dict[str, int] = {}
    for part, name in (("org", "units"), ("pos", "positions"), ("user", "deactivated")):
        key = name if part == "user" else f"{name}_deactivated"
        counts[key] = 0
        gone = gone_filter(conn, run, part) if part in config_of(run.config).parts else None
        if gone is None:
            continue
        table = store_table(part)
        ids = [
            r["id"]
            for r in store.fetch_all(
                conn,
                sql.SQL(
                    """UPDATE {table} u SET active = false, deactivated_at = clock_timestamp(),
                           updated_at = clock_timestamp()
                    WHERE u.id IN (SELECT t.id FROM {gone}) RETURNING u.id"""
                ).format(table=table, gone=gone),
                params,
            )
        ]
        counts[key] = len(ids)
        if part == "user" and ids:
            conn.execute(
                sql.SQL("INSERT INTO {} (user_id) SELECT unnest(%s::bigint[]) ON CONFLICT DO NOTHING").format(
                    stage_table("affected", run_id)
                ),
                (ids,),
            )
        if ids and part != "user":
            column = "org_unit_id" if part == "org" else "position_id"
            label = LABEL[part]
            conn.execute(
                sql.SQL(
                    """INSERT INTO sync.row_errors (run_id, file_id, file_name, code, message, value, rejected)
                    SELECT %(run)s, rf.file_id, f.original_path, {code},
                           {the} || t.external_id || ' (' || t.name || ') is missing from the full feed and '
                           || 'was deactivated, but ' || count(u.id) || ' active people are still in it; move them '
                           || {move}, t.external_id, false
                    FROM {table} t JOIN lms.users u ON u.{column} = t.id AND u.active
                    CROSS JOIN LATERAL (
                        SELECT rf.file_id FROM sync.run_files rf WHERE rf.run_id = %(run)s ORDER BY rf.ordinal LIMIT 1
                    ) rf
                    JOIN sync.feed_files f ON f.id = rf.file_id
                    WHERE t.id = ANY(%(ids)s)
                    GROUP BY rf.file_id, f.original_path, t.external_id, t.name"""
                ).format(
                    code=sql.Literal(f"deactivated_{label}_has_people"),
                    the=sql.Literal(f"the {label} "),
                    move=sql.Literal(f"to another {label} in the user file"),
                    table=table,
                    column=sql.Identifier(column),
                ),
                {**params, "ids": ids},
            )
    return counts


def load_steps(conn: psycopg.Connection[Any], run: RunRow, *, whole: bool, batch_rows: int) -> list[Step]:
    parts = config_of(run.config).parts
    steps: list[Step] = [partial(apply_tree, part=p) for p in TREES if p in parts]
    if "user" in parts:
        steps += [apply_users, apply_managers]
    steps += [apply_deactivations, *([finish] if whole else [])]
    return steps


def finish(conn: psycopg.Connection[Any], run: RunRow) -> dict[str, int]:
    if "user" not in config_of(run.config).parts:
        return {}
    row = store.fetch_one(
        conn,
        sql.SQL("SELECT (SELECT count(*) FROM {}) AS n, (SELECT count(*) FROM {}) AS filtered").format(
            stage_table("huser", run.id), stage_table("filtered", run.id)
        ),
    )
    return {"valid": int(row["n"]) if row else 0, "filtered": int(row["filtered"]) if row else 0}
