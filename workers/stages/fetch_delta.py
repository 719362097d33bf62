"""The fetch stage's side of Graph delta (``incremental = true``, workers/sources/delta.py): which
round a run pulls, and what it keeps of it (migration 031).

A run pulls a full round when the connection has no deltaLink yet, or its last full round is
``full_every_days`` old (on the database clock); otherwise a delta round from the stored link. The
link a run got is kept as pending, with the run: the next fetch takes it only if that run
completed, so a failed or rejected run leaves the connection where it was and its changes come
again. A dry run keeps nothing. The Graph id -> key pairs a round saw are kept for good: they name
people Graph later reports removed by id alone.
"""

from __future__ import annotations

from typing import Any

import psycopg

from workers import store
from workers.rows import RunRow
from workers.sources.delta import DeltaRound

#: The statuses of a run whose pulled changes were imported.
_IMPORTED = ["completed", "completed_with_errors"]


def plan_round(conn: psycopg.Connection[Any], run: RunRow, key_field: str, full_every_days: int) -> DeltaRound:
    row = store.fetch_one(
        conn,
        """SELECT CASE WHEN r.status = ANY(%(done)s) THEN d.pending_link ELSE d.delta_link END AS link,
                  CASE WHEN r.status = ANY(%(done)s) THEN d.pending_full_at ELSE d.full_at END AS full_at,
                  now() AS now
           FROM sync.api_delta d LEFT JOIN sync.runs r ON r.id = d.pending_run_id
           WHERE d.connection_id = %(conn)s""",
        {"conn": run.connection_id, "done": _IMPORTED},
    )
    link = row["link"] if row else None
    due = row is None or row["full_at"] is None or (row["now"] - row["full_at"]).days >= full_every_days
    if link is None or due:
        return DeltaRound(link=None, key_field=key_field)
    known = {
        r["source_id"]: r["key"]
        for r in store.fetch_all(
            conn, "SELECT source_id, key FROM sync.api_source_ids WHERE connection_id = %s", (run.connection_id,)
        )
    }
    return DeltaRound(link=link, key_field=key_field, known=known)


def keep_round(conn: psycopg.Connection[Any], run: RunRow, round_: DeltaRound) -> None:
    """In the fetch stage's transaction: the round's link pending with the run, and the ids it saw."""
    if run.dry_run:
        return
    conn.execute(
        """INSERT INTO sync.api_delta AS d (connection_id, pending_link, pending_full_at, pending_run_id)
           VALUES (%(conn)s, %(link)s, CASE WHEN %(full)s THEN now() END, %(run)s)
           ON CONFLICT (connection_id) DO UPDATE SET
             -- What the run before this one got becomes the base if it was imported.
             delta_link = CASE WHEN (SELECT status FROM sync.runs WHERE id = d.pending_run_id) = ANY(%(done)s)
                               THEN d.pending_link ELSE d.delta_link END,
             full_at = CASE WHEN (SELECT status FROM sync.runs WHERE id = d.pending_run_id) = ANY(%(done)s)
                            THEN d.pending_full_at ELSE d.full_at END,
             pending_link = excluded.pending_link,
             pending_full_at = CASE WHEN %(full)s THEN now()
                                    WHEN (SELECT status FROM sync.runs WHERE id = d.pending_run_id) = ANY(%(done)s)
                                    THEN d.pending_full_at ELSE d.full_at END,
             pending_run_id = excluded.pending_run_id, updated_at = now()""",
        {"conn": run.connection_id, "link": round_.new_link, "full": round_.full, "run": run.id, "done": _IMPORTED},
    )
    if round_.seen:
        conn.execute(
            """INSERT INTO sync.api_source_ids (connection_id, source_id, key)
               SELECT %s, i, k FROM unnest(%s::text[], %s::text[]) AS x(i, k)
               ON CONFLICT (connection_id, source_id) DO UPDATE SET key = excluded.key""",
            (run.connection_id, list(round_.seen), list(round_.seen.values())),
        )
