"""The connection's filters (``[connections.filters]``, schemas/filters.py) over a run's staged
people, for every people kind (users, hierarchy): applied in SQL, set-based, once every chunk is
staged (the manager tree is the whole feed's). The rows that do not pass move out of the kind's
staging into the run's ``filtered`` keys, so nothing of them is loaded, and a full feed does not
take them for gone.

A kind says how its staged people read (``StagedPeople``); the rules are the same for all: values
compared trimmed and in lower case, ``under_managers`` walked down the feed's manager tree with a
recursive UNION, which keeps each person once (a cycle in the feed's tree ends the walk instead of
looping), and the conditions ANDed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from schemas.filters import FilterConfig
from workers.staging import stage_table


@dataclass(frozen=True)
class StagedPeople:
    """A kind's staged people of one run, as the filters read them."""

    #: A SELECT of the run's people, one row each: ``key`` (what ``filtered`` keeps), ``manager_key``
    #: (the key of their manager in the feed), ``root`` (what ``under_managers`` names, in lower case)
    #: and ``attrs`` (jsonb), with whatever columns ``values`` reads.
    feed: sql.Composable
    #: Attribute -> SQL of its value in a feed row ``f``, in lower case; any other attribute is read
    #: from ``f.attrs``.
    values: Mapping[str, sql.Composable]
    #: The staged tables (with a ``key`` column) the filtered people leave.
    tables: tuple[sql.Composable, ...]
    #: Rows the manager tree walks through but the filters do not judge (`` UNION ALL SELECT key,
    #: manager_key, root ...``, may read ``feed``); empty: the feed's own tree only.
    nodes: sql.Composable = field(default_factory=lambda: sql.SQL(""))


def create_filtered(conn: psycopg.Connection[Any], run_id: int) -> None:
    conn.execute(
        sql.SQL("CREATE UNLOGGED TABLE IF NOT EXISTS {} (key text PRIMARY KEY)").format(stage_table("filtered", run_id))
    )


def _value(people: StagedPeople, attribute: str) -> sql.Composable:
    return people.values.get(attribute) or sql.SQL("lower(btrim(f.attrs ->> {}))").format(sql.Literal(attribute))


def _passes(filters: FilterConfig, people: StagedPeople, params: dict[str, Any]) -> sql.Composable:
    """SQL that is true for a feed row the filters keep; its values go in ``params``."""
    conditions: list[sql.Composable] = []
    if filters.under_managers:
        params["roots"] = [m.strip().lower() for m in filters.under_managers]
        conditions.append(sql.SQL("tk.key IS NOT NULL"))
    for n, (attribute, values) in enumerate(sorted(filters.exclude_values.items())):
        params[f"ex{n}"] = [v.strip().lower() for v in values]
        conditions.append(
            sql.SQL("NOT coalesce({v} = ANY({p}::text[]), false)").format(
                v=_value(people, attribute), p=sql.Placeholder(f"ex{n}")
            )
        )
    for n, (attribute, values) in enumerate(sorted(filters.include_values.items())):
        params[f"in{n}"] = [v.strip().lower() for v in values]
        conditions.append(
            sql.SQL("coalesce({v} = ANY({p}::text[]), false)").format(
                v=_value(people, attribute), p=sql.Placeholder(f"in{n}")
            )
        )
    return sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("true")


def apply_filters(
    conn: psycopg.Connection[Any],
    run_id: int,
    filters: FilterConfig | None,
    people: StagedPeople,
    params: Mapping[str, Any] | None = None,
) -> int:
    """Move the run's staged people the filters leave out to its ``filtered`` keys; how many.
    ``params``: what the kind's ``feed`` and ``nodes`` SQL read."""
    create_filtered(conn, run_id)
    if filters is None or not filters.active:
        return 0
    filtered = stage_table("filtered", run_id)
    values: dict[str, Any] = dict(params or {})
    passes = _passes(filters, people, values)
    # The tree joined, not asked with IN: the planner guesses a recursive CTE far too large to hash
    # a subplan, and an unhashed one reads the tree again for each person (minutes at 100,000).
    tree, join = (
        (
            sql.SQL(
                """, nodes AS (SELECT f.key, f.manager_key, f.root FROM feed f{nodes}),
               tree(key) AS (
                   SELECT n.key FROM nodes n WHERE n.root = ANY(%(roots)s::text[])
                   UNION SELECT n.key FROM nodes n JOIN tree t ON n.manager_key = t.key)"""
            ).format(nodes=people.nodes),
            sql.SQL(" LEFT JOIN tree tk ON tk.key = f.key"),
        )
        if filters.under_managers
        else (sql.SQL(""), sql.SQL(""))
    )
    n = conn.execute(
        sql.SQL(
            """WITH RECURSIVE feed AS MATERIALIZED ({feed}){tree}
               INSERT INTO {filtered} (key) SELECT f.key FROM feed f{join} WHERE NOT ({passes})
               ON CONFLICT DO NOTHING"""
        ).format(feed=people.feed, tree=tree, join=join, filtered=filtered, passes=passes),
        values,
    ).rowcount
    if n:
        for table in people.tables:
            conn.execute(sql.SQL("DELETE FROM {t} s USING {f} f WHERE s.key = f.key").format(t=table, f=filtered))
    return n


def leavers(run_id: int, person: str = "u", key: str = "email_key") -> sql.Composed:
    """People of this connection (``person``: an alias of lms.users) still active whom the filters
    now leave out, matched on the store's ``key`` column."""
    return sql.SQL(
        "{p}.source_connection_id = %(conn)s AND {p}.active AND EXISTS (SELECT 1 FROM {f} f WHERE f.key = {p}.{k})"
    ).format(p=sql.Identifier(person), k=sql.Identifier(key), f=stage_table("filtered", run_id))


def deactivates_leavers(filters: FilterConfig | None) -> bool:
    return filters is not None and filters.filter_leavers == "deactivate"
