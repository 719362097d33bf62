"""Courses and learner progress from content providers: what the kinds ``hmm`` and ``getabstract``
share. Each provider's module maps its files into two typed staging tables in SQL (``checked_insert``
reports bad values as row errors on their line and column); the load then merges them:

- ``apply_courses``: one upsert by (provider, external id) that rewrites only courses whose row
  hash changed, retires removed ones (never deletes: learners' records stay), and syncs skills;
- ``apply_progress``: one statement per feed file, oldest file first, that resolves learners and
  courses (unknown ones are row errors), and merges progress so it only moves forward: a completed
  record stays completed, dates widen, counters never drop. Applying the same feed again changes
  nothing, so a ``--since`` window may safely re-read feeds imported before.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any, ClassVar

import psycopg
from psycopg import sql

from schemas.kinds import KindConfig, config_as
from schemas.kinds.content import ContentConnection
from workers import store
from workers.connectors import tables, user_skills
from workers.connectors.contract import PLANNED_ROWS, ROWS_READ, Counted, ImportKind
from workers.rows import RunRow
from workers.staging import stage_table

EMAIL_LIKE = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


def config_of(config: KindConfig) -> ContentConnection:
    return config_as(ContentConnection, config)


def create_staging(conn: psycopg.Connection[Any], run_id: int, config: KindConfig) -> None:
    conn.execute(
        sql.SQL(
            """CREATE UNLOGGED TABLE IF NOT EXISTS {} (
                 file_id bigint NOT NULL, line_no int NOT NULL, external_id text NOT NULL, title text NOT NULL,
                 description text, launch_url text, image_url text, authors text, duration_minutes int,
                 language text, published_on date, copyright_holder text, asset_type text, asset_format text,
                 collection text, discipline text, category text, parent_external_id text, source_modified_on date,
                 tags text[] NOT NULL DEFAULT '{{}}', skills text[] NOT NULL DEFAULT '{{}}',
                 retired boolean NOT NULL DEFAULT false)"""
        ).format(stage_table("courses", run_id))
    )
    conn.execute(
        sql.SQL(
            """CREATE UNLOGGED TABLE IF NOT EXISTS {} (
                 file_id bigint NOT NULL, line_no int NOT NULL, learner_key text NOT NULL, learner_column text,
                 email text, first_name text, last_name text, course_ref text NOT NULL, course_title text,
                 status text NOT NULL, first_accessed_on date, last_accessed_on date, completed_on date,
                 assessed_on date, score numeric, time_spent_minutes int, visits int,
                 progress_percent numeric)"""
        ).format(stage_table("progress", run_id))
    )


# -- load -----------------------------------------------------------------------------------------------


def parsed_files(conn: psycopg.Connection[Any], run_id: int) -> list[dict[str, Any]]:
    """The run's readable files in apply order (rejected files contribute nothing)."""
    return store.fetch_all(
        conn,
        """SELECT rf.file_id, f.original_path FROM sync.run_files rf JOIN sync.feed_files f ON f.id = rf.file_id
           WHERE rf.run_id = %s AND rf.status = 'parsed' ORDER BY rf.ordinal""",
        (run_id,),
    )


def file_name(path: str) -> str:
    return PurePosixPath(path).name


_GOOD_COURSES = sql.SQL("""
    SELECT DISTINCT ON (s.external_id) s.*
    FROM {courses} s JOIN sync.run_files rf ON rf.run_id = %(run)s AND rf.file_id = s.file_id AND rf.status = 'parsed'
    ORDER BY s.external_id, rf.ordinal DESC, s.line_no DESC
""")


