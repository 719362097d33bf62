"""What the kinds that change people (users, hierarchy) share of their plan: the safety thresholds'
sentences, and the rejected rows whose person could not be read."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from schemas.kinds import PeopleConnection
from workers import store


def unreadable_rows(
    conn: psycopg.Connection[Any], run_id: int, kept: sql.Composable, sample: int, files: list[int] | None = None
) -> dict[str, Any]:
    """How many rejected rows of the run (of ``files``, if given) have no key in ``kept`` (a table
    with file_id and line_no), with the first places as 'file line N'."""
    rows = sql.SQL(
        """SELECT DISTINCT e.file_name, e.line FROM sync.row_errors e
           WHERE e.run_id = %(run)s AND e.rejected AND e.line IS NOT NULL
             AND (%(files)s::bigint[] IS NULL OR e.file_id = ANY(%(files)s::bigint[]))
             AND NOT EXISTS (SELECT 1 FROM {kept} k WHERE k.file_id = e.file_id AND k.line_no = e.line)"""
    ).format(kept=kept)
    params = {"run": run_id, "files": files, "n": sample}
    n = store.fetch_one(conn, sql.SQL("SELECT count(*) AS n FROM ({}) r").format(rows), params)
    places = store.fetch_all(
        conn, sql.SQL("SELECT file_name, line FROM ({}) r ORDER BY 1, 2 LIMIT %(n)s").format(rows), params
    )
    return {
        "unreadable_rejected": int(n["n"]) if n else 0,
        "unreadable_sample": [f"{p['file_name']} line {p['line']}" for p in places],
    }


def growth_reasons(cfg: PeopleConnection, p: dict[str, Any]) -> list[str]:
    """max_create (new people over the connection's active people) and max_reject_share (rows
    rejected over rows read, counted by the load before it plans)."""
    max_create, max_reject = cfg.growth_limits()
    reasons = []
    creates = int(p.get("creates", 0))
    if max_create is not None and max_create.exceeded(creates, p["population"]):
        reasons.append(f"it would create {creates} people beside {p['population']} (max_create = {cfg.max_create})")
    read, rejected = int(p.get("rows_read", 0)), int(p.get("rows_rejected", 0))
    if max_reject is not None and max_reject.exceeded(rejected, read):
        reasons.append(f"{rejected} of {read} rows read were rejected (max_reject_share = {cfg.max_reject_share})")
    return reasons


def limit_text(cfg: PeopleConnection) -> str:
    what = "a full feed" if cfg.full_feed else "a mapped state"
    default = f" (the default for {what})" if cfg.max_deactivate is None else ""
    return f"{cfg.deactivate_limit}{default}"


def unreadable_reason(p: dict[str, Any], what: str) -> list[str]:
    """A run that would deactivate anyone while rows it could not read were rejected waits: those
    people may only be missing because their rows were refused."""
    # People who arrive already gone are in the feed, so no unreadable row can be about them.
    gone = int(p.get("deactivations") or 0) - int(p.get("arrive_inactive") or 0)
    if not (gone > 0 and p.get("unreadable_rejected")):
        return []
    return [
        f"it would deactivate {gone} {what} while {p['unreadable_rejected']} rejected row(s) could "
        f"not be read for who they are about ({', '.join(p['unreadable_sample'])}"
        f"{', ...' if p['unreadable_rejected'] > len(p['unreadable_sample']) else ''}); "
        "they may be among them: fix those rows and rerun, or approve if they are gone"
    ]
