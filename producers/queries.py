"""Read side for admins: execution history, one run with its stages, its row errors, and what is
going on now (status)."""

from __future__ import annotations

from datetime import date
from typing import Any

from psycopg import sql

from producers import scheduling
from workers import store
from workers.connectors import kind_of
from workers.connectors.contract import ROWS_READ, Counted

COUNT_KEYS = ("read", "created", "updated", "unchanged", "deactivated", "rejected")
#: An undo run counts what it gave back (workers/runs/undo.py), whatever the kind of the run it undid.
UNDONE = Counted(
    "records",
    (
        ("restored", "restored"),
        ("removed", "removed"),
        ("deactivated", "deactivated"),
        ("reactivated", "reactivated"),
        ("conflicts skipped", "conflicts_skipped"),
    ),
)


def _run_view(r: dict[str, Any]) -> dict[str, Any]:
    counts = {k: int(r["counts"].get(k, 0)) for k in COUNT_KEYS}
    extra = {k: v for k, v in r["counts"].items() if k not in COUNT_KEYS}
    start = r["since"] or (r["started_at"] or r["created_at"]).date()
    return {
        "run_id": r["id"],
        "connection": r["connection_name"],
        "kind": r["kind"],
        # A run completed by replaying its dead letters shows as a replay; the trigger stays visible.
        "type": "replay" if r["replayed_at"] else r["trigger"],
        "trigger": r["trigger"],
        "start_date": start.isoformat(),
        "since": r["since"].isoformat() if r["since"] else None,
        "created_at": r["created_at"].isoformat(),
        "started_at": r["started_at"].isoformat() if r["started_at"] else None,
        "finished_at": r["finished_at"].isoformat() if r["finished_at"] else None,
        "held_at": r["held_at"].isoformat() if r["held_at"] else None,
        # The time it worked, without the wait for a decision (shown apart as wait_s).
        "duration_s": round(float(r["duration_s"]), 3) if r["duration_s"] is not None else None,
        "wait_s": round(float(r["wait_s"]), 3) if r["wait_s"] is not None else None,
        "status": r["status"],
        "access": r["access_mode"],
        "dry_run": r["dry_run"],
        "counts": counts,
        # The kind's own counts (a content run: courses and learner records), or None.
        "content": {k: int(r["counts"].get(k, 0)) for k in _history_counts(r["kind"])} or None,
        # What the run counted, in its kind's terms ({noun: {verb: n}}); empty while nothing is counted.
        "kind_counts": _kind_counts(r),
        "export": _export_view(r["export"]),
        "details": extra,
        "has_errors": bool(r["error_rows"]),
        "error": r["error"],
        "note": r["note"],
        "plan": r["plan"],
        "approved_by": r["approved_by"],
        # Approvals as a decision: who approved or rejected the held run, when and why.
        "decision": _decision(r),
        # Dead letters of this run not replayed: the run is dead-lettered until they are.
        "dead_letters": int(r["dead_letters"]),
        "rerun_of": r["rerun_of"],
        # An undo run names the run it undoes; an undone run names the undo (feedsync undo).
        "undo_of": r["undo_of"],
        "undone_by": r["undone_by"],
        "journaled": r["journaled"],
    }


def _decision(r: dict[str, Any]) -> dict[str, Any] | None:
    if r["decided_by"] is None:
        return None
    return {
        "outcome": "approved" if r["approved_by"] else "rejected",
        "by": r["decided_by"],
        "at": r["decided_at"].isoformat() if r["decided_at"] else None,
        "comment": r["decision_comment"],
    }


def _kind_counts(r: dict[str, Any]) -> dict[str, dict[str, int]]:
    if not r["counts"]:
        plan = r["plan"] or {}
        if "rows_read" in plan:  # held, or rejected: nothing applied, but its files were read
            return {ROWS_READ.noun: {"read": int(plan["rows_read"]), "rejected": int(plan.get("rows_rejected", 0))}}
        return {}  # queued, or ended before any stage counted
    if r["trigger"] == "undo":
        declared: tuple[Counted, ...] = (UNDONE,)
    else:
        try:
            declared = kind_of(r["kind"]).HISTORY
        except KeyError:  # a kind this version no longer has: the rows its files held
            declared = (ROWS_READ,)
    return {c.noun: {verb: int(r["counts"].get(key, 0)) for verb, key in c.verbs} for c in declared}


