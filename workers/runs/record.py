"""What a run records besides its status: its counts, its note and its plan.

With ``lifecycle`` (the status and its times) these are the only writes to ``sync.runs`` outside
this package; stages and producers call them rather than writing the run's row themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg.types.json import Jsonb


def add_counts(conn: psycopg.Connection[Any], run_id: int, counts: Mapping[str, int | str]) -> None:
    """Merge ``counts`` into the run's counts (a key already there is replaced)."""
    conn.execute("UPDATE sync.runs SET counts = counts || %s WHERE id = %s", (Jsonb(dict(counts)), run_id))


def note(conn: psycopg.Connection[Any], run_id: int, text: str, *, keep: bool = False) -> None:
    """Set the run's note; with ``keep`` only when it has none yet (the first reason stays)."""
    conn.execute(
        "UPDATE sync.runs SET note = CASE WHEN %s THEN coalesce(note, %s) ELSE %s END WHERE id = %s",
        (keep, text, text, run_id),
    )


def set_plan(
    conn: psycopg.Connection[Any], run_id: int, plan: dict[str, Any], *, journaled: bool | None = None
) -> None:
    """Store the run's plan (and whether its load is journaled for undo, when known)."""
    conn.execute(
        "UPDATE sync.runs SET plan = %s, journaled = coalesce(%s, journaled) WHERE id = %s",
        (Jsonb(plan), journaled, run_id),
    )


def add_to_plan(conn: psycopg.Connection[Any], run_id: int, key: str, value: Any) -> None:
    """Add one entry to the stored plan (what a partly applied run has applied so far)."""
    conn.execute(
        "UPDATE sync.runs SET plan = plan || jsonb_build_object(%s::text, %s::jsonb) WHERE id = %s",
        (key, Jsonb(value), run_id),
    )
