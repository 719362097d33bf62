"""Kind ``hierarchy``, the plan and its thresholds: what a full feed would deactivate per part."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import psycopg
from psycopg import sql

from workers import store
from workers.connectors.hierarchy.filters import deactivates_leavers, leavers
from workers.connectors.hierarchy.transform import config_of, expected_files, store_table
from workers.connectors.thresholds import growth_reasons, limit_text, unreadable_reason, unreadable_rows
from workers.rows import RunRow
from workers.staging import stage_table


def classify(conn: psycopg.Connection[Any], run: RunRow) -> None:
    return None  # people are matched in apply_users, once the run's new units and positions exist


# -- plan and thresholds --------------------------------------------------------------------------------


def _part_files(conn: psycopg.Connection[Any], run: RunRow, part: str) -> list[dict[str, Any]]:
    """The run's files of a part (id and status)."""
    name = (expected_files(run.config) or {}).get(part)
    files = store.fetch_all(
        conn,
        """SELECT f.id, f.original_path, rf.status FROM sync.run_files rf JOIN sync.feed_files f ON f.id = rf.file_id
           WHERE rf.run_id = %s""",
        (run.id,),
    )
    return [f for f in files if PurePosixPath(f["original_path"]).name == name]


def _part_read(conn: psycopg.Connection[Any], run: RunRow, part: str) -> bool:
    """A part may say who is gone only if its file was read whole in this run."""
    mine = [f["status"] for f in _part_files(conn, run, part)]
    return bool(mine) and all(s == "parsed" for s in mine)


def deactivates(conn: psycopg.Connection[Any], run: RunRow, part: str) -> bool:
    return config_of(run.config).full_feed and _part_read(conn, run, part)


def _absent(run: RunRow, part: str) -> sql.Composed:
    """Active records (``t``) of this connection missing from the part's file: neither staged, nor
    rejected (being refused is not being gone), nor left out by the filters (nor is being filtered
    out: a leaver goes only with filter_leavers = "deactivate", ``gone_filter``)."""
    filtered = (
        sql.SQL(" AND NOT EXISTS (SELECT 1 FROM {} f WHERE f.key = t.external_id)").format(
            stage_table("filtered", run.id)
        )
        if part == "user"
        else sql.SQL("")
    )
    return sql.SQL(
        """t.source_connection_id = %(conn)s AND t.active
           AND NOT EXISTS (SELECT 1 FROM {staged} s WHERE s.key = t.external_id)
           AND NOT EXISTS (SELECT 1 FROM {rejected} r WHERE r.part = {part} AND r.key = t.external_id){filtered}"""
    ).format(
        staged=stage_table("huser" if part == "user" else part, run.id),
        rejected=stage_table("hrej", run.id),
        part=sql.Literal(part),
        filtered=filtered,
    )


def gone_filter(conn: psycopg.Connection[Any], run: RunRow, part: str) -> sql.Composed | None:
    """What the load deactivates of a part (``{table} t WHERE ...``, one anti-join): records missing
    from a full feed's file read whole, and (people, ``filter_leavers = "deactivate"``) those the
    filters now leave out, in any run; None: nobody."""
    found = [_absent(run, part)] if deactivates(conn, run, part) else []
    if part == "user" and deactivates_leavers(run):
        found.append(leavers(run))
    if not found:
        return None
    return sql.SQL("{table} t WHERE ({found})").format(table=store_table(part), found=sql.SQL(") OR (").join(found))


def needs_plan(run: RunRow) -> bool:
    cfg = config_of(run.config)
    return bool(
        run.dry_run
        or cfg.full_feed
        or cfg.max_change is not None
        or cfg.max_deactivate is not None
        or cfg.max_create is not None
        or cfg.max_reject_share is not None
        or cfg.filters is not None
    )