def counts_text(kind_counts: dict[str, dict[str, int]], *, every: bool = False) -> str:
    """``units: 2 created, 1 moved; people: 3 created``, for the CLI and the console alike. Short
    (``every`` False) leaves out the verbs at 0, keeping the first so that a noun never reads blank."""
    parts = []
    for noun, verbs in kind_counts.items():
        shown = [(v, n) for v, n in verbs.items() if every or n] or list(verbs.items())[:1]
        parts.append(f"{noun}: " + ", ".join(f"{n} {v}" for v, n in shown))
    return "; ".join(parts)


def count_columns(kind_counts: dict[str, dict[str, int]]) -> dict[str, Any]:
    """A history row's count columns (the CLI's table, the console's list): the rows of its files
    and the people it deactivated, each blank for a kind that counts no such thing, and the rest
    of its counts as text in the kind's own terms."""
    rows = kind_counts.get("rows", {})
    return {
        "read": rows.get("read", ""),
        "rejected": rows.get("rejected", ""),
        "deactivated": kind_counts.get("people", {}).get("deactivated", ""),
        "counts": counts_text({noun: verbs for noun, verbs in kind_counts.items() if "read" not in verbs}),
    }


def _history_counts(kind: str) -> tuple[str, ...]:
    try:
        module = kind_of(kind)
    except KeyError:  # a run of a kind this version no longer has keeps its history
        return ()
    return () if module.EXPORT else module.HISTORY_COUNTS


def _export_view(e: dict[str, Any] | None) -> dict[str, Any] | None:
    """An export run's window (half-open, UTC) and the file it delivered."""
    if e is None:
        return None
    return {
        "kind": e["kind"],
        "window_from": e["window_from"],
        "window_to": e["window_to"],
        "file": e["file_name"],
        "folder": e["destination"],
        "rows": e["rows"],
        "bytes": e["bytes"],
        "sha256": e["sha256"],
    }


_RUNS = """
    SELECT r.*,
           EXTRACT(EPOCH FROM (coalesce(r.finished_at, clock_timestamp()) - r.started_at
                               - coalesce(w.wait, interval '0'))) AS duration_s,
           EXTRACT(EPOCH FROM w.wait) AS wait_s,
           (SELECT count(*) FROM sync.dead_letters d WHERE d.run_id = r.id AND d.replayed_at IS NULL) AS dead_letters,
           EXISTS (SELECT 1 FROM sync.row_errors e WHERE e.run_id = r.id) AS error_rows,
           (SELECT to_jsonb(x) FROM sync.exports x WHERE x.run_id = r.id) AS export
    FROM sync.runs r
    -- The wait for a decision: from held to decided (or to now, while it still waits).
    CROSS JOIN LATERAL (SELECT coalesce(r.decided_at, CASE WHEN r.status = 'awaiting_approval'
                                                      THEN clock_timestamp() END) - r.held_at AS wait) w
"""


#: The columns of the error report (`feedsync errors --csv`, the console's CSV).
ERROR_REPORT_COLUMNS = ["file", "line", "column", "column_name", "code", "message", "value", "row_rejected"]
#: A run's type as the history shows it: a run completed by replaying its dead letters is a replay.
_TYPE = "(CASE WHEN r.replayed_at IS NOT NULL THEN 'replay' ELSE r.trigger END)"


