"""Transform one chunk: each row filtered, made a statement, typed, given its id and validated;
the statements are staged with COPY, bad rows become row errors on their line and column.

This runs in Python, not SQL like the other kinds: a statement is a JSON document checked against
the xAPI rules by a validator library, one row at a time. Memory is one chunk of rows.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from schemas.kinds.xapi import XapiConnection
from schemas.settings import get_settings
from workers import store
from workers.connectors.checks import Chunk
from workers.connectors.xapi.fastpath import FastCheck, is_instant
from workers.connectors.xapi.statements import (
    OUT_OF_RANGE,
    Plan,
    RowProblem,
    column_of,
    derived_id,
    from_column,
    from_mapping,
    instant,
    out_of_range,
    passes,
    plan_of,
    rfc3339,
    serialized,
)
from workers.connectors.xapi.validation import problem
from workers.staging import stage_table

VOIDED = "http://adlnet.gov/expapi/verbs/voided"

STAGE_COLUMNS = (
    "file_id",
    "line_no",
    "kept",
    "id",
    "actor_email",
    "verb_id",
    "object_id",
    "ts",
    "statement",
    "voids",
)


def create_staging(conn: psycopg.Connection[Any], run_id: int) -> None:
    conn.execute(
        sql.SQL(
            """CREATE UNLOGGED TABLE IF NOT EXISTS {} (
                 file_id bigint NOT NULL, line_no int NOT NULL,
                 kept boolean NOT NULL,              -- false: a filter dropped the row (only counted)
                 id uuid, actor_email text, verb_id text, object_id text, ts timestamptz,
                 statement text,                     -- the JSON text stored as is
                 voids uuid)                         -- a voiding statement's target"""
        ).format(stage_table("xapi", run_id))
    )


def attributes(cfg: XapiConnection) -> dict[str, str]:
    """attribute (a raw table column) -> CSV column: JSON paths are no SQL names, so columns are numbered."""
    return {f"c{i}": column for i, column in enumerate(cfg.columns)}


def transform(conn: psycopg.Connection[Any], chunk: Chunk, cfg: XapiConnection) -> dict[str, int]:
    attrs = {a: c for a, c in attributes(cfg).items() if a in chunk.columns}
    meta = store.fetch_one(conn, "SELECT sha256 FROM sync.feed_files WHERE id = %s", (chunk.file_id,))
    assert meta is not None
    raw = stage_table("raw", chunk.run_id, chunk.file_id, chunk.chunk_no)
    with conn.cursor(row_factory=tuple_row) as cur:
        rows = cur.execute(
            sql.SQL("SELECT line_no, {} FROM {} ORDER BY line_no").format(
                sql.SQL(", ").join(map(sql.Identifier, attrs)), raw
            )
        ).fetchall()
    staged: list[tuple[Any, ...]] = []
    errors: list[tuple[int, str | None, str, str, str | None]] = []
    kept = 0
    # A whole statement from a column can be of any shape: those go to ralph, row by row.
    fast = FastCheck() if get_settings().xapi_fast_path and not cfg.statement_column else None
    plan = plan_of(cfg)
    for line, *cells in rows:
        row = {column: (cell or "").strip() for column, cell in zip(attrs.values(), cells, strict=True)}
        if not passes(cfg.filters, row):
            staged.append((chunk.file_id, line, False, *([None] * 7)))
            continue
        made = statement_of(cfg, row, meta["sha256"], line, fast, plan)
        if isinstance(made, RowProblem):
            errors.append((line, made.column, made.code, made.message, row.get(made.column or "")))
            continue
        staged.append(staged_row(chunk.file_id, line, *made))
        kept += 1
    stage(conn, chunk, staged)
    row_errors(conn, chunk, cfg, errors)
    conn.execute(sql.SQL("DROP TABLE {}").format(raw))
    return {"valid": kept, "rejected": len(errors), "warnings": 0, "filtered": len(staged) - kept}


