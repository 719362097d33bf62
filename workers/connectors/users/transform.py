"""Kind ``users``, per chunk: the file rules, the run's staging, and mapping, validation and the
row hash in SQL (one statement per chunk)."""

from __future__ import annotations

import json
import zlib
from typing import Any

import psycopg
from psycopg import sql

from schemas.kinds import KindConfig, UsersConnection, config_as
from schemas.providers import FileSpec
from workers import store
from workers.connectors.checks import Chunk, jsonb_object, row_hash
from workers.connectors.users.filters import create_filtered
from workers.staging import stage_table

# A strict ASCII syntax check (what HR systems export and mail servers accept): this pattern, and
# the dots and hyphens as string tests (bad_email). PostgreSQL's regex engine is three times slower
# on one pattern with bounded repeats.
EMAIL_RE = r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$"


def bad_email(value: sql.Composable, pattern: str = "re") -> sql.Composed:
    """SQL, true where ``value`` (text, not NULL) is not an address: it fails EMAIL_RE (passed as the
    parameter ``pattern``: the pattern holds a '%', which psycopg would read as a placeholder), or a
    dot or hyphen sits where mail servers refuse one: first or doubled, or next to the '@', a hyphen
    last, or a dot and a hyphen side by side. Those are plain string tests: as one regex of
    alternatives they cost as much as EMAIL_RE itself, as tests a third of that."""
    return sql.SQL(
        "({v} !~ {re} OR strpos({v}, '..') > 0 OR strpos({v}, '.@') > 0 OR left({v}, 1) = '.'"
        " OR (strpos({v}, '-') > 0 AND (strpos({v}, '@-') > 0 OR strpos({v}, '-.') > 0"
        " OR strpos({v}, '.-') > 0 OR right({v}, 1) = '-')))"
    ).format(v=value, re=sql.Placeholder(pattern))


def config_of(config: KindConfig) -> UsersConnection:
    return config_as(UsersConnection, config)


def file_spec(config: KindConfig, file_name: str) -> FileSpec:
    """Every file of a users connection is a user feed with the connection's mapping."""
    mapping = config_of(config).imported_mapping
    return FileSpec("users", "csv", mapping, frozenset(mapping))


