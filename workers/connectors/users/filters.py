"""Kind ``users``, the connection's filters (``[connections.filters]``): its staged people as the
shared filters read them (workers/connectors/people_filters.py), keyed by e-mail.

A ``same`` row (in the store as it is, never staged) is read from the store: its hash matches, so
its values are the feed's.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from schemas.kinds import UsersConnection
from workers.connectors import people_filters
from workers.connectors.people_filters import StagedPeople, create_filtered
from workers.staging import stage_table

__all__ = ["apply_filters", "create_filtered", "deactivates_leavers", "leavers"]

#: The staged value of a core attribute (``f``: a row of the run's feed), compared in lower case.
_CORE = {
    "email": sql.SQL("f.key"),
    "manager": sql.SQL("f.manager_key"),
    "first_name": sql.SQL("lower(btrim(f.first_name))"),
    "last_name": sql.SQL("lower(btrim(f.last_name))"),
}


def _people(run_id: int, *, partial: bool) -> StagedPeople:
    """A ``partial`` feed (a Graph delta: only who changed) walks the tree through the store's people
    of the connection where the feed does not name them: their manager as last imported."""
    typed, same = stage_table("users", run_id), stage_table("same", run_id)
    feed = sql.SQL(
        """SELECT s.key, s.manager_key, s.key AS root, s.first_name, s.last_name, s.attrs FROM {typed} s
           UNION ALL
           SELECT s.key, m.email_key, s.key, u.first_name, u.last_name, u.attributes
           FROM {same} s JOIN lms.users u ON u.email_key = s.key
           LEFT JOIN lms.users m ON m.id = u.manager_id"""
    ).format(typed=typed, same=same)
    stored = sql.SQL(
        """ UNION ALL SELECT u.email_key, m.email_key, u.email_key
            FROM lms.users u LEFT JOIN lms.users m ON m.id = u.manager_id
            WHERE u.source_connection_id = %(conn)s
              AND NOT EXISTS (SELECT 1 FROM feed f WHERE f.key = u.email_key)"""
    )
    return StagedPeople(feed, _CORE, (typed, same), stored if partial else sql.SQL(""))


def apply_filters(
    conn: psycopg.Connection[Any], run_id: int, connection_id: int, cfg: UsersConnection, *, partial: bool
) -> int:
    """Move the run's staged people the filters leave out to its ``filtered`` keys; how many."""
    return people_filters.apply_filters(
        conn, run_id, cfg.filters, _people(run_id, partial=partial), {"conn": connection_id}
    )


def leavers(run_id: int) -> sql.Composed:
    """People of this connection (``u``, lms.users) still active whom the filters now leave out."""
    return people_filters.leavers(run_id, "u", "email_key")


def deactivates_leavers(cfg: UsersConnection) -> bool:
    return people_filters.deactivates_leavers(cfg.filters)