def apply_courses(conn: psycopg.Connection[Any], run: RunRow, *, provider: str, update: bool) -> dict[str, int]:
    """Create new courses; with ``update``, rewrite changed ones and retire removed ones. The last
    row of a course in the run wins."""
    run_id = run.id
    good = _GOOD_COURSES.format(courses=stage_table("courses", run_id))
    params = {"run": run_id, "provider": provider, "conn": run.connection_id}
    on_conflict = (
        sql.SQL(
            """DO UPDATE SET title = excluded.title, description = excluded.description,
             launch_url = excluded.launch_url, image_url = excluded.image_url, authors = excluded.authors,
             duration_minutes = excluded.duration_minutes, language = excluded.language,
             published_on = excluded.published_on, copyright_holder = excluded.copyright_holder,
             asset_type = excluded.asset_type, asset_format = excluded.asset_format,
             collection = excluded.collection, discipline = excluded.discipline, category = excluded.category,
             parent_external_id = excluded.parent_external_id, source_modified_on = excluded.source_modified_on,
             tags = excluded.tags, status = excluded.status,
             retired_at = CASE WHEN excluded.status = 'retired' THEN coalesce(c.retired_at, clock_timestamp()) END,
             source_connection_id = excluded.source_connection_id, source_hash = excluded.source_hash,
             updated_at = clock_timestamp()
           WHERE c.source_hash IS DISTINCT FROM excluded.source_hash"""
        )
        if update
        else sql.SQL("DO NOTHING")
    )
    row = store.fetch_one(
        conn,
        sql.SQL(
            """
        WITH good AS ({good}),
        hashed AS (
            SELECT g.*, md5(row(g.title, g.description, g.launch_url, g.image_url, g.authors, g.duration_minutes,
                                g.language, g.published_on, g.copyright_holder, g.asset_type, g.asset_format,
                                g.collection, g.discipline, g.category, g.parent_external_id, g.source_modified_on,
                                g.tags, g.skills, g.retired)::text) AS h
            FROM good g),
        old AS (SELECT c.external_id, c.status FROM lms.courses c JOIN good g USING (external_id)
                WHERE c.provider = %(provider)s),
        up AS (
            INSERT INTO lms.courses AS c (provider, external_id, title, description, launch_url, image_url, authors,
                duration_minutes, language, published_on, copyright_holder, asset_type, asset_format, collection,
                discipline, category, parent_external_id, source_modified_on, tags, status, retired_at,
                source_connection_id, source_hash)
            SELECT %(provider)s, h.external_id, h.title, h.description, h.launch_url, h.image_url, h.authors,
                   h.duration_minutes, h.language, h.published_on, h.copyright_holder, h.asset_type, h.asset_format,
                   h.collection, h.discipline, h.category, h.parent_external_id, h.source_modified_on, h.tags,
                   CASE WHEN h.retired THEN 'retired' ELSE 'active' END,
                   CASE WHEN h.retired THEN clock_timestamp() END, %(conn)s, h.h
            FROM hashed h ORDER BY h.external_id
            ON CONFLICT (provider, external_id) {on_conflict}
            RETURNING c.external_id, c.status, (xmax = 0) AS created)
        SELECT count(*) FILTER (WHERE up.created) AS created,
               count(*) FILTER (WHERE NOT up.created) AS updated,
               count(*) FILTER (WHERE up.status = 'retired' AND old.status IS DISTINCT FROM 'retired') AS retired,
               (SELECT count(*) FROM good) AS staged
        FROM up LEFT JOIN old USING (external_id)"""
        ).format(good=good, on_conflict=on_conflict),
        params,
    )
    assert row is not None
    if update:
        _sync_skills(conn, good, params)
    return {
        "courses_created": int(row["created"]),
        "courses_updated": int(row["updated"]),
        "courses_retired": int(row["retired"]),
        "courses_unchanged": int(row["staged"]) - int(row["created"]) - int(row["updated"]),
    }


def _sync_skills(conn: psycopg.Connection[Any], good: sql.Composable, params: dict[str, Any]) -> None:
    conn.execute(
        sql.SQL(
            """INSERT INTO lms.skills (name)
            SELECT DISTINCT ON (lower(n)) n FROM ({good}) g CROSS JOIN LATERAL unnest(g.skills) n
            ORDER BY lower(n), n
            ON CONFLICT DO NOTHING"""
        ).format(good=good),
        params,
    )
    gained = store.fetch_all(
        conn,
        sql.SQL(
            """WITH good AS ({good}),
            courses AS (SELECT c.id, g.skills FROM good g
                        JOIN lms.courses c ON c.provider = %(provider)s AND c.external_id = g.external_id),
            want AS (SELECT DISTINCT c.id AS course_id, s.id AS skill_id
                     FROM courses c CROSS JOIN LATERAL unnest(c.skills) n JOIN lms.skills s ON s.name_key = lower(n)),
            gone AS (DELETE FROM lms.course_skills cs USING courses c
                     WHERE cs.course_id = c.id
                       AND NOT EXISTS (SELECT 1 FROM want w WHERE w.course_id = cs.course_id
                                                              AND w.skill_id = cs.skill_id))
            INSERT INTO lms.course_skills (course_id, skill_id) SELECT course_id, skill_id FROM want
            ON CONFLICT DO NOTHING RETURNING course_id"""
        ).format(good=good),
        params,
    )
    # People who completed a course before it listed a skill achieve that skill now.
    user_skills.grant_for_courses(conn, sorted({int(r["course_id"]) for r in gained}))


_PROGRESS_COLUMNS = (
    "status",
    "first_accessed_on",
    "last_accessed_on",
    "completed_on",
    "assessed_on",
    "score",
    "time_spent_minutes",
    "visits",
    "progress_percent",
)


def _columns(alias: str | None = None) -> sql.Composed:
    """The progress columns, each of ``alias`` if given."""
    return sql.SQL(", ").join(sql.Identifier(alias, c) if alias else sql.Identifier(c) for c in _PROGRESS_COLUMNS)


