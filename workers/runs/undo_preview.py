"""What an undo would do, in the admin's words, one function for the CLI and the console: the
conflicts (rows changed since by something no undo undid) named by the person, unit, course or
record, never a table id; the counts of its plan (each person once); the refusal that says how to
leave the conflicting rows as they are.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from workers import store
from workers.runs import journal

#: Conflicts named in a refusal or a plan (the count says how many more there are).
SAMPLE = 20
PARTS = {"users": "people", "org_units": "units", "positions": "positions"}


#: How a row of each journaled table is named to the admin: the person by e-mail, a unit, position
#: or course by its external id, a record by the person and the course (never by table ids). In SQL
#: over the summary row ``s``: the row as it is now, else its image from before the run.
_NAMES: dict[str, sql.SQL] = {
    "users": sql.SQL("'person ' || {user1}"),
    "org_units": sql.SQL(
        "'unit ' || coalesce((SELECT x.external_id FROM lms.org_units x WHERE x.id = {k1}), s.before ->> 'external_id')"
    ),
    "positions": sql.SQL(
        "'position ' || coalesce((SELECT x.external_id FROM lms.positions x WHERE x.id = {k1}), "
        "s.before ->> 'external_id')"
    ),
    "courses": sql.SQL("'course ' || {course1}"),
    "learner_progress": sql.SQL("'learning record of ' || {user1} || ' on course ' || {course2}"),
    "user_skills": sql.SQL("'skill ' || {skill2} || ' of ' || {user1}"),
    "course_skills": sql.SQL("'skill ' || {skill2} || ' of course ' || {course1}"),
    "group_members": sql.SQL(
        "{user2} || ' in group ' || coalesce((SELECT x.name FROM lms.groups x WHERE x.id = {k1}), '?')"
    ),
    "assignments": sql.SQL("{user1} || ' assigned to ' || (s.key)[2]"),
    "xapi_statements": sql.SQL("'xAPI statement ' || (s.key)[1]"),
}
_PARTS_SQL: dict[str, sql.SQL] = {
    "k1": sql.SQL("(s.key)[1]::bigint"),
    "user1": sql.SQL(
        "coalesce((SELECT x.email FROM lms.users x WHERE x.id = (s.key)[1]::bigint), s.before ->> 'email')"
    ),
    "user2": sql.SQL("coalesce((SELECT x.email FROM lms.users x WHERE x.id = (s.key)[2]::bigint), '?')"),
    "course1": sql.SQL(
        "coalesce((SELECT x.external_id FROM lms.courses x WHERE x.id = (s.key)[1]::bigint), "
        "s.before ->> 'external_id')"
    ),
    "course2": sql.SQL("coalesce((SELECT x.external_id FROM lms.courses x WHERE x.id = (s.key)[2]::bigint), '?')"),
    "skill2": sql.SQL("coalesce((SELECT x.name FROM lms.skills x WHERE x.id = (s.key)[2]::bigint), '?')"),
}


def _name_sql() -> sql.Composable:
    """SQL: the summary row ``s`` named as the admin knows it (see _NAMES)."""
    cases = [
        sql.SQL("WHEN {} THEN {}").format(
            sql.Literal(tbl),
            expr.format(**_PARTS_SQL),
        )
        for tbl, expr in _NAMES.items()
    ]
    fallback = sql.SQL("'lms.' || s.tbl || ' ' || array_to_string(s.key, ',')")
    return sql.SQL("coalesce(CASE s.tbl {} END, {})").format(sql.SQL(" ").join(cases), fallback)


def conflicts(conn: psycopg.Connection[Any], table: sql.Composable) -> tuple[int, list[str]]:
    """How many rows changed since the run (and not undone since), and the first ones named as the
    admin knows them: 'person ann@x.com (changed by run 9)'."""
    where = sql.SQL("cardinality(s.later_runs) > 0 OR s.outside")
    n = store.fetch_one(conn, sql.SQL("SELECT count(*) AS n FROM {} s WHERE {}").format(table, where))
    rows = store.fetch_all(
        conn,
        sql.SQL("SELECT {name} AS name, later_runs FROM {t} s WHERE {where} ORDER BY {name} LIMIT %s").format(
            name=_name_sql(), t=table, where=where
        ),
        (SAMPLE,),
    )
    return (int(n["n"]) if n else 0), [describe(r) for r in rows]


def describe(r: dict[str, Any]) -> str:
    who = (
        "changed by run " + ", ".join(str(x) for x in r["later_runs"])
        if r["later_runs"]
        else "changed outside feedsync's runs"
    )
    return f"{r['name']} ({who})"


#: How to leave conflicting rows as they are, where the admin undoes.
CLI_SKIP = "undo with --skip-conflicts to leave these rows as they are now"
CONSOLE_SKIP = "tick 'Leave rows changed since as they are' and undo again to leave these rows as they are now"
ANY_SKIP = (
    "undo again leaving these rows as they are now (feedsync undo --skip-conflicts, or the console's "
    "'Leave rows changed since as they are')"
)


def refusal(run_id: int, n: int, sample: list[str], how: str = ANY_SKIP) -> str:
    more = f", and {n - len(sample)} more" if n > len(sample) else ""
    return (
        f"run {run_id} cannot be undone: {n} row(s) it changed were changed since: {'; '.join(sample)}{more}. "
        f"Undo those runs first, or {how}"
    )


def counts_of(conn: psycopg.Connection[Any], table: sql.Composable, connection_id: int) -> dict[str, Any]:
    """What restoring the rows of ``table`` (those not skipped) would do, as a load's plan says it."""
    plan: dict[str, Any] = {"by_table": {}}
    for row in store.fetch_all(
        conn,
        sql.SQL(
            """SELECT tbl, count(*) FILTER (WHERE first_op = 'I') AS created,
                      count(*) FILTER (WHERE first_op <> 'I') AS restored
               FROM {} WHERE NOT skip GROUP BY tbl ORDER BY tbl"""
        ).format(table),
    ):
        plan["by_table"][str(row["tbl"])] = {"created": int(row["created"]), "restored": int(row["restored"])}
    for tbl, part in PARTS.items():
        match = journal.key_match(conn, tbl, "t", sql.SQL("s.key"))
        got = store.fetch_one(
            conn,
            sql.SQL(
                """SELECT count(*) FILTER (WHERE t.active AND (s.first_op = 'I'
                                           OR NOT coalesce((s.before ->> 'active')::boolean, true))) AS deactivations,
                          count(*) FILTER (WHERE NOT t.active AND s.first_op <> 'I'
                                           AND coalesce((s.before ->> 'active')::boolean, false)) AS reactivations,
                          count(*) FILTER (WHERE s.first_op <> 'I') AS updates,
                          -- Restored and neither deactivated nor reactivated: each row in one count.
                          count(*) FILTER (WHERE s.first_op <> 'I' AND t.active
                                           = coalesce((s.before ->> 'active')::boolean, t.active)) AS restores
                   FROM {s} s JOIN {t} t ON {match} WHERE s.tbl = %(tbl)s AND NOT s.skip"""
            ).format(s=table, t=sql.Identifier("lms", tbl), match=match),
            {"tbl": tbl},
        )
        pop = store.fetch_one(
            conn,
            sql.SQL("SELECT count(*) AS n FROM {} WHERE source_connection_id = %s AND active").format(
                sql.Identifier("lms", tbl)
            ),
            (connection_id,),
        )
        assert got is not None and pop is not None
        plan[part] = {
            "creates": 0,  # an undo creates nobody: people it brings back are reactivated
            "updates": int(got["updates"]),  # every row restored (the thresholds' changes)
            "restores": int(got["restores"]),  # of them, neither deactivated nor reactivated
            "deactivations": int(got["deactivations"]),
            "reactivations": int(got["reactivations"]),
            "population": int(pop["n"]),
        }
    # The top-level figures are the people's, as in a users or hierarchy load's plan.
    plan.update(plan["people"])
    return plan


# -- the load's interface (workers/stages/load.py) -------------------------------------------------------
