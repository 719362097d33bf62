"""Row checks shared by the connectors: each failed check is a row error on the value's line and
column, in the same statement that stages the good rows of a chunk."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from schemas.providers import FileSpec
from workers import store
from workers.staging import stage_table

INT_RE = r"^\d{1,9}$"
_MAX_ARGS = 100  # PostgreSQL's FUNC_MAX_ARGS: the most arguments a function call may have
NUMBER_RE = r"^[+-]?\d{1,12}(\.\d+)?$"


@dataclass(frozen=True)
class Check:
    """A row check: ``failed`` is SQL over the chunk's trimmed text columns (NULL when empty).

    ``params`` are the values its named placeholders stand for: a constant with a '%' in it (a
    regex) goes as a parameter, as psycopg would read the '%' inside the statement as a placeholder."""

    attribute: str
    failed: sql.Composable
    code: str
    message: str
    rejected: bool = True
    params: Mapping[str, Any] = field(default_factory=dict)


def required(spec: FileSpec, attribute: str) -> Check:
    return Check(
        attribute,
        sql.SQL("{} IS NULL").format(sql.Identifier(attribute)),
        "required",
        f"'{spec.columns[attribute]}' is empty; fill it in and rerun",
    )


def valid_date(spec: FileSpec, attribute: str, *, rejected: bool = True) -> Check:
    tail = "correct it and rerun" if rejected else "the rest of the row was imported; correct it and rerun"
    return Check(
        attribute,
        sql.SQL("{a} IS NOT NULL AND sync.feed_date({a}) IS NULL").format(a=sql.Identifier(attribute)),
        "invalid_date",
        f"'{spec.columns[attribute]}' is not a date (M/D/YYYY or YYYY-MM-DD); {tail}",
        rejected,
    )


def valid_number(spec: FileSpec, attribute: str, *, whole: bool = True, rejected: bool = True) -> Check:
    kind, pattern = ("a whole number", INT_RE) if whole else ("a number", NUMBER_RE)
    tail = "correct it and rerun" if rejected else "the rest of the row was imported; correct it and rerun"
    return Check(
        attribute,
        sql.SQL("{a} IS NOT NULL AND {a} !~ {re}").format(a=sql.Identifier(attribute), re=sql.Literal(pattern)),
        "invalid_number",
        f"'{spec.columns[attribute]}' must be {kind}; {tail}",
        rejected,
    )


def as_int(attribute: str) -> sql.Composed:
    return sql.SQL("CASE WHEN c.{a} ~ {re} THEN c.{a}::int END").format(
        a=sql.Identifier(attribute), re=sql.Literal(INT_RE)
    )


def as_number(attribute: str) -> sql.Composed:
    return sql.SQL("CASE WHEN c.{a} ~ {re} THEN c.{a}::numeric END").format(
        a=sql.Identifier(attribute), re=sql.Literal(NUMBER_RE)
    )


def as_list(attribute: str) -> sql.Composed:
    """'a; b; ' as {a,b}: the providers' list separator, empty items dropped."""
    return sql.SQL(
        "coalesce(array(SELECT btrim(t) FROM unnest(string_to_array(c.{}, ';')) t WHERE btrim(t) <> ''), '{{}}')"
    ).format(sql.Identifier(attribute))


@dataclass(frozen=True)
class Chunk:
    """One parse chunk being transformed: its raw rows, and the file and columns they came from."""

    run_id: int
    file_id: int
    chunk_no: int
    file_name: str
    columns: dict[str, dict[str, Any]]  # attribute -> {"column": header name, "no": position}