def history(
    connection: str | None = None, limit: int = 50, *, status: str | None = None, run_type: str | None = None
) -> list[dict[str, Any]]:
    """Runs and drops set aside as duplicates, newest first."""
    from producers import duplicates

    with store.connect() as conn:
        rows = store.fetch_all(
            conn,
            _RUNS
            + f""" WHERE (%(c)s::text IS NULL OR r.connection_name = %(c)s)
                     AND (%(s)s::text IS NULL OR r.status = %(s)s) AND (%(t)s::text IS NULL OR {_TYPE} = %(t)s)
                   ORDER BY r.id DESC LIMIT %(n)s""",
            {"c": connection, "n": limit, "s": status, "t": run_type},
        )
        # A duplicate is an entry of its own type and status: a filter on anything else leaves it out.
        wanted = status in (None, "duplicate") and run_type in (None, "duplicate")
        dropped = duplicates.entries(conn, connection, limit) if wanted else []
    # Runs keep their id order; each duplicate goes before the first run created before it.
    merged: list[dict[str, Any]] = []
    for run in (_run_view(r) for r in rows):
        while dropped and dropped[0]["created_at"] >= run["created_at"]:
            merged.append(dropped.pop(0))
        merged.append(run)
    return [*merged, *dropped][:limit]


def today() -> date:
    """The UTC date by the database's clock, the one that dates runs and export windows (never the host's)."""
    with store.connect() as conn:
        row = store.fetch_one(conn, "SELECT (now() AT TIME ZONE 'UTC')::date AS d")
    assert row is not None
    return row["d"]  # type: ignore[no-any-return]


def status_counts(connection: str | None = None) -> dict[str, int]:
    """Runs per status (all of them, not only the latest of each connection)."""
    with store.connect() as conn:
        rows = store.fetch_all(
            conn,
            "SELECT status, count(*) AS n FROM sync.runs r WHERE %(c)s::text IS NULL OR r.connection_name = %(c)s "
            "GROUP BY status",
            {"c": connection},
        )
    return {r["status"]: int(r["n"]) for r in rows}


def connections_overview() -> list[dict[str, Any]]:
    """Each live connection with its schedule and next slot (database clock), its latest run and
    the files waiting for a run."""
    with store.connect() as conn:
        return store.fetch_all(
            conn,
            sql.SQL(
                """SELECT c.name, c.kind, c.enabled, c.config,
                      coalesce(c.config ->> 'trigger', 'on_arrival') AS trigger,
                      s.start_at, s.every_days, s.every_hours, s.access AS schedule_access,
                      s.enabled AS schedule_enabled,
                      CASE WHEN s.connection_id IS NULL THEN NULL ELSE {next_slot} END AS next_slot,
                      lr.id AS last_run_id, lr.status AS last_status, lr.finished_at AS last_finished_at,
                      EXISTS (SELECT 1 FROM sync.row_errors e WHERE e.run_id = lr.id) AS last_has_errors,
                      (SELECT count(*) FROM sync.feed_files f
                       WHERE f.connection_id = c.id AND f.status = 'registered') AS files_waiting
               FROM sync.connections c
               LEFT JOIN sync.schedules s ON s.connection_id = c.id
               LEFT JOIN LATERAL (SELECT id, status, finished_at FROM sync.runs r WHERE r.connection_id = c.id
                                  ORDER BY id DESC LIMIT 1) lr ON true
               WHERE c.deleted_at IS NULL ORDER BY c.name"""
            ).format(next_slot=scheduling.NEXT_SLOT),
        )


