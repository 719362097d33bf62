"""Refusing connections whose path patterns overlap: the watcher refuses a file that matches two
connections, so two such connections would leave files in the drop dir for ever."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from schemas.kinds import Connection, KindConfig, file_kinds
from schemas.pathpattern import overlap
from workers import store


def overlaps_with_stored(conn: psycopg.Connection[Any], connections: Sequence[KindConfig]) -> list[str]:
    """Sentences for each connection of the file whose path overlaps a live connection the file does
    not declare (those of one file are checked with their lines by load_connections_toml)."""
    declared = {c.name for c in connections}
    stored = [
        s
        for s in store.fetch_all(
            conn,
            "SELECT name, config ->> 'path' AS path FROM sync.connections "
            "WHERE deleted_at IS NULL AND kind = ANY(%s) AND coalesce(config ->> 'source', 'files') = 'files' "
            "ORDER BY name",
            (file_kinds(),),
        )
        if s["name"] not in declared and s["path"]
    ]
    return [
        f"connection {c.name!r}: path {c.path!r} overlaps the path {s['path']!r} of connection {s['name']!r} "
        "(applied from another file): a file could match both, and such a file is never taken; narrow one of them "
        "(* stays inside one folder, ** is any depth)"
        for c in connections
        if isinstance(c, Connection) and getattr(c, "source", "files") == "files"
        for s in stored
        if overlap(c.path, s["path"])
    ]
