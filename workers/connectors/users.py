"""Kind ``users``: one or more user CSVs merged into lms.users.

Everything per row happens in SQL, set-based: mapping, validation and the row hash in the
transform (one statement per chunk), and the merge in the load (one statement per step).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from schemas.connections import USER_CORE_ATTRIBUTES, Connection, connection_from_json
from workers import store
from workers.runs import stage_table

# Deliberately strict ASCII syntax check: what HR systems export and what mail servers accept.
EMAIL_RE = (
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)


def config_of(raw: dict[str, Any]) -> Connection:
    return connection_from_json(raw)


def raw_attributes(config: dict[str, Any]) -> list[str]:
    """The attributes a parse chunk keeps, in table-column order."""
    return list(config_of(config).imported_mapping)


def create_staging(conn: psycopg.Connection[Any], run_id: int, config: dict[str, Any]) -> None:
    conn.execute(
        sql.SQL(
            """CREATE UNLOGGED TABLE IF NOT EXISTS {} (
                 file_id bigint NOT NULL, line_no int NOT NULL, key text NOT NULL, email text NOT NULL,
                 first_name text, last_name text, manager_key text, attrs jsonb NOT NULL, row_hash text NOT NULL,
                 bucket smallint NOT NULL)"""
        ).format(stage_table("users", run_id))
    )


def create_raw_chunk(
    conn: psycopg.Connection[Any], run_id: int, file_id: int, chunk_no: int, config: dict[str, Any]
) -> sql.Composed:
    table = stage_table("raw", run_id, file_id, chunk_no)
    cols = sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(a)) for a in raw_attributes(config))
    conn.execute(sql.SQL("CREATE UNLOGGED TABLE {} (line_no int NOT NULL, {})").format(table, cols))
    return table


def copy_statement(table: sql.Composed, config: dict[str, Any]) -> sql.Composed:
    cols = sql.SQL(", ").join(sql.Identifier(a) for a in ["line_no", *raw_attributes(config)])
    return sql.SQL("COPY {} ({}) FROM STDIN").format(table, cols)


def _val(attribute: str, present: set[str], *, lower: bool = False) -> sql.Composable:
    if attribute not in present:
        return sql.SQL("NULL::text")
    expr = sql.SQL("nullif(btrim(r.{}), '')").format(sql.Identifier(attribute))
    return sql.SQL("lower({})").format(expr) if lower else expr


def transform_chunk(
    conn: psycopg.Connection[Any],
    run_id: int,
    file_id: int,
    chunk_no: int,
    config: dict[str, Any],
    file_name: str,
    columns: dict[str, dict[str, Any]],
) -> dict[str, int]:
    """Map, validate and hash one chunk into the run's typed staging table; bad rows become row errors."""
    conn_cfg = config_of(config)
    present = set(conn_cfg.imported_mapping)
    raw = stage_table("raw", run_id, file_id, chunk_no)
    profile = conn_cfg.profile_attributes
    attrs = (
        sql.SQL("jsonb_build_object({})").format(
            sql.SQL(", ").join(sql.SQL("{}, {}").format(sql.Literal(a), _val(a, present)) for a in profile)
        )
        if profile
        else sql.SQL("'{}'::jsonb")
    )
    required_extra = [a for a in conn_cfg.required if a != "email" and a in present]
    missing_cols = sql.SQL("").join(
        sql.SQL(", ({} IS NULL) AS {}").format(_val(a, present), sql.Identifier(f"miss_{a}")) for a in required_extra
    )
    missing_any = (
        sql.SQL(" OR ").join(sql.SQL("c.{}").format(sql.Identifier(f"miss_{a}")) for a in required_extra)
        if required_extra
        else sql.SQL("false")
    )

    def col(attr: str) -> tuple[int | None, str | None]:
        c = columns.get(attr)
        return (c["no"], c["column"]) if c else (None, None)

    e_no, e_name = col("email")
    m_no, m_name = col("manager")
    required_rows = [
        sql.SQL("(c.{}, {}, {}, 'required', {}, NULL::text, true)").format(
            sql.Identifier(f"miss_{a}"),
            sql.Literal(col(a)[0]),
            sql.Literal(col(a)[1]),
            sql.Literal(f"{a} is empty but required; fill it in and rerun"),
        )
        for a in required_extra
    ]
    values = sql.SQL(",\n").join(
        [
            sql.SQL(
                "(c.no_email, {e_no}, {e_name}, 'required', "
                "'the e-mail is empty; every user needs an e-mail address: fill it in and rerun', NULL::text, true)"
            ).format(e_no=sql.Literal(e_no), e_name=sql.Literal(e_name)),
            sql.SQL(
                "(c.bad_email, {e_no}, {e_name}, 'invalid_email', "
                "'this is not a valid e-mail address (name@example.com); correct it and rerun', c.email, true)"
            ).format(e_no=sql.Literal(e_no), e_name=sql.Literal(e_name)),
            sql.SQL(
                "(c.bad_manager AND c.ok, {m_no}, {m_name}, 'invalid_manager', "
                "'the manager must be given as an e-mail address; the user was imported without a manager "
                "change', c.manager_raw, false)"
            ).format(m_no=sql.Literal(m_no), m_name=sql.Literal(m_name)),
            sql.SQL(
                "(c.self_manager AND c.ok, {m_no}, {m_name}, 'self_manager', "
                "'a user cannot be their own manager; the user was imported without a manager change', "
                "c.manager_raw, false)"
            ).format(m_no=sql.Literal(m_no), m_name=sql.Literal(m_name)),
            *required_rows,
        ]
    )
    query = sql.SQL(
        """
        WITH src AS (
            SELECT r.line_no, coalesce(btrim(r.{email}), '') AS email,
                   {first_name} AS first_name, {last_name} AS last_name, {manager} AS manager_raw,
                   {attrs} AS attrs {missing_cols}
            FROM {raw} r
        ), chk AS (
            SELECT s.*, s.email = '' AS no_email,
                   s.email <> '' AND (s.email !~ %(re)s OR length(s.email) > 254) AS bad_email,
                   s.manager_raw IS NOT NULL AND s.manager_raw !~ %(re)s AS bad_manager,
                   s.manager_raw IS NOT NULL AND s.manager_raw = lower(s.email) AS self_manager
            FROM src s
        ), checked AS (
            SELECT c.*, NOT (c.no_email OR c.bad_email OR {missing_any}) AS ok FROM chk c
        ), errs AS (
            INSERT INTO sync.row_errors (run_id, file_id, file_name, line, column_no, column_name, code, message,
                                         value, rejected)
            SELECT %(run)s, %(file)s, %(fname)s, c.line_no, e.col, e.colname, e.code, e.msg, left(e.val, 200), e.rej
            FROM checked c CROSS JOIN LATERAL (VALUES {values}) AS e(failed, col, colname, code, msg, val, rej)
            WHERE e.failed
            RETURNING rejected
        ), ins AS (
            INSERT INTO {typed} (file_id, line_no, key, email, first_name, last_name, manager_key, attrs, row_hash,
                                 bucket)
            SELECT %(file)s, c.line_no, lower(c.email), c.email, c.first_name, c.last_name,
                   CASE WHEN c.bad_manager OR c.self_manager THEN NULL ELSE c.manager_raw END,
                   c.attrs,
                   md5(concat_ws(chr(31), c.email, c.first_name, c.last_name, c.manager_raw, c.attrs::text)),
                   (hashtext(lower(c.email)) & 255)::smallint
            FROM checked c WHERE c.ok
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM ins) AS valid, (SELECT count(*) FROM errs WHERE rejected) AS rejected,
               (SELECT count(*) FROM errs WHERE NOT rejected) AS warnings
        """
    ).format(
        email=sql.Identifier("email"),
        first_name=_val("first_name", present),
        last_name=_val("last_name", present),
        manager=_val("manager", present, lower=True),
        attrs=attrs,
        missing_cols=missing_cols,
        missing_any=missing_any,
        raw=raw,
        values=values,
        typed=stage_table("users", run_id),
    )
    row = store.fetch_one(conn, query, {"re": EMAIL_RE, "run": run_id, "file": file_id, "fname": file_name})
    assert row is not None
    conn.execute(sql.SQL("DROP TABLE {}").format(raw))
    return {k: int(v) for k, v in row.items()}


