"""Kind ``users``, the connection's filters (``[connections.filters]``, schemas/filters.py), applied
to the run's staged people in SQL, set-based, once every chunk is staged (the manager tree is the
whole feed's): the rows that do not pass move out of the typed and ``same`` staging into the run's
``filtered`` keys, so nothing of them is loaded, and a full feed does not take them for gone.

A ``same`` row (in the store as it is, never staged) is read from the store: its hash matches, so
its values are the feed's. The manager tree is walked with a recursive UNION, which keeps each
person once: a cycle in the feed's tree ends the walk instead of looping.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from schemas.filters import FilterConfig
from schemas.kinds import UsersConnection
from workers.staging import stage_table

#: The staged value of a core attribute (``f``: a row of the run's feed), compared in lower case.
_CORE = {
    "email": sql.SQL("f.key"),
    "manager": sql.SQL("f.manager_key"),
    "first_name": sql.SQL("lower(btrim(f.first_name))"),
    "last_name": sql.SQL("lower(btrim(f.last_name))"),
}


def create_filtered(conn: psycopg.Connection[Any], run_id: int) -> None:
    conn.execute(
        sql.SQL("CREATE UNLOGGED TABLE IF NOT EXISTS {} (key text PRIMARY KEY)").format(stage_table("filtered", run_id))
    )


def _value(attribute: str) -> sql.Composable:
    return _CORE.get(attribute) or sql.SQL("lower(btrim(f.attrs ->> {}))").format(sql.Literal(attribute))


def _passes(filters: FilterConfig, params: dict[str, Any]) -> sql.Composable:
    """SQL that is true for a feed row the filters keep; its values go in ``params``."""
    conditions: list[sql.Composable] = []
    if filters.under_managers:
        params["roots"] = [m.strip().lower() for m in filters.under_managers]
        conditions.append(sql.SQL("f.key IN (SELECT key FROM tree)"))
    for n, (attribute, values) in enumerate(sorted(filters.exclude_values.items())):
        params[f"ex{n}"] = [v.strip().lower() for v in values]
        conditions.append(
            sql.SQL("NOT coalesce({v} = ANY({p}::text[]), false)").format(
                v=_value(attribute), p=sql.Placeholder(f"ex{n}")
            )
        )
    for n, (attribute, values) in enumerate(sorted(filters.include_values.items())):
        params[f"in{n}"] = [v.strip().lower() for v in values]
        conditions.append(
            sql.SQL("coalesce({v} = ANY({p}::text[]), false)").format(v=_value(attribute), p=sql.Placeholder(f"in{n}"))
        )
    return sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("true")


def apply_filters(
    conn: psycopg.Connection[Any], run_id: int, connection_id: int, cfg: UsersConnection, *, partial: bool
) -> int:
    """Move the run's staged people the filters leave out to its ``filtered`` keys; how many.

    A ``partial`` feed (a Graph delta: only who changed) walks the tree through the store's people of
    the connection where the feed does not name them: their manager as last imported."""
    create_filtered(conn, run_id)
    filters = cfg.filters
    if filters is None or not filters.active:
        return 0
    typed, same, filtered = stage_table("users", run_id), stage_table("same", run_id), stage_table("filtered", run_id)
    params: dict[str, Any] = {}
    passes = _passes(filters, params)
    stored = (
        sql.SQL(
            """ UNION ALL SELECT u.email_key, m.email_key
                FROM lms.users u LEFT JOIN lms.users m ON m.id = u.manager_id
                WHERE u.source_connection_id = %(conn)s
                  AND NOT EXISTS (SELECT 1 FROM feed f WHERE f.key = u.email_key)"""
        )
        if partial
        else sql.SQL("")
    )
    params["conn"] = connection_id
    tree = (
        sql.SQL(
            """, nodes AS (SELECT f.key, f.manager_key FROM feed f{stored}),
               tree(key) AS (
                   SELECT n.key FROM nodes n WHERE n.key = ANY(%(roots)s::text[])
                   UNION SELECT n.key FROM nodes n JOIN tree t ON n.manager_key = t.key)"""
        ).format(stored=stored)
        if filters.under_managers
        else sql.SQL("")
    )
    n = conn.execute(
        sql.SQL(
            """WITH RECURSIVE feed AS MATERIALIZED (
                   SELECT s.key, s.manager_key, s.first_name, s.last_name, s.attrs FROM {typed} s
                   UNION ALL
                   SELECT s.key, m.email_key, u.first_name, u.last_name, u.attributes
                   FROM {same} s JOIN lms.users u ON u.email_key = s.key
                   LEFT JOIN lms.users m ON m.id = u.manager_id){tree}
               INSERT INTO {filtered} (key) SELECT f.key FROM feed f WHERE NOT ({passes})
               ON CONFLICT DO NOTHING"""
        ).format(typed=typed, same=same, tree=tree, filtered=filtered, passes=passes),
        params,
    ).rowcount
    if n:
        for table in (typed, same):
            conn.execute(sql.SQL("DELETE FROM {t} s USING {f} f WHERE s.key = f.key").format(t=table, f=filtered))
    return n


def leavers(run_id: int) -> sql.Composed:
    """People of this connection (``u``, lms.users) still active whom the filters now leave out."""
    return sql.SQL(
        "u.source_connection_id = %(conn)s AND u.active AND EXISTS (SELECT 1 FROM {f} f WHERE f.key = u.email_key)"
    ).format(f=stage_table("filtered", run_id))


def deactivates_leavers(cfg: UsersConnection) -> bool:
    return cfg.filters is not None and cfg.filters.filter_leavers == "deactivate"
