"""Kind ``hierarchy``, the connection's filters (``[connections.filters]``) on the bundle's people
(the user file; units and positions are never filtered), read as the shared filters read every
people kind (workers/connectors/people_filters.py). People are keyed by id number: the manager
tree is the file's manager ids, and ``under_managers`` names its roots by e-mail."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from workers.connectors import people_filters
from workers.connectors.hierarchy.transform import config_of
from workers.connectors.people_filters import StagedPeople
from workers.rows import RunRow
from workers.staging import stage_table


def _lower(column: str) -> sql.Composed:
    return sql.SQL("lower(btrim(f.{}))").format(sql.Identifier(column))


#: The staged value of a core attribute of the user file (``f``: a row of the run's people).
_CORE = {
    attribute: _lower(column)
    for attribute, column in (
        ("key", "key"),
        ("email", "email"),
        ("first_name", "first_name"),
        ("last_name", "last_name"),
        ("unit", "unit_key"),
        ("position", "position_key"),
        ("manager", "manager_key"),
    )
}


def filter_people(conn: psycopg.Connection[Any], run: RunRow) -> int:
    """Move the run's staged people the filters leave out to its ``filtered`` keys; how many."""
    h = stage_table("huser", run.id)
    feed = sql.SQL(
        """SELECT s.key, s.manager_key, lower(btrim(s.email)) AS root, s.email, s.first_name, s.last_name,
                  s.unit_key, s.position_key, s.attrs
           FROM {h} s"""
    ).format(h=h)
    return people_filters.apply_filters(conn, run.id, config_of(run.config).filters, StagedPeople(feed, _CORE, (h,)))


def leavers(run: RunRow) -> sql.Composed:
    """People of this connection (``t``, lms.users) still active whom the filters now leave out."""
    return people_filters.leavers(run.id, "t", "external_id")


def deactivates_leavers(run: RunRow) -> bool:
    return people_filters.deactivates_leavers(config_of(run.config).filters)