BUCKETS = 256  # staged rows are spread over buckets by key; a batch is a range of buckets


def prepare(conn: psycopg.Connection[Any], run: dict[str, Any]) -> int:
    """Reject people who appear more than once in the run (all their rows). Idempotent."""
    run_id = int(run["id"])
    cfg = config_of(run["config"])
    typed = stage_table("users", run_id)
    conn.execute(sql.SQL("ANALYZE {}").format(typed))
    dup = store.fetch_one(
        conn,
        sql.SQL(
            """
            WITH d AS (SELECT key FROM {t} GROUP BY key HAVING count(*) > 1),
            occ AS (
                SELECT s.file_id, s.line_no, s.key, s.email, f.original_path AS fname,
                       (rf.columns -> 'email' ->> 'no')::int AS col
                FROM {t} s JOIN d USING (key)
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
            del AS (DELETE FROM {t} s USING d WHERE s.key = d.key RETURNING 1)
            SELECT (SELECT count(*) FROM errs) AS duplicates
            """
        ).format(t=typed),
        {"run": run_id, "email_col": cfg.mapping["email"]},
    )
    assert dup is not None
    return int(dup["duplicates"])


def _deactivation_filter(run: dict[str, Any]) -> sql.Composed:
    """Active people of this connection missing from the feed (one anti-join). People whose key the
    run saw in a rejected row are kept: being refused is not being gone."""
    return sql.SQL(
        """u.source_connection_id = %(conn)s AND u.active
           AND NOT EXISTS (SELECT 1 FROM {t} s WHERE s.key = u.email_key)
           AND NOT EXISTS (SELECT 1 FROM sync.row_errors e
                           WHERE e.run_id = %(run)s AND e.rejected AND lower(e.value) = u.email_key)"""
    ).format(t=stage_table("users", int(run["id"])))