def checked_insert(
    conn: psycopg.Connection[Any], chunk: Chunk, spec: FileSpec, checks: list[Check], insert: sql.Composable
) -> dict[str, int]:
    """Check one raw chunk and insert its good rows with ``insert`` (SQL selecting ``FROM checked c
    WHERE c.ok``); every failed check is a row error on the value's line and column."""
    run_id, file_id, file_name, columns = chunk.run_id, chunk.file_id, chunk.file_name, chunk.columns
    raw = stage_table("raw", run_id, file_id, chunk.chunk_no)
    src = sql.SQL(", ").join(
        (sql.SQL("nullif(btrim(r.{a}), '') AS {a}") if a in columns else sql.SQL("NULL::text AS {a}")).format(
            a=sql.Identifier(a)
        )
        for a in spec.columns
    )
    rejecting: list[sql.Composable] = [_failed(c) for c in checks if c.rejected] or [sql.SQL("false")]
    # A column's name (and a message naming it) is the file's or the admin's text: it travels as a
    # parameter, never inside the statement, where a '%' would read as a placeholder.
    params: dict[str, Any] = {"run": run_id, "file": file_id, "fname": file_name}
    for i, c in enumerate(checks):
        params[f"colname{i}"] = columns.get(c.attribute, {}).get("column", spec.columns[c.attribute])
        params[f"msg{i}"] = c.message
    own = set(params)
    for c in checks:
        for name, value in c.params.items():
            if name in own or params.setdefault(name, value) != value:
                raise ValueError(f"the row check parameter {name!r} is taken by another value; rename it")
    values = sql.SQL(",\n").join(
        sql.SQL("(({failed}), {no}, {name}::text, {code}, {msg}::text, {val}, {rej})").format(
            failed=_failed(c),
            no=sql.Literal(columns.get(c.attribute, {}).get("no")),
            name=sql.Placeholder(f"colname{i}"),
            code=sql.Literal(c.code),
            msg=sql.Placeholder(f"msg{i}"),
            val=sql.Identifier(c.attribute),
            rej=sql.Literal(c.rejected),
        )
        for i, c in enumerate(checks)
    )
    query = sql.SQL(
        """
        WITH src AS (SELECT r.line_no, {src} FROM {raw} r),
        checked AS (SELECT s.*, NOT ({rejecting}) AS ok FROM src s),
        errs AS (
            INSERT INTO sync.row_errors (run_id, file_id, file_name, line, column_no, column_name, code, message,
                                         value, rejected)
            SELECT %(run)s, %(file)s, %(fname)s, c.line_no, e.col, e.colname, e.code, e.msg, left(e.val, 200), e.rej
            FROM (SELECT * FROM checked WHERE {flagged}) c
            CROSS JOIN LATERAL (VALUES {values}) AS e(failed, col, colname, code, msg, val, rej)
            WHERE e.failed
            RETURNING rejected
        ),
        ins AS ({insert} RETURNING 1)
        SELECT (SELECT count(*) FROM ins) AS valid, (SELECT count(*) FROM errs WHERE rejected) AS rejected,
               (SELECT count(*) FROM errs WHERE NOT rejected) AS warnings
        """
    ).format(
        src=src,
        raw=raw,
        rejecting=sql.SQL(" OR ").join(sql.SQL("({})").format(r) for r in rejecting),
        # Only rows with something to report meet the per-check VALUES list.
        flagged=sql.SQL(" OR ").join([sql.SQL("NOT ok"), *(_failed(c) for c in checks if not c.rejected)]),
        values=values,
        insert=insert,
    )
    row = store.fetch_one(conn, query, params)
    assert row is not None
    conn.execute(sql.SQL("DROP TABLE {}").format(raw))
    return {k: int(v) for k, v in row.items()}


def _failed(check: Check) -> sql.Composed:
    # A check over an empty (NULL) value is NULL, not false: without coalesce such a row would be
    # neither staged nor reported.
    return sql.SQL("coalesce(({}), false)").format(check.failed)


def row_hash(*values: sql.Composable, seed: int = 0) -> sql.Composed:
    """SQL for a row's hash over ``values`` (SQL text expressions), to compare with the store's.

    hashtextextended (PostgreSQL's 64-bit hash for hash partitioning) costs a third of md5 per
    row; a collision only matters between two versions of the same person's row. ``seed`` tells
    apart hashes made under different settings.
    """
    return sql.SQL("hashtextextended({}, {})::text").format(hash_text(*values), sql.Literal(int(seed)))


def hash_text(*values: sql.Composable) -> sql.Composed:
    """SQL for the text a row hash is taken of: the values joined by chr(31), each NULL a marker of
    its own (chr(30)): concat_ws skips NULLs, so a value moving from one empty column to the next
    would otherwise hash the same."""
    parts: list[sql.Composable] = [sql.SQL("coalesce({}, chr(30))").format(v) for v in values]
    # A function takes at most 100 arguments: past that, nested groups. No part is NULL, so the
    # text (and the hash) is the same as from one call.
    while len(parts) > _MAX_ARGS - 1:
        parts = [_concat(parts[i : i + _MAX_ARGS - 1]) for i in range(0, len(parts), _MAX_ARGS - 1)]
    return _concat(parts)


def _concat(parts: list[sql.Composable]) -> sql.Composed:
    return sql.SQL("concat_ws(chr(31), {})").format(sql.SQL(", ").join(parts))


def jsonb_object(pairs: list[tuple[sql.Composable, sql.Composable]]) -> sql.Composable:
    """SQL for a jsonb object of (key, value) SQL expressions, any number of them: jsonb_build_object
    takes at most 100 arguments (50 pairs), so a larger object is the concatenation of parts."""
    if not pairs:
        return sql.SQL("'{}'::jsonb")
    step = _MAX_ARGS // 2
    parts = [
        sql.SQL("jsonb_build_object({})").format(
            sql.SQL(", ").join(sql.SQL("{}, {}").format(k, v) for k, v in pairs[i : i + step])
        )
        for i in range(0, len(pairs), step)
    ]
    return sql.SQL("({})").format(sql.SQL(" || ").join(parts))