def create_staging(conn: psycopg.Connection[Any], run_id: int, config: KindConfig) -> None:
    """The run's typed rows (people with something to do), the keys of the rows that are
    already in the store as they are (``same``: read, not validated or staged again), the
    keys of rejected rows whose person could be read (``kept``: being refused is not being gone),
    and the people the load deactivates (``gone``, for the assign step).

    A typed row carries its hash (``row_hash``), taken of the raw cells as _skip_same compares them
    (not of the text hashed: only the hash is compared, and a wide row costs its write and read)."""
    conn.execute(
        sql.SQL(
            """CREATE UNLOGGED TABLE IF NOT EXISTS {} (
                 file_id bigint NOT NULL, line_no int NOT NULL, key text NOT NULL, email text NOT NULL,
                 first_name text, last_name text, manager_key text, attrs jsonb NOT NULL, row_hash text NOT NULL,
                 inactive boolean NOT NULL DEFAULT false, manager_text text, deleted boolean NOT NULL DEFAULT false)"""
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
    create_filtered(conn, run_id)
    # The people the load deactivates (missing from a full feed): they leave their groups.
    conn.execute(
        sql.SQL("CREATE UNLOGGED TABLE IF NOT EXISTS {} (user_id bigint PRIMARY KEY)").format(
            stage_table("gone", run_id)
        )
    )


def hashed_attributes(cfg: UsersConnection) -> list[str]:
    """The raw columns a row's hash is taken of, in order."""
    attributes = ["email", *(a for a in ("first_name", "last_name", "manager", "state") if a in cfg.imported_mapping)]
    return attributes + cfg.profile_attributes


def hash_seed(cfg: UsersConnection) -> int:
    """The connection's import settings: changing the mapping, the required attributes or
    empty_erases makes every row new to the comparison."""
    imports: list[Any] = [cfg.imported_mapping, sorted(cfg.required), cfg.empty_erases]
    if cfg.deactivates_by_state:  # only then: the hash of every other connection's rows stays as it was
        imports.append(cfg.state_values.keys())
    settings = json.dumps(imports, sort_keys=True)
    return zlib.crc32(settings.encode())


def _raw_columns(cfg: UsersConnection) -> list[sql.Composable]:
    return [sql.SQL("r.{}").format(sql.Identifier(a)) for a in hashed_attributes(cfg)]


def _source_hash(cfg: UsersConnection) -> sql.Composed:
    """SQL for a raw row's hash (``r``: a raw chunk row), as kept in lms.users.source_hash. Over the
    raw text, so a row can be compared with the store before anything else is done with it: a row
    whose hash matches was valid when it was stored and reads the same now."""
    return row_hash(*_raw_columns(cfg), seed=hash_seed(cfg))


def _skip_same(conn: psycopg.Connection[Any], chunk: Chunk, cfg: UsersConnection, source_hash: sql.Composable) -> int:
    """Move the chunk's rows that match an active person's stored hash (and whose manager, if any,
    is linked) to the run's ``same`` keys, out of the raw chunk. One index probe per row (a LATERAL
    with LIMIT): a hash join would read the whole store for each chunk."""
    manager_empty = (
        sql.SQL("(btrim(r.manager) = '' OR lower(btrim(r.manager)) = ANY({}::text[]))").format(
            sql.Literal(no_manager(cfg))
        )
        if "manager" in cfg.imported_mapping
        else sql.SQL("true")
    )
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
            hash=source_hash,
            manager_empty=manager_empty,
        ),
        {"file": chunk.file_id},
    ).rowcount


def _anyone(conn: psycopg.Connection[Any]) -> bool:
    return store.fetch_one(conn, "SELECT EXISTS (SELECT 1 FROM lms.users) AS any") == {"any": True}


def no_manager(cfg: UsersConnection) -> list[str]:
    """The manager cells that mean "no manager", as compared (trimmed, lower case)."""
    return [v.strip().lower() for v in cfg.no_manager_values]


def _manager_text(cfg: UsersConnection, present: set[str]) -> sql.Composable:
    """The manager cell as the file has it, or NULL where it means "no manager" (no_manager_values:
    a comparison a row only where the connection has such values)."""
    manager = _val("manager", present)
    if not no_manager(cfg) or "manager" not in present:
        return manager
    return sql.SQL("CASE WHEN lower({m}) <> ALL(%(no_manager)s::text[]) THEN {m} END").format(m=manager)


def _val(attribute: str, present: set[str], *, lower: bool = False) -> sql.Composable:
    if attribute not in present:
        return sql.SQL("NULL::text")
    expr = sql.SQL("nullif(btrim(r.{}), '')").format(sql.Identifier(attribute))
    return sql.SQL("lower({})").format(expr) if lower else expr