def _deactivates(run: dict[str, Any], conn: psycopg.Connection[Any]) -> bool:
    if not config_of(run["config"]).full_feed:
        return False
    files = store.fetch_one(
        conn,
        """SELECT count(*) FILTER (WHERE status = 'rejected') AS rejected,
                  count(*) FILTER (WHERE status = 'parsed' AND rows_read > 0) AS read
           FROM sync.run_files WHERE run_id = %s""",
        (run["id"],),
    )
    # Only a run that read a feed may say who is gone: not a run with no file (a trigger that found
    # nothing new), and not one where a file could not be read.
    return files is not None and files["rejected"] == 0 and files["read"] > 0


def plan(conn: psycopg.Connection[Any], run: dict[str, Any], sample: int = 5) -> dict[str, Any]:
    """What the load would do, computed without writing to lms: counts and a sample of each."""
    run_id = int(run["id"])
    typed = stage_table("users", run_id)
    params = {"run": run_id, "conn": run["connection_id"], "n": sample}
    deactivating = _deactivates(run, conn)
    parts = {
        "creates": sql.SQL(
            "SELECT s.email FROM {t} s WHERE NOT EXISTS (SELECT 1 FROM lms.users u WHERE u.email_key = s.key)"
        ).format(t=typed),
        "updates": sql.SQL(
            "SELECT s.email FROM {t} s JOIN lms.users u ON u.email_key = s.key "
            "WHERE u.source_hash IS DISTINCT FROM s.row_hash OR NOT u.active"
        ).format(t=typed),
        "deactivations": sql.SQL("SELECT u.email FROM lms.users u WHERE {f}").format(f=_deactivation_filter(run))
        if deactivating
        else sql.SQL("SELECT NULL::text WHERE false"),
        "manager_moves": sql.SQL(
            """SELECT s.email FROM {t} s LEFT JOIN lms.users u ON u.email_key = s.key
               LEFT JOIN lms.users m ON m.email_key = s.manager_key
               WHERE s.manager_key IS NOT NULL AND (u.id IS NULL OR m.id IS NULL OR u.manager_id IS DISTINCT FROM m.id)
                 AND (m.id IS NOT NULL OR EXISTS (SELECT 1 FROM {t} x WHERE x.key = s.manager_key))"""
        ).format(t=typed),
    }
    result: dict[str, Any] = {}
    for name, query in parts.items():
        row = store.fetch_one(conn, sql.SQL("SELECT count(*) AS n FROM ({q}) x").format(q=query), params)
        result[name] = int(row["n"]) if row else 0
        result[f"{name}_sample"] = [
            r["email"]
            for r in store.fetch_all(
                conn, sql.SQL("SELECT * FROM ({q}) x(email) ORDER BY 1 LIMIT %(n)s").format(q=query), params
            )
        ]
    population = store.fetch_one(
        conn, "SELECT count(*) AS n FROM lms.users WHERE source_connection_id = %s AND active", (run["connection_id"],)
    )
    result["population"] = int(population["n"]) if population else 0
    result["full_feed"] = config_of(run["config"]).full_feed
    result["deactivation_skipped"] = result["full_feed"] and not deactivating
    return result