def plan(conn: psycopg.Connection[Any], run: RunRow, sample: int = 5) -> dict[str, Any]:
    run_id = run.id
    parts = config_of(run.config).parts
    params = {"conn": run.connection_id, "n": sample}
    result: dict[str, Any] = {}
    for part in ("org", "pos", "user"):
        if part not in parts:
            continue
        staged, table = stage_table("huser" if part == "user" else part, run_id), store_table(part)
        counts = store.fetch_one(
            conn,
            sql.SQL(
                """SELECT count(*) FILTER (WHERE u.id IS NULL) AS creates,
                          count(*) FILTER (WHERE u.id IS NOT NULL AND (u.source_hash IS DISTINCT FROM s.row_hash
                                                                       OR NOT u.active)) AS updates
                   FROM {} s LEFT JOIN {} u ON u.external_id = s.key"""
            ).format(staged, table),
        )
        pop = store.fetch_one(
            conn,
            sql.SQL("SELECT count(*) AS n FROM {} WHERE source_connection_id = %(conn)s AND active").format(table),
            params,
        )
        assert counts is not None and pop is not None
        entry: dict[str, Any] = {
            "creates": int(counts["creates"]),
            "updates": int(counts["updates"]),
            "population": int(pop["n"]),
            "deactivations": 0,
            "deactivations_sample": [],
        }
        gone = gone_filter(conn, run, part)
        if gone is not None:
            row = store.fetch_one(conn, sql.SQL("SELECT count(*) AS n FROM {}").format(gone), params)
            entry["deactivations"] = int(row["n"]) if row else 0
            entry["deactivations_sample"] = _sample(conn, gone, params)
        if deactivates(conn, run, part):
            # Rows of this part refused before their key could be read: whoever they are about may be
            # among the deactivations.
            files = [int(f["id"]) for f in _part_files(conn, run, part)]
            entry.update(unreadable_rows(conn, run_id, stage_table("hrej", run_id), sample, files))
        if part == "user":
            entry.update(_filtered(conn, run, params))
        result[{"org": "units", "pos": "positions", "user": "people"}[part]] = entry
    people = result.get("people", {"creates": 0, "updates": 0, "deactivations": 0, "population": 0})
    # The top-level figures are the people's, as for a users connection (feedsync run shows them).
    result.update({k: people[k] for k in ("creates", "updates", "deactivations", "population")})
    result["deactivations_sample"] = people.get("deactivations_sample", [])
    result["filtered"] = people.get("filtered", 0)
    if "filter_leavers" in people:  # a connection with [connections.filters]: the CLI shows them
        result.update({k: people[k] for k in ("filter_leavers", "filter_leavers_sample")})
    result["unreadable_rejected"] = sum(
        int(result[w].get("unreadable_rejected", 0)) for w in ("units", "positions", "people") if w in result
    )
    result["full_feed"] = config_of(run.config).full_feed
    return result


def _sample(conn: psycopg.Connection[Any], gone: sql.Composable, params: dict[str, Any]) -> list[str]:
    rows = store.fetch_all(conn, sql.SQL("SELECT t.external_id FROM {} ORDER BY 1 LIMIT %(n)s").format(gone), params)
    return [r["external_id"] for r in rows]


def _filtered(conn: psycopg.Connection[Any], run: RunRow, params: dict[str, Any]) -> dict[str, Any]:
    """The people the filters left out; with filters, the leavers among them: people of this
    connection, active, whom the filters now leave out (reported; deactivated only with
    filter_leavers = "deactivate")."""
    n = store.fetch_one(conn, sql.SQL("SELECT count(*) AS n FROM {}").format(stage_table("filtered", run.id)))
    found: dict[str, Any] = {"filtered": int(n["n"]) if n else 0}
    if config_of(run.config).filters is not None:
        gone = sql.SQL("lms.users t WHERE {}").format(leavers(run))
        left = store.fetch_one(conn, sql.SQL("SELECT count(*) AS n FROM {}").format(gone), params)
        found["filter_leavers"] = int(left["n"]) if left else 0
        found["filter_leavers_sample"] = _sample(conn, gone, params)
    return found


def exceeded_thresholds(run: RunRow, p: dict[str, Any]) -> list[str]:
    cfg = config_of(run.config)
    max_deactivate, max_change = cfg.thresholds()
    reasons = []
    for what in ("units", "positions", "people"):
        e = p.get(what)
        if e is None:
            continue
        if max_deactivate is not None and max_deactivate.exceeded(e["deactivations"], e["population"]):
            reasons.append(
                f"it would deactivate {e['deactivations']} of {e['population']} {what} "
                f"(max_deactivate = {limit_text(cfg)})"
            )
        reasons += unreadable_reason(e, what)
        changes = e["updates"] + e["deactivations"]
        if what == "people" and max_change is not None and max_change.exceeded(changes, e["population"]):
            reasons.append(f"it would change {changes} of {e['population']} people (max_change = {cfg.max_change})")
    return reasons + growth_reasons(cfg, p)


# -- apply ----------------------------------------------------------------------------------------------
