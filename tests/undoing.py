"""DOCSTRING"""

from typing import Any

from psycopg import sql as psql

from producers import queries
from producers.undo import start_undo
from tests.conftest import sql
from tests.stubpipeline import Pipeline

FEED = "import/user/internal/"


TABLES = ("users", "org_units", "positions", "group_members", "assignments")


def snapshot(table: str) -> dict[Any, tuple[Any, ...]]:
    """Every row of lms.<table>, whole, by its key."""
    from workers.runs.journal import tables

    rows = sql(psql.SQL("SELECT to_jsonb(t) FROM {} t").format(psql.Identifier("lms", table)))
    out = {tuple(r[k] for k in tables()[table].key): tuple(sorted(r.items())) for (r,) in rows}
    assert len(out) == len(rows)
    return out


def undo(pipeline: Pipeline, run_id: int, *, skip_conflicts: bool = False) -> dict[str, Any]:
    undo_id = start_undo(run_id, skip_conflicts=skip_conflicts)
    pipeline.drain()
    detail = queries.run_detail(undo_id)
    assert detail is not None
    return detail


def user(email: str) -> dict[str, Any]:
    ((row,),) = sql("SELECT to_jsonb(u) FROM lms.users u WHERE email = %s", (email,))
    return dict(row)
