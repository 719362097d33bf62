"""Ownership follows a connection's name: a connection deleted and created again under the same
name takes back what its earlier rows owned. Without it, the unchanged people of a full feed stay
owned by the deleted row, so the feed never deactivates them again and no threshold counts them."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from workers.connectors import declared_tables


def take_back(conn: psycopg.Connection[Any], name: str, connection_id: int) -> int:
    """Give the rows of deleted connections named ``name`` to ``connection_id``. Returns the rows moved."""
    earlier = [
        r[0]
        for r in conn.execute(
            "SELECT id FROM sync.connections WHERE name = %s AND deleted_at IS NOT NULL AND id <> %s",
            (name, connection_id),
        ).fetchall()
    ]
    if not earlier:
        return 0
    moved = 0
    # Every table whose rows name the connection that owns them (source_connection_id), as the kinds declare.
    for table in (t.name for t in declared_tables() if t.owned):
        moved += conn.execute(
            sql.SQL("UPDATE {} SET source_connection_id = %s WHERE source_connection_id = ANY(%s)").format(
                sql.Identifier("lms", table)
            ),
            (connection_id, earlier),
        ).rowcount
    return moved