def apply_progress(
    conn: psycopg.Connection[Any],
    run: RunRow,
    file_id: int,
    *,
    provider: str,
    what: str,
    by_course_id: bool = False,
    create_learners: bool | None = None,
    course_attr: str | None = None,
    unknown_learner: str | None = None,
) -> dict[str, int]:
    """Merge one feed file's progress rows; ``what`` names the provider's feed in messages. With
    ``by_course_id`` the rows name courses by ``lms.courses.id`` (a kind that resolved them itself,
    of any provider); ``create_learners`` None: the connection's setting; ``course_attr``: the
    attribute whose column an unknown course's row error names (None: the provider's usual one);
    ``unknown_learner``: the row error's sentence for a learner not found (None: the usual one)."""
    run_id = run.id
    if create_learners is None:
        create_learners = config_of(run.config).create_learners
    progress = stage_table("progress", run_id)
    params = {"run": run_id, "file": file_id, "provider": provider, "conn": run.connection_id}
    course_match = (
        sql.SQL("c1.id = s.course_ref::bigint")
        if by_course_id
        else sql.SQL("c1.provider = %(provider)s AND c1.external_id = s.course_ref")
    )
    learners_created = 0
    if create_learners:
        learners_created = conn.execute(
            sql.SQL(
                """INSERT INTO lms.users (email, first_name, last_name, source_connection_id)
                SELECT DISTINCT ON (s.learner_key) coalesce(s.email, s.learner_key), s.first_name, s.last_name, %(conn)s
                FROM {progress} s
                WHERE s.file_id = %(file)s AND s.learner_key ~ {email_like}
                  AND NOT EXISTS (SELECT 1 FROM lms.users u WHERE u.email_key = s.learner_key)
                ORDER BY s.learner_key, s.line_no DESC
                ON CONFLICT DO NOTHING"""
            ).format(progress=progress, email_like=sql.Literal(EMAIL_LIKE)),
            params,
        ).rowcount
    unknown_learner = unknown_learner or (
        "no learner has this e-mail or user name, and it is not an e-mail address a learner could be created with; "
        "correct it and rerun"
        if create_learners
        else "no learner has this e-mail or user name; add the person to the user feed first, or set "
        "create_learners = true on the connection, and rerun"
    )
    unknown_course = (
        f"no {what} course has this code (nor, for the title in the row, one course of that title); import the "
        "course metadata that lists it, or correct the code, and rerun"
    )
    merge = sql.SQL("""
        CASE WHEN 'completed' IN (p.status, l.status) THEN 'completed'
             WHEN 'in_progress' IN (p.status, l.status) THEN 'in_progress' ELSE 'not_started' END AS status,
        least(p.first_accessed_on, l.first_accessed_on) AS first_accessed_on,
        greatest(p.last_accessed_on, l.last_accessed_on) AS last_accessed_on,
        coalesce(p.completed_on, l.completed_on) AS completed_on,
        greatest(p.assessed_on, l.assessed_on) AS assessed_on,
        CASE WHEN l.score IS NOT NULL AND (p.assessed_on IS NULL OR l.assessed_on >= p.assessed_on) THEN l.score
             ELSE coalesce(p.score, l.score) END AS score,
        greatest(p.time_spent_minutes, l.time_spent_minutes) AS time_spent_minutes,
        greatest(p.visits, l.visits) AS visits,
        greatest(p.progress_percent, l.progress_percent) AS progress_percent""")
    row = store.fetch_one(
        conn,
        sql.SQL(
            """
        WITH src AS (
            SELECT s.*, u.id AS user_id, coalesce(c1.id, CASE WHEN c2.n = 1 THEN c2.id END) AS course_id
            FROM {progress} s
            LEFT JOIN lms.users u ON u.email_key = s.learner_key
            LEFT JOIN lms.courses c1 ON {course_match}
            LEFT JOIN LATERAL (
                SELECT min(c.id) AS id, count(*) AS n FROM lms.courses c
                WHERE c1.id IS NULL AND c.provider = %(provider)s AND lower(c.title) = lower(s.course_title)) c2
              ON true
            WHERE s.file_id = %(file)s),
        errs AS (
            INSERT INTO sync.row_errors (run_id, file_id, file_name, line, column_no, column_name, code, message,
                                         value, rejected)
            SELECT %(run)s, %(file)s, f.original_path, s.line_no, (rf.columns -> e.attr ->> 'no')::int,
                   rf.columns -> e.attr ->> 'column', e.code, e.msg, left(e.val, 200), true
            FROM src s
            JOIN sync.feed_files f ON f.id = s.file_id
            JOIN sync.run_files rf ON rf.run_id = %(run)s AND rf.file_id = s.file_id
            CROSS JOIN LATERAL (VALUES
                (s.user_id IS NULL, s.learner_column, 'unknown_learner', %(unknown_learner)s, s.learner_key),
                (s.user_id IS NOT NULL AND s.course_id IS NULL, %(course_attr)s, 'unknown_course', %(unknown_course)s,
                 s.course_ref)) AS e(failed, attr, code, msg, val)
            WHERE e.failed
            RETURNING 1),
        latest AS (
            SELECT DISTINCT ON (user_id, course_id) * FROM src
            WHERE user_id IS NOT NULL AND course_id IS NOT NULL ORDER BY user_id, course_id, line_no DESC),
        merged AS (
            SELECT l.user_id, l.course_id, p.user_id IS NULL AS is_new, {merge}
            FROM latest l LEFT JOIN lms.learner_progress p USING (user_id, course_id)),
        changed AS (
            SELECT m.* FROM merged m LEFT JOIN lms.learner_progress p USING (user_id, course_id)
            WHERE m.is_new OR ({m_columns}) IS DISTINCT FROM ({p_columns})),
        ins AS (
            INSERT INTO lms.learner_progress (user_id, course_id, {columns}, source_connection_id,
                                              source_file_id)
            SELECT user_id, course_id, {columns}, %(conn)s, %(file)s FROM changed WHERE is_new
            RETURNING 1),
        upd AS (
            UPDATE lms.learner_progress p SET ({columns}, source_connection_id, source_file_id,
                                               updated_at)
                 = ({c_columns}, %(conn)s, %(file)s, clock_timestamp())
            FROM changed c WHERE NOT c.is_new AND p.user_id = c.user_id AND p.course_id = c.course_id
            RETURNING 1)
        SELECT (SELECT count(*) FROM ins) AS created, (SELECT count(*) FROM upd) AS updated,
               (SELECT count(*) FROM latest) AS rows, (SELECT count(*) FROM errs) AS rejected"""
        ).format(
            progress=progress,
            course_match=course_match,
            merge=merge,
            columns=_columns(),
            m_columns=_columns("m"),
            p_columns=_columns("p"),
            c_columns=_columns("c"),
        ),
        {
            **params,
            "unknown_learner": unknown_learner,
            "unknown_course": unknown_course,
            "course_attr": course_attr or ("topic_code" if provider == "hmm" else "data_id"),
        },
    )
    assert row is not None
    written = int(row["created"]) + int(row["updated"])
    if written:
        user_skills.grant_for_file(conn, file_id)  # a completion achieves the course's skills
    return {
        "progress_written": written,
        "progress_unchanged": int(row["rows"]) - written,
        "learners_created": learners_created,
    }


