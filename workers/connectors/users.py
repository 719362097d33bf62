"""Kind ``users``: one or more user CSVs merged into lms.users.

Everything per row happens in SQL, set-based: mapping, validation and the row hash in the
transform (one statement per chunk), and the merge in the load (one statement per step).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from functools import partial
from typing import Any

import psycopg
import structlog
from psycopg import sql

from schemas.connections import USER_CORE_ATTRIBUTES, Connection, connection_from_json
from schemas.providers import FileSpec
from schemas.settings import get_settings
from workers import store
from workers.connectors.checks import Chunk, jsonb_object, row_hash
from workers.staging import stage_table

log = structlog.get_logger(__name__)

# A strict ASCII syntax check (what HR systems export and mail servers accept), in two cheap
# patterns: PostgreSQL's regex engine is three times slower on one pattern with bounded repeats.
EMAIL_RE = r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$"
EMAIL_BAD_DOTS = r"^\.|\.\.|\.@|@-|-\.|\.-|-$"


def config_of(raw: dict[str, Any]) -> Connection:
    return connection_from_json(raw)


def file_spec(config: dict[str, Any], file_name: str) -> FileSpec:
    """Every file of a users connection is a user feed with the connection's mapping."""
    mapping = config_of(config).imported_mapping
    return FileSpec("users", "csv", mapping, frozenset(mapping))


def create_staging(conn: psycopg.Connection[Any], run_id: int, config: dict[str, Any]) -> None:
    """The run's typed rows (people with something to do), the keys of the rows that are
    already in the store as they are (``same``: read, not validated or staged again), and the
    keys of rejected rows whose person could be read (``kept``: being refused is not being gone)."""
    conn.execute(
        sql.SQL(
            """CREATE UNLOGGED TABLE IF NOT EXISTS {} (
                 file_id bigint NOT NULL, line_no int NOT NULL, key text NOT NULL, email text NOT NULL,
                 first_name text, last_name text, manager_key text, attrs jsonb NOT NULL, row_hash text NOT NULL)"""
        ).format(stage_table("users", run_id))
    )
    conn.execute(
        sql.SQL(
            "CREATE UNLOGGED TABLE IF NOT EXISTS {} (file_id bigint NOT NULL, line_no int NOT NULL, key text NOT NULL)"
        ).format(stage_table("same", run_id))
    )
    conn.execute(
        sql.SQL(
            "CREATE UNLOGGED TABLE IF NOT EXISTS {} (file_id bigint NOT NULL, line_no int NOT NULL, key text NOT NULL)"
        ).format(stage_table("kept", run_id))
    )


def _source_hash(cfg: Connection) -> str:
    """SQL for a raw row's hash (``r``: a raw chunk row), as kept in lms.users.source_hash. Over the
    raw text, so a row can be compared with the store before anything else is done with it: a row
    whose hash matches was valid when it was stored and reads the same now. The seed is the
    connection's import settings: changing the mapping, the required attributes or empty_erases
    makes every row new to the comparison."""
    attributes = ["email", *(a for a in ("first_name", "last_name", "manager") if a in cfg.imported_mapping)]
    attributes += cfg.profile_attributes
    settings = json.dumps([cfg.imported_mapping, sorted(cfg.required), cfg.empty_erases], sort_keys=True)
    return row_hash(*(f"r.{sql.Identifier(a).as_string(None)}" for a in attributes), seed=zlib.crc32(settings.encode()))


def _skip_same(conn: psycopg.Connection[Any], chunk: Chunk, cfg: Connection, source_hash: str) -> int:
    """Move the chunk's rows that match an active person's stored hash (and whose manager, if any,
    is linked) to the run's ``same`` keys, out of the raw chunk. One index probe per row (a LATERAL
    with LIMIT): a hash join would read the whole store for each chunk."""
    manager_empty = "btrim(r.manager) = ''" if "manager" in cfg.imported_mapping else "true"
    return conn.execute(
        sql.SQL(
            """WITH same AS (
                   INSERT INTO {same} (file_id, line_no, key)
                   SELECT %(file)s, r.line_no, u.email_key
                   FROM {raw} r
                   CROSS JOIN LATERAL (
                       SELECT u.email_key FROM lms.users u
                       WHERE u.email_key = lower(btrim(r.email)) AND u.active AND u.source_hash = {hash}
                         AND ({manager_empty} OR u.manager_id IS NOT NULL)
                       LIMIT 1) u
                   RETURNING line_no)
               DELETE FROM {raw} r USING same s WHERE r.line_no = s.line_no"""
        ).format(
            same=stage_table("same", chunk.run_id),
            raw=stage_table("raw", chunk.run_id, chunk.file_id, chunk.chunk_no),
            hash=sql.SQL(source_hash),
            manager_empty=sql.SQL(manager_empty),
        ),
        {"file": chunk.file_id},
    ).rowcount


