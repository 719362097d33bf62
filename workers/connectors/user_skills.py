"""``lms.user_skills``: a person achieves a course's skills when they complete the course (on the
earliest such completion). The loads that write completed progress call these in the same
transaction, so the skills export only reads."""

from __future__ import annotations

from typing import Any

import psycopg

_GRANT = """
    INSERT INTO lms.user_skills AS us (user_id, skill_id, course_id, achieved_on)
    SELECT DISTINCT ON (p.user_id, cs.skill_id) p.user_id, cs.skill_id, p.course_id,
           coalesce(p.completed_on, p.updated_at::date)
    FROM lms.learner_progress p JOIN lms.course_skills cs ON cs.course_id = p.course_id
    WHERE p.status = 'completed' AND {which}
    ORDER BY p.user_id, cs.skill_id, coalesce(p.completed_on, p.updated_at::date), p.course_id
    ON CONFLICT (user_id, skill_id) DO UPDATE
      SET achieved_on = excluded.achieved_on, course_id = excluded.course_id, updated_at = clock_timestamp()
      WHERE excluded.achieved_on < us.achieved_on
"""


def grant_for_file(conn: psycopg.Connection[Any], file_id: int) -> int:
    """Skills of the completions a feed file wrote (the records it last changed)."""
    return conn.execute(_GRANT.format(which="p.source_file_id = %(file)s"), {"file": file_id}).rowcount


def grant_for_courses(conn: psycopg.Connection[Any], course_ids: list[int]) -> int:
    """Skills a course gained after people had completed it."""
    if not course_ids:
        return 0
    return conn.execute(_GRANT.format(which="p.course_id = ANY(%(courses)s)"), {"courses": course_ids}).rowcount
