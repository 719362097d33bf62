"""Names of staging tables: stage.<prefix>_<run>[_<file>_<chunk>], UNLOGGED and dropped with the run."""

from __future__ import annotations

from psycopg import sql


def stage_table(prefix: str, *ids: int) -> sql.Composed:
    return sql.SQL("stage.{}").format(sql.Identifier("_".join([prefix, *map(str, ids)])))
