"""One module per connection kind. A connector module provides:

- ``file_spec(config, file_name)``: what a dropped file is (its role, format and columns), or
  ``FileNameProblem`` for a name the kind does not take;
- ``create_staging`` and ``transform_chunk``: the run's typed staging, and per chunk the mapping,
  validation and row errors in SQL;
- ``prepare``, ``classify``, ``needs_plan``, ``plan``, ``exceeded_thresholds``: the load's decision;
- ``load_steps`` and ``finish``: the merge as steps, committed one by one in online mode.

Raw chunk tables are the same for every kind: one text column per attribute present in the file.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType
from typing import Any

import psycopg
from psycopg import sql

from workers.staging import stage_table


def connector_for(kind: str) -> Any:
    if kind in ("users", "hierarchy"):
        return import_module(f"workers.connectors.{kind}")
    if kind in ("hmm", "getabstract"):
        return _ContentProvider(import_module(f"workers.connectors.{kind}"))
    raise KeyError(f"no connector for kind {kind!r}")


class _ContentProvider:
    """A content provider's module (its file names, transform and load steps) over what every
    content kind shares (workers/connectors/content.py: staging and the load's decision)."""

    def __init__(self, provider: ModuleType) -> None:
        self._provider = provider

    def __getattr__(self, name: str) -> Any:
        from workers.connectors import content

        return getattr(self._provider, name) if hasattr(self._provider, name) else getattr(content, name)


def create_raw_chunk(
    conn: psycopg.Connection[Any], run_id: int, file_id: int, chunk_no: int, attributes: list[str]
) -> sql.Composed:
    table = stage_table("raw", run_id, file_id, chunk_no)
    cols = sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(a)) for a in attributes)
    conn.execute(sql.SQL("CREATE UNLOGGED TABLE {} (line_no int NOT NULL, {})").format(table, cols))
    return table


def copy_statement(table: sql.Composed, attributes: list[str]) -> sql.Composed:
    cols = sql.SQL(", ").join(sql.Identifier(a) for a in ["line_no", *attributes])
    return sql.SQL("COPY {} ({}) FROM STDIN").format(table, cols)
