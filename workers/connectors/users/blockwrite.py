"""Kind ``users``, a block prepared in the worker (vector.py) meets the database: compared with the
store (rows already there as they are go no further than their key), then staged, in the parse's
chunk transaction: row errors, kept and same keys, and the typed rows by one COPY."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql

from schemas.kinds import KindConfig
from workers.connectors.arrowblock import copy_csv
from workers.connectors.checks import Chunk
from workers.connectors.users.transform import config_of, hash_seed
from workers.connectors.users.vector import TYPED, Prepared
from workers.staging import stage_table


def screen_block(conn: psycopg.Connection[Any], chunk: Chunk, config: KindConfig, prepared: Prepared) -> Prepared:
    """Rows already in the store as they are go no further than their key (the run's ``same``), as
    in the SQL transform (transform._skip_same): an active person whose stored hash is the row's
    and whose manager, if the row names one, is linked. One index probe per row, on the parse's
    other connection while the block before this one is written; the row hash is PostgreSQL's."""
    typed = prepared.typed
    if typed.num_rows == 0:
        return prepared
    # Nobody active in the store (a first import): no row can be unchanged, nothing to compare.
    anyone = conn.execute("SELECT EXISTS (SELECT 1 FROM lms.users WHERE active)").fetchone()
    if not (anyone and anyone[0]):
        return prepared
    found = conn.execute(
        sql.SQL(
            # Binary parameters: a 50,000-element array in text form took a second to send and parse.
            """SELECT k.i FROM unnest(%(keys)b::text[], %(src)b::text[], %(needs)b::bool[])
                 WITH ORDINALITY AS k(key, src, needs_manager, i)
               CROSS JOIN LATERAL (
                   SELECT 1 FROM lms.users u
                   WHERE u.email_key = k.key AND u.active
                     AND u.source_hash = hashtextextended(k.src, {seed})::text
                     AND (NOT k.needs_manager OR u.manager_id IS NOT NULL)
                   LIMIT 1) u"""
        ).format(seed=sql.Literal(hash_seed(config_of(config)))),
        {
            "keys": typed.column("key").to_pylist(),
            "src": typed.column("hash_src").to_pylist(),
            "needs": typed.column("needs_manager").to_pylist(),
        },
    ).fetchall()
    if not found:
        return prepared
    hit = [False] * typed.num_rows
    for (i,) in found:
        hit[i - 1] = True
    mask = pa.array(hit)
    return replace(
        prepared, typed=typed.filter(pc.invert(mask)), same=typed.filter(mask).select(["file_id", "line_no", "key"])
    )


def write_block(conn: psycopg.Connection[Any], chunk: Chunk, prepared: Prepared) -> dict[str, int]:
    """Stage a prepared block: its row errors, kept and same keys, and typed rows (one COPY)."""
    counts = {"valid": prepared.valid, "rejected": sum(1 for e in prepared.errors if e[-1])}
    counts["warnings"] = len(prepared.errors) - counts["rejected"]
    if prepared.errors:
        with conn.cursor() as cur:
            cur.executemany(
                """INSERT INTO sync.row_errors (run_id, file_id, file_name, line, column_no, column_name,
                                                code, message, value, rejected)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                prepared.errors,
            )
    if prepared.kept:
        with (
            conn.cursor() as cur,
            cur.copy(
                sql.SQL("COPY {} (file_id, line_no, key) FROM STDIN").format(stage_table("kept", chunk.run_id))
            ) as copy,
        ):
            for line, key in prepared.kept:
                copy.write_row((chunk.file_id, line, key))
    if prepared.same is not None and prepared.same.num_rows:
        copy_csv(conn, stage_table("same", chunk.run_id), prepared.same)
    if prepared.typed.num_rows:
        copy_csv(conn, stage_table("users", chunk.run_id), prepared.typed.select(TYPED))
    return counts
