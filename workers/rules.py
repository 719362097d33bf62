"""Group rules (schemas/rules.py) evaluated in SQL: for the given people only (those a run
changed), or for everyone when the rules themselves changed. Memberships are added and removed,
each change recorded in sync.membership_changes; a new member is assigned the group's programs
(kept when they leave: their learning record stays).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from schemas.rules import Rule
from schemas.settings import get_settings
from workers import fkeys, store


def _criteria(rule: dict[str, Any]) -> tuple[sql.Composed, dict[str, Any]]:
    """SQL over ``u`` (lms.users) that holds for a member, and its parameters."""
    where: list[sql.Composable] = [sql.SQL("u.active")]
    params: dict[str, Any] = {}
    if rule.get("unit"):
        params["unit"] = rule["unit"]
        if rule.get("descendants"):
            where.append(
                sql.SQL(
                    """u.org_unit_id IN (
                     WITH RECURSIVE sub(id) AS (
                         SELECT id FROM lms.org_units WHERE external_id = %(unit)s
                         UNION SELECT o.id FROM lms.org_units o JOIN sub ON o.parent_id = sub.id)
                     SELECT id FROM sub)"""
                )
            )
        else:
            where.append(sql.SQL("u.org_unit_id = (SELECT id FROM lms.org_units WHERE external_id = %(unit)s)"))
    if rule.get("position"):
        params["position"] = rule["position"]
        where.append(sql.SQL("u.position_id = (SELECT id FROM lms.positions WHERE external_id = %(position)s)"))
    for i, (key, value) in enumerate(sorted((rule.get("attributes") or {}).items())):
        params[f"ak{i}"], params[f"av{i}"] = key, value
        where.append(sql.SQL("u.attributes ->> {} = {}").format(sql.Placeholder(f"ak{i}"), sql.Placeholder(f"av{i}")))
    if rule.get("manager"):
        params["manager"] = rule["manager"]
        boss = sql.SQL(
            "(SELECT id FROM lms.users WHERE external_id = %(manager)s OR email_key = lower(%(manager)s) LIMIT 1)"
        )
        if rule.get("direct_reports"):
            where.append(sql.SQL("u.manager_id = {}").format(boss))
        else:
            where.append(
                sql.SQL(
                    """u.id IN (
                     WITH RECURSIVE below(id) AS (
                         SELECT id FROM lms.users WHERE manager_id = {}
                         UNION SELECT x.id FROM lms.users x JOIN below ON x.manager_id = below.id)
                     SELECT id FROM below)"""
                ).format(boss)
            )
    return sql.SQL(" AND ").join(where), params


#: The foreign keys a new membership is checked against, row by row: set aside for a first
#: evaluation of many people (fkeys.py). The one to the run (membership_changes.run_id) stays: it
#: is one row, and sync.runs is every run's, not to be taken for a load.
MEMBERSHIP_KEYS = sql.SQL(
    "conrelid = ANY('{lms.group_members,sync.membership_changes,lms.assignments}'::regclass[])"
    " AND confrelid = ANY('{lms.users,lms.groups}'::regclass[])"
)


def evaluate(conn: psycopg.Connection[Any], *, run_id: int | None, people: sql.Composable | None) -> dict[str, int]:
    """Bring every active group's members in line with its rule for ``people`` (a table of user_id;
    None: everyone). Returns the memberships added and removed. For at least
    FEEDSYNC_LOAD_BULK_ROWS people, into membership tables that hold no more rows (a first import),
    the memberships' foreign keys are checked once after all groups, not per row, when the tables
    can be had within FEEDSYNC_LOAD_BULK_LOCK_S."""
    bulk = _bulk(conn, people)
    counts = _evaluate(conn, run_id=run_id, people=people)
    if bulk:
        fkeys.restore(conn, "bulk_membership_fkeys")
    return counts


def _bulk(conn: psycopg.Connection[Any], people: sql.Composable | None) -> bool:
    settings = get_settings()
    if not settings.load_bulk_rows:
        return False
    many = store.fetch_one(
        conn,
        sql.SQL("SELECT count(*) AS n FROM {}").format(people)
        if people is not None
        else sql.SQL("SELECT count(*) AS n FROM lms.users"),
    )
    wanted = int(many["n"]) if many else 0
    if wanted < settings.load_bulk_rows or fkeys.rows(conn, MEMBERSHIP_KEYS) > wanted:
        return False

    def take() -> bool:
        fkeys.drop(conn, "bulk_membership_fkeys", MEMBERSHIP_KEYS)
        return True

    return fkeys.taken(conn, settings.load_bulk_lock_s, take)


def _evaluate(conn: psycopg.Connection[Any], *, run_id: int | None, people: sql.Composable | None) -> dict[str, int]:
    scope = sql.SQL("u.id IN (SELECT user_id FROM {})").format(people) if people is not None else sql.SQL("true")
    added = removed = 0
    for g in store.fetch_all(conn, "SELECT id, rule, programs FROM lms.groups WHERE active ORDER BY id"):
        where, params = _criteria(g["rule"])
        params.update({"g": g["id"], "run": run_id, "programs": g["programs"]})
        row = store.fetch_one(
            conn,
            sql.SQL(
                """WITH should AS (SELECT u.id FROM lms.users u WHERE {scope} AND {where}),
                scoped AS (SELECT gm.user_id FROM lms.group_members gm JOIN lms.users u ON u.id = gm.user_id
                           WHERE gm.group_id = %(g)s AND {scope}),
                ins AS (INSERT INTO lms.group_members (group_id, user_id)
                        SELECT %(g)s, s.id FROM should s WHERE s.id NOT IN (SELECT user_id FROM scoped)
                        RETURNING user_id),
                del AS (DELETE FROM lms.group_members gm WHERE gm.group_id = %(g)s
                          AND gm.user_id IN (SELECT user_id FROM scoped) AND gm.user_id NOT IN (SELECT id FROM should)
                        RETURNING user_id),
                log AS (INSERT INTO sync.membership_changes (run_id, group_id, user_id, change)
                        SELECT %(run)s::bigint, %(g)s, user_id, 'added' FROM ins
                        UNION ALL SELECT %(run)s::bigint, %(g)s, user_id, 'removed' FROM del),
                progs AS (INSERT INTO lms.assignments (user_id, program, group_id)
                          SELECT i.user_id, p, %(g)s FROM ins i CROSS JOIN unnest(%(programs)s::text[]) p
                          ON CONFLICT DO NOTHING)
                SELECT (SELECT count(*) FROM ins) AS added, (SELECT count(*) FROM del) AS removed"""
            ).format(scope=scope, where=where),
            params,
        )
        assert row is not None
        added, removed = added + int(row["added"]), removed + int(row["removed"])
    return {"memberships_added": added, "memberships_removed": removed}


def apply_rules(rules: list[Rule], *, prune: bool = False) -> list[tuple[str, str]]:
    """Store the rules as groups and evaluate them for everyone. Groups this file does not declare
    are left as they are (another connections file may declare them), unless ``prune``: then they
    are deactivated and lose their members (kept in history)."""
    results = []
    with store.connect() as conn:
        conn.execute("SELECT pg_advisory_xact_lock(7303)")  # one rules apply at a time
        names = [r.group for r in rules]
        for r in rules:
            rule = r.model_dump(mode="json", exclude={"group", "programs"})
            row = store.fetch_one(
                conn,
                """INSERT INTO lms.groups AS g (name, rule, programs) VALUES (%s, %s, %s)
                   ON CONFLICT (name) DO UPDATE SET rule = excluded.rule, programs = excluded.programs, active = true,
                          updated_at = now()
                   WHERE (g.rule, g.programs, g.active) IS DISTINCT FROM (excluded.rule, excluded.programs, true)
                   RETURNING (xmax = 0) AS created""",
                (r.group, Jsonb(rule), r.programs),
            )
            results.append((r.group, "unchanged" if row is None else "created" if row["created"] else "updated"))
        others = [
            g["name"]
            for g in store.fetch_all(
                conn, "SELECT name FROM lms.groups WHERE active AND NOT name = ANY(%s) ORDER BY name", (names,)
            )
        ]
        if prune:
            _prune(conn, others)
        results += [(g, "removed" if prune else "kept (not in this file; --prune removes it)") for g in others]
        counts = evaluate(conn, run_id=None, people=None)
    results.append(("memberships", f"+{counts['memberships_added']} -{counts['memberships_removed']}"))
    return results


def _prune(conn: psycopg.Connection[Any], names: list[str]) -> None:
    """Deactivate the named groups; their members leave them (people no rule puts there)."""
    conn.execute("UPDATE lms.groups SET active = false, updated_at = now() WHERE name = ANY(%s)", (names,))
    conn.execute(
        """WITH gone AS (DELETE FROM lms.group_members gm USING lms.groups g
                         WHERE g.id = gm.group_id AND NOT g.active RETURNING gm.group_id, gm.user_id)
           INSERT INTO sync.membership_changes (group_id, user_id, change)
           SELECT group_id, user_id, 'removed' FROM gone"""
    )


def groups() -> list[dict[str, Any]]:
    with store.connect() as conn:
        return store.fetch_all(
            conn,
            """SELECT g.name, g.active, g.rule, g.programs,
                      (SELECT count(*) FROM lms.group_members gm WHERE gm.group_id = g.id) AS members
               FROM lms.groups g ORDER BY g.name""",
        )
