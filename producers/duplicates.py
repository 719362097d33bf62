"""Drops set aside as duplicates, as history entries: an admin who dropped a file and sees no run
must see why (type ``duplicate``, naming the run that imported those bytes)."""

from __future__ import annotations

from typing import Any

import psycopg

from workers import store


def entries(conn: psycopg.Connection[Any], connection: str | None, limit: int) -> list[dict[str, Any]]:
    rows = store.fetch_all(
        conn,
        """SELECT d.id, d.path, d.dropped_at, d.duplicate_of_run, c.name
           FROM sync.file_drops d JOIN sync.connections c ON c.id = d.connection_id
           WHERE d.duplicate AND (%(c)s::text IS NULL OR c.name = %(c)s)
           ORDER BY d.dropped_at DESC, d.id DESC LIMIT %(n)s""",
        {"c": connection, "n": limit},
    )
    return [_view(r) for r in rows]


def _view(r: dict[str, Any]) -> dict[str, Any]:
    run = r["duplicate_of_run"]
    why = (
        f"the same bytes as a file run {run} imported; not imported again"
        if run is not None
        else "the same bytes as a file waiting for a run; not imported again"
    )
    return {
        "run_id": None,
        "connection": r["name"],
        "type": "duplicate",
        "file": r["path"],
        "duplicate_of_run": run,
        "start_date": r["dropped_at"].date().isoformat(),
        "created_at": r["dropped_at"].isoformat(),
        "started_at": r["dropped_at"].isoformat(),
        "finished_at": r["dropped_at"].isoformat(),
        "duration_s": None,
        "status": "duplicate",
        "counts": {},
        "content": None,
        "export": None,
        "details": {},
        "has_errors": False,
        "error": None,
        "note": why,
    }
