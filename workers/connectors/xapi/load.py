"""Load one file's staged statements into ``lms.xapi_statements``, then its completions into
``lms.learner_progress`` (and so ``lms.user_skills``) through the content kinds' merge.

- A statement whose id is stored already (ids compare as UUIDs, in any case) is ``unchanged`` when
  it matches the stored one by the spec's comparison rules (authority, stored, timestamp, version
  and attachments aside), else a ``conflict`` row error (the spec's 409); the store is never
  modified by it. The same id twice in one file: the first line is taken, the next ones judged
  against it.
- A voiding statement voids its target, stored before it or arriving later; a voider is never
  voided, and a statement voiding a voider is a row error.
- Completions (``completion_verbs``) of a stored, not voided statement on an activity that is a
  course (``activity_map``, or the course's launch URL) by a known learner are merged forward only.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from schemas.kinds import config_as
from schemas.kinds.xapi import XapiConnection
from workers import store
from workers.connectors import content, user_skills
from workers.connectors.xapi.transform import VOIDED, attributes
from workers.rows import RunRow
from workers.staging import stage_table

#: What the spec's comparison of two statements with the same id leaves aside; and the id itself,
#: which the join matched as a UUID (its text may differ in case, and a UUID's case means nothing).
_IGNORED = sql.SQL("'{authority,stored,timestamp,version,attachments,id}'::text[]")


def _same(a: sql.Composable, b: sql.Composable) -> sql.Composed:
    """Whether the JSON texts ``a`` and ``b`` (fixed SQL expressions) are the same statement."""
    return sql.SQL("(({a})::jsonb - {ignored}) = (({b})::jsonb - {ignored})").format(a=a, b=b, ignored=_IGNORED)


def apply_file(conn: psycopg.Connection[Any], run: RunRow, file_id: int) -> dict[str, int]:
    run_id = run.id
    cfg = config_as(XapiConnection, run.config)
    names = {c: a for a, c in attributes(cfg).items()}
    id_attr = names.get(cfg.statement_column or (cfg.xapi["id"].column or "" if "id" in cfg.xapi else ""))
    actor_attr = names.get(
        cfg.statement_column or next((f.column or "" for p, f in cfg.xapi.items() if p.startswith("actor.")), "")
    )
    params = {
        "run": run_id,
        "file": file_id,
        "conn": run.connection_id,
        "voided": VOIDED,
        "id_attr": id_attr,
        "conflict": "a statement with this id is stored already with other content (the spec's 409 Conflict); give "
        "this statement an id of its own, or correct it to match the stored one, and rerun",
        "voider": "this statement voids a voiding statement, which xAPI forbids (a voiding statement cannot be "
        "voided); re-issue the voided statement under a new id instead",
    }
    stage = stage_table("xapi", run_id)
    derived = not cfg.statement_column and "id" not in cfg.xapi
    # The staging table is new and never analysed: without its statistics the planner takes it for
    # a few hundred rows and joins it to itself by nested loop, which is quadratic in the file.
    conn.execute(sql.SQL("ANALYZE {}").format(stage))
    row = store.fetch_one(
        conn,
        sql.SQL(
            """
        WITH src AS {materialized} (
            SELECT s.*, {nth} AS nth FROM {stage} s WHERE s.file_id = %(file)s AND s.kept),
        -- The lines that are not new statements (few, in a first import): the insert reads the
        -- staged rows themselves, less these, so the statements are never copied into a CTE.
        judged AS MATERIALIZED (
            SELECT j.line_no, j.verdict FROM (
                SELECT s.line_no,
                       CASE WHEN x.id IS NOT NULL THEN
                                CASE WHEN {same_stored} THEN 'unchanged' ELSE 'conflict' END
                            WHEN s.nth > 1 THEN
                                CASE WHEN {same_first} THEN 'unchanged' ELSE 'conflict' END
                            WHEN s.voids IS NOT NULL AND (
                                     EXISTS (SELECT 1 FROM lms.xapi_statements t
                                             WHERE t.id = s.voids AND t.verb_id = %(voided)s)
                                  OR EXISTS (SELECT 1 FROM src t WHERE t.id = s.voids AND t.verb_id = %(voided)s))
                                 THEN 'voids_voider'
                       END AS verdict
                FROM src s
                LEFT JOIN src f ON {first_of_id}
                LEFT JOIN lms.xapi_statements x ON x.id = s.id) j
            WHERE j.verdict IS NOT NULL),
        errs AS (
            INSERT INTO sync.row_errors (run_id, file_id, file_name, line, column_no, column_name, code, message,
                                         rejected)
            SELECT %(run)s, %(file)s, fl.original_path, j.line_no, (rf.columns -> %(id_attr)s ->> 'no')::int,
                   rf.columns -> %(id_attr)s ->> 'column', j.verdict,
                   CASE j.verdict WHEN 'conflict' THEN %(conflict)s ELSE %(voider)s END, true
            FROM judged j
            JOIN sync.feed_files fl ON fl.id = %(file)s
            JOIN sync.run_files rf ON rf.run_id = %(run)s AND rf.file_id = %(file)s
            WHERE j.verdict IN ('conflict', 'voids_voider')
            RETURNING 1),
        ins AS (
            INSERT INTO lms.xapi_statements (id, user_id, actor_email, verb_id, object_id, "timestamp", statement,
                                             source_connection_id, source_file_id, source_line, voids, voided)
            SELECT s.id, u.id, s.actor_email, s.verb_id, s.object_id, coalesce(s.ts, clock_timestamp()),
                   s.statement::json, %(conn)s, %(file)s, s.line_no, s.voids,
                   s.verb_id <> %(voided)s AND EXISTS (SELECT 1 FROM lms.xapi_statements v WHERE v.voids = s.id)
            FROM {stage} s LEFT JOIN lms.users u ON u.email_key = lower(s.actor_email)
            WHERE s.file_id = %(file)s AND s.kept AND NOT EXISTS (SELECT 1 FROM judged j WHERE j.line_no = s.line_no)
            ON CONFLICT (id) DO NOTHING
            RETURNING voided)
        SELECT (SELECT count(*) FROM ins) AS stored,
               (SELECT count(*) FROM ins WHERE voided) AS voided_late,
               (SELECT count(*) FROM judged WHERE verdict = 'unchanged') AS unchanged,
               (SELECT count(*) FROM errs) AS rejected,
               (SELECT count(*) FROM {stage} WHERE file_id = %(file)s AND NOT kept) AS filtered"""
        ).format(
            stage=stage,
            # Ids derived from the file and line never repeat within a file: no line comes second
            # to another, so the staged rows are read as they are, each time they are needed.
            materialized=sql.SQL("NOT MATERIALIZED") if derived else sql.SQL("MATERIALIZED"),
            nth=sql.SQL("1") if derived else sql.SQL("row_number() OVER (PARTITION BY s.id ORDER BY s.line_no)"),
            first_of_id=sql.SQL("false") if derived else sql.SQL("s.nth > 1 AND f.id = s.id AND f.nth = 1"),
            same_stored=_same(sql.SQL("x.statement::text"), sql.SQL("s.statement")),
            same_first=_same(sql.SQL("f.statement"), sql.SQL("s.statement")),
        ),
        params,
    )
    assert row is not None
    # Targets of this file's voiders, stored before or earlier in this file; never a voider.
    voided_now = store.fetch_all(
        conn,
        sql.SQL(
            """UPDATE lms.xapi_statements t SET voided = true
            FROM {stage} s JOIN lms.xapi_statements v ON v.id = s.id AND v.verb_id = %(voided)s
            WHERE s.file_id = %(file)s AND s.kept AND s.voids IS NOT NULL
              AND t.id = s.voids AND t.verb_id <> %(voided)s AND NOT t.voided
            RETURNING t.id, t.user_id, t.verb_id, t.object_id"""
        ).format(stage=stage),
        params,
    )
    progress = _completions(conn, run, file_id, cfg, actor_attr)
    if cfg.voiding_reverts:
        _revert(conn, cfg, voided_now)
    return {
        "created": int(row["stored"]),
        "unchanged": int(row["unchanged"]),
        "statements_stored": int(row["stored"]),
        "statements_unchanged": int(row["unchanged"]),
        "statements_voided": int(row["voided_late"]) + len(voided_now),
        "statements_filtered": int(row["filtered"]),
        **progress,
    }


#: The course a statement's activity is: by ``activity_map``, else by its launch URL.
_COURSE = sql.SQL("""
    LEFT JOIN lms.courses cm ON %(map)s::jsonb ? x.object_id
         AND cm.provider = split_part(%(map)s::jsonb ->> x.object_id, ':', 1)
         AND cm.external_id = substr(%(map)s::jsonb ->> x.object_id, strpos(%(map)s::jsonb ->> x.object_id, ':') + 1)
    LEFT JOIN (SELECT launch_url, min(id) AS id FROM lms.courses GROUP BY launch_url) cl
         ON cm.id IS NULL AND cl.launch_url = x.object_id