def statement_of(
    cfg: XapiConnection,
    row: dict[str, str],
    sha256: str,
    line: int,
    fast: FastCheck | None = None,
    plan: Plan | None = None,
) -> tuple[dict[str, Any], str] | RowProblem:
    """The row's statement and the JSON text to store (a given statement's own text when it has an id).
    ``fast``: the fast pass says yes to most mapped statements; whatever it does not, ralph judges."""
    if cfg.statement_column:
        made = from_column(cfg.statement_column, row.get(cfg.statement_column, ""))
    else:
        made = from_mapping(cfg, row, plan)
    if isinstance(made, RowProblem):
        return made
    text = None
    if "id" not in made:
        made = {"id": derived_id(cfg.name, sha256, line), **made}
    elif cfg.statement_column:
        text = row[cfg.statement_column]
    found = None if fast is not None and fast.valid(made) else problem(made)
    if found is None and isinstance(made.get("timestamp"), str) and out_of_range(made["timestamp"]):
        found = "timestamp", OUT_OF_RANGE  # valid in its own zone, but the store keeps it in UTC
    if found is not None:
        path, reason = found
        return RowProblem(column_of(cfg, path), "invalid_statement", f"{path}: {reason}")
    return made, text if text is not None else serialized(made)


def staged_row(file_id: int, line: int, statement: dict[str, Any], text: str) -> tuple[Any, ...]:
    """A kept row as the staging table holds it (STAGE_COLUMNS)."""
    return (file_id, line, True, *_columns(statement), text, _voids(statement))


def stage(conn: psycopg.Connection[Any], chunk: Chunk, staged: list[tuple[Any, ...]]) -> None:
    """Rows (STAGE_COLUMNS) into the run's staging table, by COPY."""
    if not staged:
        return
    with (
        conn.cursor() as cur,
        cur.copy(
            sql.SQL("COPY {} ({}) FROM STDIN").format(
                stage_table("xapi", chunk.run_id), sql.SQL(", ").join(map(sql.Identifier, STAGE_COLUMNS))
            )
        ) as copy,
    ):
        for item in staged:
            copy.write_row(item)


def _columns(statement: dict[str, Any]) -> tuple[Any, ...]:
    """id, actor e-mail, verb, object id and timestamp: what the store indexes and the export shows."""
    actor = statement["actor"]
    mbox = actor.get("mbox")
    email = mbox[len("mailto:") :] if isinstance(mbox, str) and mbox.lower().startswith("mailto:") else None
    obj = statement["object"]
    ts = statement.get("timestamp")
    if is_instant(ts):  # the form the mapping's date type writes: stored as it is
        when_text = ts
    else:
        when = instant(ts) if isinstance(ts, str) else None
        when_text = rfc3339(when) if when is not None else None
    return (
        statement["id"],
        email,
        statement["verb"]["id"],
        obj.get("id") if obj.get("objectType", "Activity") == "Activity" else None,  # the activity IRI only
        when_text,
    )


def _voids(statement: dict[str, Any]) -> str | None:
    obj = statement["object"]
    if statement["verb"]["id"] == VOIDED and obj.get("objectType") == "StatementRef":
        return str(obj["id"])
    return None


def row_errors(
    conn: psycopg.Connection[Any],
    chunk: Chunk,
    cfg: XapiConnection,
    errors: list[tuple[int, str | None, str, str, str | None]],
) -> None:
    """Each error (line, CSV column, code, message, value) on its line, and on its column as the
    file's header names it."""
    if not errors:
        return
    header = {column: chunk.columns[a] for a, column in attributes(cfg).items() if a in chunk.columns}
    with conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO sync.row_errors (run_id, file_id, file_name, line, column_no, column_name, code, message,
                                            value, rejected)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, left(%s, 200), true)""",
            [
                (
                    chunk.run_id,
                    chunk.file_id,
                    chunk.file_name,
                    line,
                    header.get(column or "", {}).get("no"),
                    header.get(column or "", {}).get("column", column),
                    code,
                    msg,
                    value,
                )
                for line, column, code, msg, value in errors
            ],
        )