def exceeded_thresholds(run: dict[str, Any], p: dict[str, Any]) -> list[str]:
    """Which safety thresholds the plan exceeds, as sentences for the admin."""
    max_deactivate, max_change = config_of(run["config"]).thresholds()
    reasons = []
    if max_deactivate is not None and max_deactivate.exceeded(p["deactivations"], p["population"]):
        reasons.append(
            f"it would deactivate {p['deactivations']} of {p['population']} people "
            f"(max_deactivate = {config_of(run['config']).max_deactivate})"
        )
    changes = p["updates"] + p["deactivations"]
    if max_change is not None and max_change.exceeded(changes, p["population"]):
        reasons.append(
            f"it would change {changes} of {p['population']} people "
            f"(max_change = {config_of(run['config']).max_change})"
        )
    return reasons


def batch_ranges(conn: psycopg.Connection[Any], run: dict[str, Any], batch_rows: int) -> list[tuple[int, int]]:
    """Bucket ranges of about batch_rows staged rows each (one range: the whole run in one go)."""
    row = store.fetch_one(conn, sql.SQL("SELECT count(*) AS n FROM {t}").format(t=stage_table("users", run["id"])))
    n = int(row["n"]) if row else 0
    count = max(1, min(BUCKETS, -(-n // batch_rows)))
    edges = [round(i * BUCKETS / count) for i in range(count + 1)]
    return [(edges[i], edges[i + 1] - 1) for i in range(count)]


def ensure_bucket_index(conn: psycopg.Connection[Any], run_id: int) -> None:
    conn.execute(
        sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (bucket)").format(
            sql.Identifier(f"users_{run_id}_bucket"), stage_table("users", run_id)
        )
    )


def apply_people(conn: psycopg.Connection[Any], run: dict[str, Any], lo: int, hi: int) -> dict[str, int]:
    """Insert new people and update changed ones whose key falls in buckets lo..hi."""
    cfg = config_of(run["config"])
    typed = stage_table("users", int(run["id"]))
    params = {"conn": run["connection_id"], "lo": lo, "hi": hi}
    created = conn.execute(
        sql.SQL(
            """INSERT INTO lms.users (email, first_name, last_name, attributes, source_connection_id, source_hash)
               SELECT s.email, s.first_name, s.last_name, jsonb_strip_nulls(s.attrs), %(conn)s, s.row_hash
               FROM {t} s WHERE s.bucket BETWEEN %(lo)s AND %(hi)s
                 AND NOT EXISTS (SELECT 1 FROM lms.users u WHERE u.email_key = s.key)"""
        ).format(t=typed),
        params,
    ).rowcount
    keep = sql.SQL("coalesce(s.{c}, u.{c})") if not cfg.empty_erases else sql.SQL("s.{c}")
    attributes = (
        sql.SQL("u.attributes || jsonb_strip_nulls(s.attrs)")
        if not cfg.empty_erases
        else sql.SQL("(u.attributes - {keys}) || jsonb_strip_nulls(s.attrs)").format(
            keys=sql.Literal(cfg.profile_attributes)
        )
    )
    updated = conn.execute(
        sql.SQL(
            """UPDATE lms.users u SET email = s.email, first_name = {fn}, last_name = {ln},
                      attributes = {attributes}, active = true, deactivated_at = NULL,
                      source_connection_id = %(conn)s, source_hash = s.row_hash, updated_at = clock_timestamp()
               FROM {t} s
               WHERE s.bucket BETWEEN %(lo)s AND %(hi)s AND u.email_key = s.key
                 AND (u.source_hash IS DISTINCT FROM s.row_hash OR NOT u.active)"""
        ).format(
            t=typed,
            fn=keep.format(c=sql.Identifier("first_name")),
            ln=keep.format(c=sql.Identifier("last_name")),
            attributes=attributes,
        ),
        params,
    ).rowcount
    return {"created": created, "updated": updated}


def apply_managers(conn: psycopg.Connection[Any], run: dict[str, Any], lo: int, hi: int) -> dict[str, int]:
    """Manager links, after every person of the run exists."""
    moved = conn.execute(
        sql.SQL(
            """UPDATE lms.users u SET manager_id = m.id, updated_at = clock_timestamp()
               FROM {t} s JOIN lms.users m ON m.email_key = s.manager_key
               WHERE s.bucket BETWEEN %(lo)s AND %(hi)s AND u.email_key = s.key AND s.manager_key IS NOT NULL
                 AND u.manager_id IS DISTINCT FROM m.id"""
        ).format(t=stage_table("users", int(run["id"]))),
        {"lo": lo, "hi": hi},
    ).rowcount
    return {"manager_moves": moved}


def apply_deactivations(conn: psycopg.Connection[Any], run: dict[str, Any]) -> dict[str, int]:
    if not _deactivates(run, conn):
        return {"deactivated": 0}
    n = conn.execute(
        sql.SQL(
            "UPDATE lms.users u SET active = false, deactivated_at = clock_timestamp(), "
            "updated_at = clock_timestamp() WHERE {f}"
        ).format(f=_deactivation_filter(run)),
        {"run": run["id"], "conn": run["connection_id"]},
    ).rowcount
    return {"deactivated": n}


def finish(conn: psycopg.Connection[Any], run: dict[str, Any]) -> dict[str, int]:
    """Row warnings for managers nobody has, once every person of the run is in."""
    run_id = int(run["id"])
    typed = stage_table("users", run_id)
    unknown = conn.execute(
        sql.SQL(
            """INSERT INTO sync.row_errors (run_id, file_id, file_name, line, column_no, column_name, code, message,
                                            value, rejected)
               SELECT %(run)s, s.file_id, f.original_path, s.line_no, (rf.columns -> 'manager' ->> 'no')::int,
                      rf.columns -> 'manager' ->> 'column', 'unknown_manager',
                      'no user has this manager e-mail; the user was imported without a manager change: add the '
                      || 'manager to the feed or correct the address', s.manager_key, false
               FROM {t} s
               JOIN sync.feed_files f ON f.id = s.file_id
               JOIN sync.run_files rf ON rf.run_id = %(run)s AND rf.file_id = s.file_id
               WHERE s.manager_key IS NOT NULL
                 AND NOT EXISTS (SELECT 1 FROM lms.users m WHERE m.email_key = s.manager_key)"""
        ).format(t=typed),
        {"run": run_id},
    ).rowcount
    valid = store.fetch_one(conn, sql.SQL("SELECT count(*) AS n FROM {t}").format(t=typed))
    return {"unknown_managers": unknown, "valid": int(valid["n"]) if valid else 0}


__all__ = ["USER_CORE_ATTRIBUTES", "apply_people", "create_staging", "plan", "prepare", "transform_chunk"]