""")


def _completions(
    conn: psycopg.Connection[Any], run: RunRow, file_id: int, cfg: XapiConnection, actor_attr: str | None
) -> dict[str, int]:
    """Completions of this file's stored statements, staged as content progress and merged by it."""
    run_id = run.id
    params = {
        "run": run_id,
        "file": file_id,
        "verbs": cfg.completion_verbs,
        "map": Jsonb(cfg.activity_map),
        "actor": actor_attr,
        "unknown": "progress not written: no learner has this actor's e-mail (the statement is stored); add the "
        "person to a user feed and import this file again",
        "no_mbox": "progress not written: the actor has no mbox (an account, openid or mbox_sha1sum identifies "
        "it), and learners are matched by e-mail (the statement is stored); send the statement with the "
        "learner's mbox to record progress",
    }
    # This file's stored completions, gathered and analysed first: the store's statistics do not
    # know the statements the load has just written, and taking a million for a hundred the planner
    # would match them to the courses by nested loop. (A temporary table: analysing it locks nothing
    # another load needs.)
    conn.execute("DROP TABLE IF EXISTS pg_temp.xapi_completions")
    conn.execute(
        sql.SQL(
            """CREATE TEMP TABLE xapi_completions ON COMMIT DROP AS
               SELECT x.id, x.user_id, x.actor_email, x.object_id, x."timestamp", x.source_line,
                      (x.statement::jsonb #>> '{{result,score,scaled}}')::numeric AS scaled
               FROM {stage} s
               JOIN lms.xapi_statements x ON x.id = s.id AND x.source_file_id = %(file)s AND x.source_line = s.line_no
               WHERE s.file_id = %(file)s AND s.kept AND s.verb_id = ANY(%(verbs)s) AND NOT x.voided"""
        ).format(stage=stage_table("xapi", run_id)),
        params,
    )
    conn.execute("ANALYZE pg_temp.xapi_completions")
    matched = sql.SQL(
        "SELECT x.*, coalesce(cm.id, cl.id) AS course_id FROM pg_temp.xapi_completions x {course}"
    ).format(course=_COURSE)
    conn.execute(
        sql.SQL(
            """INSERT INTO {progress} (file_id, line_no, learner_key, learner_column, email,
                course_ref, status, first_accessed_on, last_accessed_on, completed_on, assessed_on, score)
            SELECT %(file)s, m.source_line, lower(m.actor_email), %(actor)s, m.actor_email, m.course_id::text,
                   'completed', d, d, d, CASE WHEN sc IS NOT NULL THEN d END, sc * 100
            FROM ({matched}) m
            CROSS JOIN LATERAL (SELECT m."timestamp"::date AS d, m.scaled AS sc) v
            WHERE m.course_id IS NOT NULL AND m.user_id IS NOT NULL"""
        ).format(progress=stage_table("progress", run_id), matched=matched),
        params,
    )
    warned = conn.execute(
        sql.SQL(
            """INSERT INTO sync.row_errors (run_id, file_id, file_name, line, column_no, column_name, code, message,
                                         rejected)
            SELECT %(run)s, %(file)s, fl.original_path, m.source_line, (rf.columns -> %(actor)s ->> 'no')::int,
                   rf.columns -> %(actor)s ->> 'column', 'unknown_learner',
                   CASE WHEN m.actor_email IS NULL THEN %(no_mbox)s ELSE %(unknown)s END, false
            FROM ({matched}) m
            JOIN sync.feed_files fl ON fl.id = %(file)s
            JOIN sync.run_files rf ON rf.run_id = %(run)s AND rf.file_id = %(file)s
            WHERE m.course_id IS NOT NULL AND m.user_id IS NULL"""
        ).format(matched=matched),
        params,
    ).rowcount
    counts = content.apply_progress(
        conn, run, file_id, provider="xapi", what="xAPI", by_course_id=True, create_learners=False
    )
    return {"progress_written": counts["progress_written"], "progress_unknown_learner": warned}