# -- the kind: content feeds have no thresholds; a dry run shows what is staged ---------------------------


def plan(conn: psycopg.Connection[Any], run: RunRow) -> dict[str, Any]:
    row = store.fetch_one(
        conn,
        sql.SQL(
            """SELECT (SELECT count(DISTINCT external_id) FROM {}) AS courses,
                      (SELECT count(*) FROM {}) AS progress_rows"""
        ).format(stage_table("courses", run.id), stage_table("progress", run.id)),
    )
    assert row is not None
    return {"courses_in_feed": int(row["courses"]), "progress_rows_in_feed": int(row["progress_rows"])}


class ContentKind(ImportKind):
    """A content provider's kind: courses and learner progress from its files. Duplicates are
    resolved in the merge (the last row of a course or a learner's course wins): no ``prepare``."""

    TABLES = (
        tables.COURSES,
        tables.SKILLS,
        tables.COURSE_SKILLS,
        tables.USERS,
        tables.LEARNER_PROGRESS,
        tables.USER_SKILLS,
    )
    HISTORY_COUNTS = ("courses_created", "courses_updated", "courses_retired", "progress_written")
    PLAN_COUNTS = (
        *PLANNED_ROWS,
        # Retired courses are the store's, not the feed's: the plan does not state them.
        ("courses_in_feed", ("courses_created", "courses_updated", "courses_unchanged")),
        ("progress_rows_in_feed", ("progress_written", "progress_unchanged")),
    )
    HISTORY: ClassVar[tuple[Counted, ...]] = (
        ROWS_READ,
        Counted(
            "courses",
            (
                ("created", "courses_created"),
                ("updated", "courses_updated"),
                ("unchanged", "courses_unchanged"),
                ("retired", "courses_retired"),
            ),
        ),
        Counted("progress", (("written", "progress_written"), ("unchanged", "progress_unchanged"))),
        Counted("learners", (("created", "learners_created"),)),
    )

    create_staging = staticmethod(create_staging)
    plan = staticmethod(plan)