def transform_chunk(conn: psycopg.Connection[Any], chunk: Chunk, config: KindConfig) -> dict[str, int]:
    """Map, validate and hash one chunk into the run's typed staging table; bad rows become row
    errors. Rows already in the store as they are go no further than their key."""
    run_id, file_id, file_name, columns = chunk.run_id, chunk.file_id, chunk.file_name, chunk.columns
    chunk_no = chunk.chunk_no
    conn_cfg = config_of(config)
    source_hash = _source_hash(conn_cfg)
    # A store with nobody in it has nobody the same: a first import pays no probe per row (a twentieth
    # of its transform).
    same = _skip_same(conn, chunk, conn_cfg, source_hash) if _anyone(conn) else 0
    present = set(conn_cfg.imported_mapping)
    raw = stage_table("raw", run_id, file_id, chunk_no)
    profile = conn_cfg.profile_attributes
    attrs = jsonb_object([(sql.Literal(a), _val(a, present)) for a in profile])
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
    s_no, s_name = col("state")
    active_states, inactive_states = conn_cfg.state_values.keys()
    # Column names are the file's text: they travel as parameters, never inside the statement,
    # where a '%' ("FTE %") would read as a placeholder.
    names = {"e_name": e_name, "m_name": m_name, "s_name": s_name, **{f"name_{a}": col(a)[1] for a in required_extra}}
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
                "c.manager_text, false)"
            ).format(m_no=sql.Literal(m_no), m_name=sql.Placeholder("m_name")),
            sql.SQL(
                "(c.bad_state, {s_no}, {s_name}::text, 'invalid_state', %(state_msg)s::text, c.state_raw, true)"
            ).format(s_no=sql.Literal(s_no), s_name=sql.Placeholder("s_name")),
            *required_rows,
        ]
    )
    query = sql.SQL(
        """
        WITH src0 AS (
            SELECT r.line_no, coalesce(btrim(r.{email}), '') AS email,
                   {first_name} AS first_name, {last_name} AS last_name,
                   -- As the file has it, for the error report; compared in lower case.
                   {manager_text} AS manager_text,
                   {state} AS state_raw, {attrs} AS attrs, {row_hash} AS row_hash {missing_cols}
            FROM {raw} r
        ), src AS (
            SELECT s.*, lower(s.manager_text) AS manager_raw FROM src0 s
        ), chk AS (
            SELECT s.*, s.email = '' AS no_email,
                   s.email <> '' AND ({bad_email} OR length(s.email) > 254) AS bad_email,
                   s.manager_raw IS NOT NULL AND s.manager_raw = lower(s.email) AS self_manager,
                   s.state_raw IS NOT NULL AND lower(s.state_raw) <> ALL(%(active_states)s::text[])
                     AND lower(s.state_raw) <> ALL(%(inactive_states)s::text[]) AS bad_state,
                   coalesce(lower(s.state_raw) = ANY(%(inactive_states)s::text[]), false) AS inactive,
                   coalesce(lower(s.state_raw) = 'deleted' AND lower(s.state_raw) = ANY(%(inactive_states)s::text[]),
                            false) AS deleted
            FROM src s
        ), checked AS (
            SELECT c.*, NOT (c.no_email OR c.bad_email OR c.bad_state OR {missing_any}) AS ok FROM chk c
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
            INSERT INTO {typed} (file_id, line_no, key, email, first_name, last_name, manager_key, attrs, row_hash,
                                 inactive, manager_text, deleted)
            SELECT %(file)s, c.line_no, lower(c.email), c.email, c.first_name, c.last_name,
                   -- A manager that is not an e-mail finds nobody in the load and is reported there, with
                   -- the few other unresolved ones: a regex on every row here cost a third of the transform.
                   CASE WHEN c.self_manager THEN NULL ELSE c.manager_raw END,
                   c.attrs, c.row_hash, c.inactive, CASE WHEN c.self_manager THEN NULL ELSE c.manager_text END,
                   c.deleted
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
        manager_text=_manager_text(conn_cfg, present),
        state=_val("state", present),
        attrs=attrs,
        # The same hash _skip_same compared, kept as the person's source_hash.
        row_hash=source_hash,
        bad_email=bad_email(sql.SQL("s.email")),
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
        {
            "re": EMAIL_RE,
            "run": run_id,
            "file": file_id,
            "fname": file_name,
            "active_states": active_states,
            "no_manager": no_manager(conn_cfg),
            "inactive_states": inactive_states,
            "state_msg": f"this state is not one the connection knows ({conn_cfg.state_values.described()}); "
            "correct it, or add it to state_values, and rerun",
            **names,
        },
    )
    assert row is not None
    conn.execute(sql.SQL("DROP TABLE {}").format(raw))
    counts = {k: int(v) for k, v in row.items()}
    counts["valid"] += same
    return counts
