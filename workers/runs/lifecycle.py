"""The one owner of a run's status: every transition of ``sync.runs.status`` is here, each guarded
in SQL (``UPDATE … WHERE status IN (…) RETURNING``), so a late or duplicate caller changes nothing
and learns so from the missing row.

::

    queued ──start──▶ in_progress ──finish──▶ completed | completed_with_errors | failed
                        │    ▲
                   hold │    │ approve            failed ──replay──▶ in_progress
                        ▼    │
                  awaiting_approval ──reject──▶ rejected
    queued | in_progress | awaiting_approval ──fail──▶ failed, ──cancel──▶ cancelled
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from schemas.states import ACTIVE_RUN_STATUSES, RunStatus
from workers import store

_ACTIVE = [s.value for s in ACTIVE_RUN_STATUSES]
_ENDINGS = (RunStatus.COMPLETED, RunStatus.COMPLETED_WITH_ERRORS, RunStatus.FAILED)


def start(conn: psycopg.Connection[Any], run_id: int) -> bool:
    """queued → in_progress."""
    return (
        store.fetch_one(
            conn,
            """UPDATE sync.runs SET status = 'in_progress', started_at = clock_timestamp()
               WHERE id = %s AND status = 'queued' RETURNING id""",
            (run_id,),
        )
        is not None
    )


def hold(conn: psycopg.Connection[Any], run_id: int) -> bool:
    """in_progress → awaiting_approval: the plan exceeds a safety threshold."""
    return (
        store.fetch_one(
            conn,
            "UPDATE sync.runs SET status = 'awaiting_approval', held_at = clock_timestamp() "
            "WHERE id = %s AND status = 'in_progress' RETURNING id",
            (run_id,),
        )
        is not None
    )


def finish(
    conn: psycopg.Connection[Any],
    run_id: int,
    status: RunStatus,
    counts: dict[str, int],
    error: str | None,
    note: str | None,
) -> bool:
    """in_progress → completed, completed_with_errors or failed, with the run's counts."""
    if status not in _ENDINGS:
        raise ValueError(f"a run does not finish as {status}")
    return (
        store.fetch_one(
            conn,
            """UPDATE sync.runs SET status = %s, counts = counts || %s, error = coalesce(error, %s),
                      note = coalesce(%s, note), finished_at = clock_timestamp()
               WHERE id = %s AND status = 'in_progress' RETURNING id""",
            (status.value, Jsonb(counts), error, note, run_id),
        )
        is not None
    )


def fail(conn: psycopg.Connection[Any], run_id: int, error: str) -> int | None:
    """An active run → failed; its connection's id, or None if it had already ended."""
    row = store.fetch_one(
        conn,
        """UPDATE sync.runs SET status = 'failed', error = %s, finished_at = clock_timestamp()
           WHERE id = %s AND status = ANY(%s) RETURNING connection_id""",
        (error, run_id, _ACTIVE),
    )
    return None if row is None else int(row["connection_id"])


def cancel(conn: psycopg.Connection[Any], run_id: int, why: str) -> dict[str, Any] | None:
    """An active run → cancelled, the reason added to its note; {connection_id, from_status,
    dry_run}, or None if it had already ended."""
    return store.fetch_one(
        conn,
        """UPDATE sync.runs r SET status = 'cancelled', finished_at = clock_timestamp(),
                  note = CASE WHEN r.note IS NULL THEN %(why)s ELSE r.note || '; ' || %(why)s END
           FROM (SELECT id, status FROM sync.runs WHERE id = %(run)s FOR UPDATE) old
           WHERE r.id = old.id AND r.status = ANY(%(active)s)
           RETURNING r.connection_id, old.status AS from_status, r.dry_run""",
        {"why": why, "run": run_id, "active": _ACTIVE},
    )


def decide(
    conn: psycopg.Connection[Any], run_id: int, *, approved: bool, who: str, comment: str | None = None
) -> dict[str, Any] | None:
    """awaiting_approval → in_progress (approved) or rejected, recording who decided, when and why;
    its {connection_id}, or None if the run was not waiting."""
    return store.fetch_one(
        conn,
        """UPDATE sync.runs SET decided_by = %(who)s, decided_at = clock_timestamp(), decision_comment = %(why)s,
                  status = CASE WHEN %(ok)s THEN 'in_progress' ELSE 'rejected' END,
                  approved_by = CASE WHEN %(ok)s THEN %(who)s END,
                  approved_at = CASE WHEN %(ok)s THEN now() END,
                  finished_at = CASE WHEN %(ok)s THEN NULL ELSE now() END
           WHERE id = %(run)s AND status = 'awaiting_approval' RETURNING connection_id""",
        {"who": who, "ok": approved, "run": run_id, "why": comment},
    )


def reopen_for_replay(conn: psycopg.Connection[Any], run_id: int) -> bool:
    """failed → in_progress: its dead letters are replayed."""
    return (
        store.fetch_one(
            conn,
            """UPDATE sync.runs SET status = 'in_progress', error = NULL, finished_at = NULL,
                      replayed_at = clock_timestamp()
               WHERE id = %s AND status = 'failed' RETURNING id""",
            (run_id,),
        )
        is not None
    )