def _val(attribute: str, present: set[str], *, lower: bool = False) -> sql.Composable:
    if attribute not in present:
        return sql.SQL("NULL::text")
    expr = sql.SQL("nullif(btrim(r.{}), '')").format(sql.Identifier(attribute))
    return sql.SQL("lower({})").format(expr) if lower else expr


def transform_chunk(conn: psycopg.Connection[Any], chunk: Chunk, config: dict[str, Any]) -> dict[str, int]:
    """Map, validate and hash one chunk into the run's typed staging table; bad rows become row
    errors. Rows already in the store as they are go no further than their key."""
    run_id, file_id, file_name, columns = chunk.run_id, chunk.file_id, chunk.file_name, chunk.columns
    chunk_no = chunk.chunk_no
    conn_cfg = config_of(config)
    source_hash = _source_hash(conn_cfg)
    same = _skip_same(conn, chunk, conn_cfg, source_hash)
    present = set(conn_cfg.imported_mapping)
    raw = stage_table("raw", run_id, file_id, chunk_no)
    profile = conn_cfg.profile_attributes
    attrs = sql.SQL(jsonb_object([(sql.Literal(a).as_string(None), _val(a, present).as_string(None)) for a in profile]))
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
    # Column names are the file's text: they travel as parameters, never inside the statement,
    # where a '%' ("FTE %") would read as a placeholder.
    names = {"e_name": e_name, "m_name": m_name, **{f"name_{a}": col(a)[1] for a in required_extra}}
    required_rows = [
        sql.SQL("(c.{}, {}, {}::text, 'required', {}, NULL::text, true)").format(
            sql.Identifier(f"miss_{a}"),
            sql.Literal(col(a)[0]),
            sql.Placeholder(f"name_{a}"),
            sql.Literal(f"{a} is empty but required; fill it in and rerun"),
        )
        for a in required_extra
    ]
    values = sql.SQL(",\n").join(
        [
            sql.SQL(
                "(c.no_email, {e_no}, {e_name}::text, 'required', "
                "'the e-mail is empty; every user needs an e-mail address: fill it in and rerun', NULL::text, true)"
            ).format(e_no=sql.Literal(e_no), e_name=sql.Placeholder("e_name")),
            sql.SQL(
                "(c.bad_email, {e_no}, {e_name}::text, 'invalid_email', "
                "'this is not a valid e-mail address (name@example.com); correct it and rerun', c.email, true)"
            ).format(e_no=sql.Literal(e_no), e_name=sql.Placeholder("e_name")),
            sql.SQL(
                "(c.self_manager AND c.ok, {m_no}, {m_name}::text, 'self_manager', "
                "'a user cannot be their own manager; the user was imported without a manager change', "
                "c.manager_raw, false)"
            ).format(m_no=sql.Literal(m_no), m_name=sql.Placeholder("m_name")),
            *required_rows,
        ]
    )
    query = sql.SQL(
        """
        WITH src AS (
            SELECT r.line_no, coalesce(btrim(r.{email}), '') AS email,
                   {first_name} AS first_name, {last_name} AS last_name, {manager} AS manager_raw,
                   {attrs} AS attrs, {row_hash} AS row_hash {missing_cols}
            FROM {raw} r
        ), chk AS (
            SELECT s.*, s.email = '' AS no_email,
                   s.email <> '' AND (s.email !~ %(re)s OR s.email ~ %(dots)s OR length(s.email) > 254) AS bad_email,
                   s.manager_raw IS NOT NULL AND s.manager_raw = lower(s.email) AS self_manager
            FROM src s
        ), checked AS (
            SELECT c.*, NOT (c.no_email OR c.bad_email OR {missing_any}) AS ok FROM chk c
        ), errs AS (
            INSERT INTO sync.row_errors (run_id, file_id, file_name, line, column_no, column_name, code, message,
                                         value, rejected)
            SELECT %(run)s, %(file)s, %(fname)s, c.line_no, e.col, e.colname, e.code, e.msg, left(e.val, 200), e.rej
            -- Only rows with something to report meet the per-check VALUES list: a clean row costs nothing here.
            FROM (SELECT * FROM checked WHERE NOT ok OR self_manager) c
            CROSS JOIN LATERAL (VALUES {values}) AS e(failed, col, colname, code, msg, val, rej)
            WHERE e.failed
            RETURNING rejected
        ), ins AS (
            INSERT INTO {typed} (file_id, line_no, key, email, first_name, last_name, manager_key, attrs, row_hash)
            SELECT %(file)s, c.line_no, lower(c.email), c.email, c.first_name, c.last_name,
                   -- A manager that is not an e-mail finds nobody in the load and is reported there, with
                   -- the few other unresolved ones: a regex on every row here cost a third of the transform.
                   CASE WHEN c.self_manager THEN NULL ELSE c.manager_raw END,
                   c.attrs, c.row_hash
            FROM checked c WHERE c.ok
            RETURNING 1
        ), kept AS (
            -- A row refused for another reason than its e-mail still names its person: they are kept.
            INSERT INTO {kept} (file_id, line_no, key)
            SELECT %(file)s, c.line_no, lower(c.email) FROM checked c
            WHERE NOT c.ok AND NOT c.no_email AND NOT c.bad_email
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
        # The same hash _skip_same compared, kept as the person's source_hash.
        row_hash=sql.SQL(source_hash),
        missing_cols=missing_cols,
        missing_any=missing_any,
        raw=raw,
        values=values,
        typed=stage_table("users", run_id),
        kept=stage_table("kept", run_id),
    )
    row = store.fetch_one(
        conn,
        query,
        {"re": EMAIL_RE, "dots": EMAIL_BAD_DOTS, "run": run_id, "file": file_id, "fname": file_name, **names},
    )
    assert row is not None
    conn.execute(sql.SQL("DROP TABLE {}").format(raw))
    counts = {k: int(v) for k, v in row.items()}
    counts["valid"] += same
    return counts


Step = Callable[[psycopg.Connection[Any], dict[str, Any]], dict[str, int]]

BUCKETS = 256  # the classified rows are cut into this many hash buckets of the key; a batch is a range of them


def prepare(conn: psycopg.Connection[Any], run: dict[str, Any]) -> int:
    """Reject people who appear more than once in the run (all their rows, staged or same). Idempotent."""
    run_id = int(run["id"])
    cfg = config_of(run["config"])
    typed, same = stage_table("users", run_id), stage_table("same", run_id)
    # A file rejected after some of its chunks were transformed (a workbook broken half-way):
    # nothing of it is imported, and its keys protect nobody.
    for table in (typed, same):
        conn.execute(
            sql.SQL(
                """DELETE FROM {} s USING sync.run_files rf
                   WHERE rf.run_id = %s AND rf.file_id = s.file_id AND rf.status <> 'parsed'"""
            ).format(table),
            (run_id,),
        )
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


def classify(conn: psycopg.Connection[Any], run: dict[str, Any]) -> None:
    """One hash join of the run's keys with the store, keeping only the keys with work to do: new
    people (with an id drawn from the sequence now), changed people, and people whose manager is
    not linked yet, each with their manager's id (a person of this feed, or of the store). A person
    whose row hash matches the store and whose manager is linked goes no further: on a daily feed
    that is ninety per cent of the rows. The table is narrow (keys and ids): the steps read the
    staged values by key, so the run's wide rows are written once, by the transform."""
    run_id = int(run["id"])
    # Looked up once: as a function call inside the statement it would run once per row.
    seq = store.fetch_one(conn, "SELECT pg_get_serial_sequence('lms.users', 'id') AS seq")
    assert seq is not None
    conn.execute(
        sql.SQL(
            """CREATE UNLOGGED TABLE IF NOT EXISTS {cls} AS
               WITH work AS MATERIALIZED (
                   -- Materialized: nextval must run once per row, whatever the joins below do.
                   SELECT s.key, s.manager_key, u.id AS old_id, u.manager_id AS old_manager,
                          u.id IS NOT NULL AND (u.source_hash IS DISTINCT FROM s.row_hash OR NOT u.active)
                            AS changed,
                          coalesce(u.id, nextval({seq}::regclass)) AS uid,
                          -- Batches are hash buckets of the key: no sort of the run's rows to cut them.
                          (hashtext(s.key) & {mask})::smallint AS kbucket
                   FROM {t} s LEFT JOIN lms.users u ON u.email_key = s.key
                   WHERE u.id IS NULL OR u.source_hash IS DISTINCT FROM s.row_hash OR NOT u.active
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
    conn.execute(sql.SQL("ANALYZE {}").format(stage_table("cls", run_id)))


def _deactivation_filter(run: dict[str, Any]) -> sql.Composed:
    """Active people of this connection missing from the feed (one anti-join). People whose key the
    run saw in a rejected row are kept: being refused is not being gone."""
    run_id = int(run["id"])
    return sql.SQL(
        """u.source_connection_id = %(conn)s AND u.active
           AND NOT EXISTS (SELECT 1 FROM {t} s WHERE s.key = u.email_key)
           AND NOT EXISTS (SELECT 1 FROM {same} s WHERE s.key = u.email_key)
           AND NOT EXISTS (SELECT 1 FROM {kept} s WHERE s.key = u.email_key)"""
    ).format(t=stage_table("users", run_id), same=stage_table("same", run_id), kept=stage_table("kept", run_id))


def _unreadable(conn: psycopg.Connection[Any], run: dict[str, Any], sample: int) -> dict[str, Any]:
    """Rejected rows whose person could not be read (a broken line, bytes not in the encoding, no
    valid e-mail): anyone missing from the feed may be one of them. Their places, never values."""
    return unreadable_rows(conn, int(run["id"]), stage_table("kept", int(run["id"])), sample)


def unreadable_rows(
    conn: psycopg.Connection[Any], run_id: int, kept: sql.Composable, sample: int, files: list[int] | None = None
) -> dict[str, Any]:
    """How many rejected rows of the run (of ``files``, if given) have no key in ``kept`` (a table
    with file_id and line_no), with the first places as 'file line N'."""
    rows = sql.SQL(
        """SELECT DISTINCT e.file_name, e.line FROM sync.row_errors e
           WHERE e.run_id = %(run)s AND e.rejected AND e.line IS NOT NULL
             AND (%(files)s::bigint[] IS NULL OR e.file_id = ANY(%(files)s::bigint[]))
             AND NOT EXISTS (SELECT 1 FROM {kept} k WHERE k.file_id = e.file_id AND k.line_no = e.line)"""
    ).format(kept=kept)
    params = {"run": run_id, "files": files, "n": sample}
    n = store.fetch_one(conn, sql.SQL("SELECT count(*) AS n FROM ({}) r").format(rows), params)
    places = store.fetch_all(
        conn, sql.SQL("SELECT file_name, line FROM ({}) r ORDER BY 1, 2 LIMIT %(n)s").format(rows), params
    )
    return {
        "unreadable_rejected": int(n["n"]) if n else 0,
        "unreadable_sample": [f"{p['file_name']} line {p['line']}" for p in places],
    }


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


def needs_plan(run: dict[str, Any]) -> bool:
    """A plan is computed when someone will read it or a safety rule depends on it."""
    cfg = config_of(run["config"])
    return bool(run["dry_run"] or cfg.full_feed or cfg.max_change is not None or cfg.max_deactivate is not None)


_MOVES = "c.manager_uid IS NOT NULL AND c.manager_uid IS DISTINCT FROM c.old_manager"


def plan(conn: psycopg.Connection[Any], run: dict[str, Any], sample: int = 5) -> dict[str, Any]:
    """What the load would do, from the classification, without writing to lms."""
    run_id = int(run["id"])
    cls = stage_table("cls", run_id)
    params = {"run": run_id, "conn": run["connection_id"], "n": sample}
    conditions = {
        "creates": sql.SQL("c.old_id IS NULL"),
        "updates": sql.SQL("c.changed"),
        "manager_moves": sql.SQL(_MOVES),
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
    deactivating = _deactivates(run, conn)
    result["deactivations"], result["deactivations_sample"] = 0, []
    result.update(unreadable_rejected=0, unreadable_sample=[])
    if deactivating:
        result.update(_unreadable(conn, run, sample))
        gone = sql.SQL("FROM lms.users u WHERE {f}").format(f=_deactivation_filter(run))
        row = store.fetch_one(conn, sql.SQL("SELECT count(*) AS n {g}").format(g=gone), params)
        result["deactivations"] = int(row["n"]) if row else 0
        result["deactivations_sample"] = [
            r["email"] for r in store.fetch_all(conn, sql.SQL("SELECT u.email {g} LIMIT %(n)s").format(g=gone), params)
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
    cfg = config_of(run["config"])
    max_deactivate, max_change = cfg.thresholds()
    reasons = []
    if max_deactivate is not None and max_deactivate.exceeded(p["deactivations"], p["population"]):
        reasons.append(
            f"it would deactivate {p['deactivations']} of {p['population']} people (max_deactivate = {limit_text(cfg)})"
        )
    reasons += unreadable_reason(p, "people")
    changes = p["updates"] + p["deactivations"]
    if max_change is not None and max_change.exceeded(changes, p["population"]):
        reasons.append(f"it would change {changes} of {p['population']} people (max_change = {cfg.max_change})")
    return reasons


def limit_text(cfg: Connection) -> str:
    default = " (the default for a full feed)" if cfg.max_deactivate is None else ""
    return f"{cfg.deactivate_limit}{default}"


def unreadable_reason(p: dict[str, Any], what: str) -> list[str]:
    """A run that would deactivate anyone while rows it could not read were rejected waits: those
    people may only be missing because their rows were refused."""
    if not (p.get("deactivations") and p.get("unreadable_rejected")):
        return []
    return [
        f"it would deactivate {p['deactivations']} {what} while {p['unreadable_rejected']} rejected row(s) could "
        f"not be read for who they are about ({', '.join(p['unreadable_sample'])}"
        f"{', ...' if p['unreadable_rejected'] > len(p['unreadable_sample']) else ''}); "
        "they may be among them: fix those rows and rerun, or approve if they are gone"
    ]


def batch_ranges(
    conn: psycopg.Connection[Any], run: dict[str, Any], batch_rows: int, where: str = "true"
) -> list[tuple[int, int]]:
    """Bucket ranges of about batch_rows staged rows (those ``where`` selects) each; none for none."""
    # ``where`` is one of this module's fixed conditions, never data.
    query = sql.SQL("SELECT count(*) AS n FROM {t} c WHERE {w}").format(
        t=stage_table("cls", run["id"]), w=sql.SQL(where)
    )
    row = store.fetch_one(conn, query)
    n = int(row["n"]) if row else 0
    count = min(BUCKETS, -(-n // batch_rows))
    if count == 0:
        return []
    edges = [round(i * BUCKETS / count) for i in range(count + 1)]
    return [(edges[i], edges[i + 1] - 1) for i in range(count)]


def load_steps(conn: psycopg.Connection[Any], run: dict[str, Any], *, whole: bool, batch_rows: int) -> list[Step]:
    """The load as steps: new people by bucket range, then changed people by bucket range (one
    range each when whole), then deactivations; a whole load also finishes in the same transaction,
    an online one after its batches. New people go in far larger batches
    (FEEDSYNC_LOAD_INSERT_ROWS) than updates: an insert locks nothing a reader waits for, and a
    million rows in one INSERT took half the time of the same rows in 50,000-row batches."""
    everything = [(0, BUCKETS - 1)]
    if whole:
        inserts = updates = everything
    else:
        ensure_bucket_index(conn, int(run["id"]))
        inserts = batch_ranges(conn, run, get_settings().load_insert_rows, "c.old_id IS NULL")
        updates = batch_ranges(conn, run, batch_rows, "c.old_id IS NOT NULL")
        if len(inserts) + len(updates) > 2:
            # Each batch reads its staged rows by key: an index beats a scan of the run per batch.
            conn.execute(
                sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (key)").format(
                    sql.Identifier(f"users_{run['id']}_key"), stage_table("users", int(run["id"]))
                )
            )
    steps: list[Step] = [partial(insert_people, lo=lo, hi=hi) for lo, hi in inserts]
    steps += [partial(update_people, lo=lo, hi=hi) for lo, hi in updates]
    return [*steps, apply_deactivations, *([finish] if whole else [])]


def ensure_bucket_index(conn: psycopg.Connection[Any], run_id: int) -> None:
    conn.execute(
        sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (kbucket)").format(
            sql.Identifier(f"cls_{run_id}_kbucket"), stage_table("cls", run_id)
        )
    )


def insert_people(conn: psycopg.Connection[Any], run: dict[str, Any], lo: int, hi: int) -> dict[str, int]:
    """For buckets lo..hi: new people, with their manager. The classification knows they are new,
    but it may be old news: another connection may have created one of them since (a run approved
    after hours, two feeds bringing the same new person at once). Such a person is not inserted
    (ON CONFLICT) but adopted: updated as an existing person of this connection, in the same
    transaction, and everyone pointing at the id drawn for them points at theirs."""
    cls, t = stage_table("cls", int(run["id"])), stage_table("users", int(run["id"]))
    params = {"conn": run["connection_id"], "lo": lo, "hi": hi}
    row = store.fetch_one(
        conn,
        sql.SQL(
            """WITH ins AS (
                 INSERT INTO lms.users (id, email, first_name, last_name, attributes, manager_id,
                                        source_connection_id, source_hash)
                 OVERRIDING SYSTEM VALUE
                 SELECT c.uid, s.email, s.first_name, s.last_name, jsonb_strip_nulls(s.attrs), c.manager_uid,
                        %(conn)s, s.row_hash
                 FROM {cls} c JOIN {t} s ON s.key = c.key
                 WHERE c.old_id IS NULL AND c.kbucket BETWEEN %(lo)s AND %(hi)s
                 ON CONFLICT (email_key) DO NOTHING
                 RETURNING 1)
               SELECT (SELECT count(*) FROM ins) AS created,
                      (SELECT count(*) FROM {cls} c WHERE c.old_id IS NULL AND c.kbucket BETWEEN %(lo)s AND %(hi)s)
                        AS wanted"""
        ).format(cls=cls, t=t),
        params,
    )
    assert row is not None
    counts = {"created": int(row["created"])}
    if row["created"] < row["wanted"]:
        counts.update(_adopt(conn, run, lo, hi))
    return counts


def _adopt(conn: psycopg.Connection[Any], run: dict[str, Any], lo: int, hi: int) -> dict[str, int]:
    """The people of buckets lo..hi the insert found already there: reclassified as existing
    (old_id, their manager) and updated now; ids drawn for them are replaced wherever used."""
    cls = stage_table("cls", int(run["id"]))
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
    swap = "SELECT * FROM unnest(%(drawn)s::bigint[], %(id)s::bigint[]) AS x(drawn, id)"
    conn.execute(
        sql.SQL("UPDATE {cls} c SET manager_uid = x.id FROM ({swap}) x WHERE c.manager_uid = x.drawn").format(
            cls=cls, swap=sql.SQL(swap)
        ),
        ids,
    )
    conn.execute(
        sql.SQL("UPDATE lms.users u SET manager_id = x.id FROM ({swap}) x WHERE u.manager_id = x.drawn").format(
            swap=sql.SQL(swap)
        ),
        ids,
    )
    log.warning(
        "people another connection created since this run was planned were adopted, not inserted",
        adopted=len(moved),
    )
    return _update(conn, run, sql.SQL("c.adopted AND c.kbucket BETWEEN %(lo)s AND %(hi)s"), params)


def update_people(conn: psycopg.Connection[Any], run: dict[str, Any], lo: int, hi: int) -> dict[str, int]:
    """For buckets lo..hi: changed people (by row hash) and manager moves, by id."""
    where = sql.SQL("NOT c.adopted AND c.kbucket BETWEEN %(lo)s AND %(hi)s")
    return _update(conn, run, where, {"lo": lo, "hi": hi})


def _update(
    conn: psycopg.Connection[Any], run: dict[str, Any], where: sql.Composable, params: dict[str, Any]
) -> dict[str, int]:
    """The classified people ``where`` selects (a fixed condition of this module, never data)."""
    cfg = config_of(run["config"])
    cls = stage_table("cls", int(run["id"]))
    params = {**params, "conn": run["connection_id"]}
    keep = sql.SQL("coalesce(s.{c}, u.{c})") if not cfg.empty_erases else sql.SQL("s.{c}")
    attributes = (
        sql.SQL("u.attributes || jsonb_strip_nulls(s.attrs)")
        if not cfg.empty_erases
        else sql.SQL("(u.attributes - {keys}) || jsonb_strip_nulls(s.attrs)").format(
            keys=sql.Literal(cfg.profile_attributes)
        )
    )
    moved = store.fetch_one(
        conn,
        sql.SQL("SELECT count(*) AS n FROM {cls} c WHERE {where} AND {moves}").format(
            cls=cls, where=where, moves=sql.SQL(_MOVES)
        ),
        params,
    )
    updated = store.fetch_one(
        conn,
        sql.SQL(
            """WITH upd AS (
                 UPDATE lms.users u SET
                   email = CASE WHEN c.changed THEN s.email ELSE u.email END,
                   first_name = CASE WHEN c.changed THEN {fn} ELSE u.first_name END,
                   last_name = CASE WHEN c.changed THEN {ln} ELSE u.last_name END,
                   attributes = CASE WHEN c.changed THEN {attributes} ELSE u.attributes END,
                   active = true, deactivated_at = NULL, source_connection_id = %(conn)s, source_hash = s.row_hash,
                   manager_id = coalesce(c.manager_uid, u.manager_id), updated_at = clock_timestamp()
                 FROM {cls} c JOIN {t} s ON s.key = c.key
                 WHERE u.id = c.old_id AND {where} AND (c.changed OR {moves})
                 RETURNING c.changed)
               SELECT count(*) FILTER (WHERE changed) AS n FROM upd"""
        ).format(
            cls=cls,
            t=stage_table("users", int(run["id"])),
            fn=keep.format(c=sql.Identifier("first_name")),
            ln=keep.format(c=sql.Identifier("last_name")),
            attributes=attributes,
            where=where,
            moves=sql.SQL(_MOVES),
        ),
        params,
    )
    return {"updated": int(updated["n"]) if updated else 0, "manager_moves": int(moved["n"]) if moved else 0}


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
    """Row warnings for managers nobody has."""
    run_id = int(run["id"])
    cls = stage_table("cls", run_id)
    unknown = conn.execute(
        sql.SQL(
            """INSERT INTO sync.row_errors (run_id, file_id, file_name, line, column_no, column_name, code, message,
                                            value, rejected)
               SELECT %(run)s, s.file_id, f.original_path, s.line_no, (rf.columns -> 'manager' ->> 'no')::int,
                      rf.columns -> 'manager' ->> 'column', e.code, e.message, c.manager_key, false
               FROM {cls} c JOIN {t} s ON s.key = c.key
               JOIN sync.feed_files f ON f.id = s.file_id
               JOIN sync.run_files rf ON rf.run_id = %(run)s AND rf.file_id = s.file_id
               CROSS JOIN LATERAL (SELECT
                   CASE WHEN c.manager_key !~ %(re)s OR c.manager_key ~ %(dots)s THEN 'invalid_manager'
                        ELSE 'unknown_manager' END AS code) k
               CROSS JOIN LATERAL (SELECT k.code, CASE k.code
                   WHEN 'invalid_manager' THEN 'the manager must be given as an e-mail address; the user was '
                                               || 'imported without a manager change'
                   ELSE 'no user has this manager e-mail; the user was imported without a manager change: add the '
                        || 'manager to the feed or correct the address' END AS message) e
               WHERE c.manager_key IS NOT NULL AND c.manager_uid IS NULL"""
        ).format(cls=cls, t=stage_table("users", run_id)),
        {"run": run_id, "re": EMAIL_RE, "dots": EMAIL_BAD_DOTS},
    ).rowcount
    # Every valid row: the staged ones (with the unchanged ones classify left behind) and the same ones.
    valid = store.fetch_one(
        conn,
        sql.SQL("SELECT (SELECT count(*) FROM {t}) + (SELECT count(*) FROM {same}) AS n").format(
            t=stage_table("users", run_id), same=stage_table("same", run_id)
        ),
    )
    return {"unknown_managers": unknown, "valid": int(valid["n"]) if valid else 0}


__all__ = [
    "USER_CORE_ATTRIBUTES",
    "classify",
    "create_staging",
    "insert_people",
    "plan",
    "prepare",
    "transform_chunk",
    "update_people",
]