def run_detail(run_id: int) -> dict[str, Any] | None:
    with store.connect() as conn:
        r = store.fetch_one(conn, _RUNS + " WHERE r.id = %s", (run_id,))
        if r is None:
            return None
        stages = store.fetch_all(
            conn,
            """SELECT stage, part, status, attempts, started_at, finished_at, counts, error,
                      EXTRACT(EPOCH FROM (finished_at - started_at)) AS duration_s
               FROM sync.stage_runs WHERE run_id = %s ORDER BY id""",
            (run_id,),
        )
        files = store.fetch_all(
            conn,
            """SELECT f.original_path AS file, f.stored_path, rf.status, rf.rows_read, rf.chunks, rf.error,
                      f.removed_at
               FROM sync.run_files rf JOIN sync.feed_files f ON f.id = rf.file_id WHERE rf.run_id = %s
               ORDER BY rf.ordinal""",
            (run_id,),
        )
        memberships = store.fetch_all(
            conn,
            """SELECT g.name AS group, mc.change, count(*) AS people,
                      string_agg(coalesce(u.external_id, u.email), ', ' ORDER BY u.id)
                        FILTER (WHERE mc.id IN (SELECT id FROM sync.membership_changes x
                                                WHERE x.run_id = mc.run_id AND x.group_id = mc.group_id
                                                  AND x.change = mc.change ORDER BY x.id LIMIT 5)) AS sample
               FROM sync.membership_changes mc JOIN lms.groups g ON g.id = mc.group_id
               JOIN lms.users u ON u.id = mc.user_id
               WHERE mc.run_id = %s GROUP BY g.name, mc.change, mc.run_id, mc.group_id ORDER BY g.name, mc.change""",
            (run_id,),
        )
        replays = store.fetch_all(
            conn,
            """SELECT id, dead_letter_id, message_id, actor_name AS actor, replayed_by, replayed_at, forced
               FROM sync.replays WHERE run_id = %s ORDER BY id""",
            (run_id,),
        )
        actions = store.fetch_all(
            conn,
            """SELECT action, from_status, reason, done_by, done_at FROM sync.run_actions
               WHERE run_id = %s ORDER BY id""",
            (run_id,),
        )
    view = _run_view(r)
    view["stages"] = [
        {
            "stage": s["stage"],
            "part": s["part"],
            "status": s["status"],
            "attempts": s["attempts"],
            "duration_s": round(float(s["duration_s"]), 3) if s["duration_s"] is not None else None,
            "counts": s["counts"],
            "error": s["error"],
        }
        for s in stages
    ]
    view["files"] = files
    view["replays"] = replays
    view["memberships"] = memberships
    view["actions"] = actions
    return view


def errors(run_id: int) -> list[dict[str, Any]]:
    with store.connect() as conn:
        return store.fetch_all(
            conn,
            """SELECT file_name AS file, line, column_no AS column, column_name, code, message, value,
                      rejected AS row_rejected
               FROM sync.row_errors WHERE run_id = %s ORDER BY file_name, line NULLS FIRST, id""",
            (run_id,),
        )


def run_status(run_id: int) -> dict[str, Any] | None:
    with store.connect() as conn:
        return store.fetch_one(
            conn,
            """SELECT r.status, r.error,
                      (SELECT count(*) FROM sync.stage_runs s WHERE s.run_id = r.id AND s.status = 'succeeded') AS done,
                      (SELECT count(*) FROM sync.stage_runs s WHERE s.run_id = r.id) AS stages
               FROM sync.runs r WHERE r.id = %s""",
            (run_id,),
        )


def overview() -> dict[str, Any]:
    """What is going on now: runs not ended, dead letters not replayed, files waiting for a run."""
    with store.connect() as conn:
        runs = store.fetch_all(
            conn,
            """SELECT status, count(*) AS n FROM sync.runs
               WHERE status IN ('queued', 'in_progress', 'awaiting_approval') GROUP BY status""",
        )
        other = store.fetch_one(
            conn,
            """SELECT (SELECT count(*) FROM sync.dead_letters WHERE replayed_at IS NULL) AS dead_letters,
                      (SELECT count(*) FROM sync.feed_files f JOIN sync.connections c ON c.id = f.connection_id
                       WHERE f.status = 'registered' AND c.deleted_at IS NULL) AS files_waiting,
                      (SELECT count(*) FROM sync.connections WHERE deleted_at IS NULL) AS connections""",
        )
    assert other is not None
    counts = {s: 0 for s in ("queued", "in_progress", "awaiting_approval")}
    counts.update({r["status"]: int(r["n"]) for r in runs})
    return {"runs": counts, **{k: int(v) for k, v in other.items()}}