def _revert(conn: psycopg.Connection[Any], cfg: XapiConnection, voided: list[dict[str, Any]]) -> None:
    """voiding_reverts: a completion whose statement was voided, and that no other stored completion
    of the same learner and course still supports, goes back to in progress."""
    targets = [r for r in voided if r["verb_id"] in cfg.completion_verbs and r["user_id"] is not None]
    if not targets:
        return
    params = {"ids": [r["id"] for r in targets], "verbs": cfg.completion_verbs, "map": Jsonb(cfg.activity_map)}
    lost = store.fetch_all(
        conn,
        sql.SQL(
            """WITH gone AS (
                SELECT DISTINCT x.user_id, coalesce(cm.id, cl.id) AS course_id
                FROM lms.xapi_statements x {course}
                WHERE x.id = ANY(%(ids)s)),
            still AS (
                SELECT DISTINCT x.user_id, coalesce(cm.id, cl.id) AS course_id
                FROM lms.xapi_statements x {course}
                JOIN gone g ON g.user_id = x.user_id
                WHERE x.verb_id = ANY(%(verbs)s) AND NOT x.voided),
            back AS (
                UPDATE lms.learner_progress p SET status = 'in_progress', completed_on = NULL,
                       updated_at = clock_timestamp()
                FROM gone g
                WHERE p.user_id = g.user_id AND p.course_id = g.course_id AND p.status = 'completed'
                  AND NOT EXISTS (SELECT 1 FROM still s WHERE s.user_id = g.user_id AND s.course_id = g.course_id)
                RETURNING p.user_id, p.course_id)
            DELETE FROM lms.user_skills us USING back b
            WHERE us.user_id = b.user_id AND us.course_id = b.course_id
            RETURNING us.skill_id"""
        ).format(course=_COURSE),
        params,
    )
    if lost:
        # A skill another completed course also teaches is achieved again from that completion.
        courses = store.fetch_all(
            conn,
            "SELECT DISTINCT course_id FROM lms.course_skills WHERE skill_id = ANY(%s)",
            ([r["skill_id"] for r in lost],),
        )
        user_skills.grant_for_courses(conn, [int(r["course_id"]) for r in courses])
