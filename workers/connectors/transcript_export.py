"""Kind ``transcript_export``: ALM's Learner Transcript, one row per person and course whose learning
record (``lms.learner_progress``) changed in the window, in ALM's column order.

A record removed in the window (``feedsync undo`` of the run that wrote it) and still gone is a row
with ``Status`` ``Unenrolled`` and empty progress columns, so the destination drops the completion it
was sent (the ``status`` filter's ``unenrolled``).

feedsync keeps course-level records only, so every row is a course row (``Type`` = ``Course``,
``Module`` empty). Columns without data in feedsync (Adobe ID, learning plan, instance, enrolment
and deadline dates, grade, attempts, the summary counts) are present and empty.
"""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import sql

from schemas.exports import ExportConnection
from workers.connectors.contract import ExportKind
from workers.connectors.exporting import (
    EMPTY,
    Window,
    day,
    person_name,
    profile_columns,
    removals,
    select,
    user_state,
    zoned,
)

#: ALM's status strings, as its transcript writes them ("Not started", lower-case s).
STATUS = {
    "not_started": "Not started",
    "in_progress": "In Progress",
    "completed": "Completed",
    "unenrolled": "Unenrolled",
}

#: ``Progress %``: 100 when completed, 0 when not started; in progress, the share of the course's
#: duration spent in it, at most 99 (feedsync keeps no module-level progress), 0 when not known.
PROGRESS = sql.SQL(
    """CASE p.status WHEN 'completed' THEN 100 WHEN 'not_started' THEN 0
       WHEN 'in_progress' THEN CASE WHEN c.duration_minutes > 0 AND p.time_spent_minutes IS NOT NULL
                                    THEN least(99, floor(100.0 * p.time_spent_minutes / c.duration_minutes))::int
                                    ELSE 0 END END"""
)


def _status() -> sql.Composed:
    return sql.SQL("CASE p.status {} END").format(
        sql.SQL(" ").join(sql.SQL("WHEN {} THEN {}").format(sql.Literal(k), sql.Literal(v)) for k, v in STATUS.items())
    )


def _before_profile(cfg: ExportConnection) -> list[tuple[str, sql.Composable]]:
    """(header, value) in ALM's order up to userState; profile attributes and _AFTER_PROFILE follow.
    ``User Unique ID`` and ``LO Unique ID`` only with ``unique_ids`` (ALM: "only if enabled")."""
    unique = cfg.unique_ids
    return [
        ("Name", person_name("u")),
        ("email", sql.SQL("u.email")),
        ("Adobe ID", EMPTY),
        *([("User Unique ID", sql.SQL("u.external_id"))] if unique else []),
        ("Learning plan Name", EMPTY),
        ("LP/Certification/Course", sql.SQL("c.title")),
        ("Type", sql.SQL("'Course'")),
        ("Course", sql.SQL("c.title")),
        *([("LO Unique ID", sql.SQL("c.external_id"))] if unique else []),
        ("Instance", EMPTY),
        ("Selection Criteria", EMPTY),
        ("Module", EMPTY),
        ("Version", EMPTY),
        ("Delivery Type", EMPTY),
        ("Language", sql.SQL("c.language")),
        ("Comment", EMPTY),
        # Feeds give days, not times: a day is written as given, whatever the time zone.
        (zoned("Enrollment Date", cfg), EMPTY),
        (zoned("Started Date", cfg), day(sql.SQL("p.first_accessed_on"))),
        (zoned("Completion Date", cfg), day(sql.SQL("p.completed_on"))),
        (zoned("Deadline", cfg), EMPTY),
        ("Overdue", EMPTY),
        ("Status", _status()),
        ("Progress %", PROGRESS),
        ("Time Spent(minutes)", sql.SQL("p.time_spent_minutes")),
        ("Grade", EMPTY),
        ("Quiz Score", sql.SQL("p.score")),
        ("Quiz_score_max", EMPTY),
        ("Highest_Quiz_score", EMPTY),
        ("Highest_Quiz_score_max", EMPTY),
        ("Attempts Taken", EMPTY),
        ("Maximum Allowed Attempts", EMPTY),
        ("userState", user_state("u")),
    ]


_AFTER_PROFILE: list[tuple[str, sql.Composable]] = [
    ("Manager Name", person_name("m")),
    ("Enrollment Count", EMPTY),
    ("Started Count", EMPTY),
    ("Completion Count", EMPTY),
    ("Due in N Days", EMPTY),
    ("Due in N Days for User", EMPTY),
    ("Count of (Progress Greater than N %)", EMPTY),
    ("Count of (Progress Greater than N %) for User", EMPTY),
    ("Training ID", EMPTY),
    ("Training or Module Duration (mins)", sql.SQL("c.duration_minutes")),
]


def header(cfg: ExportConnection, profile: Sequence[str]) -> list[str]:
    return [h for h, _ in _before_profile(cfg)] + list(profile) + [h for h, _ in _AFTER_PROFILE]


def query(cfg: ExportConnection, profile: Sequence[str], window: Window) -> sql.Composed:
    columns = [v for _, v in _before_profile(cfg)] + profile_columns("u", profile) + [v for _, v in _AFTER_PROFILE]
    return select(
        cfg,
        columns,
        sql.SQL(
            """FROM (SELECT p.user_id, p.course_id, p.status, p.first_accessed_on, p.completed_on, p.score,
                            p.time_spent_minutes
                     FROM lms.learner_progress p WHERE {window}
                     UNION ALL
                     SELECT r.user_id, r.key[2]::bigint, 'unenrolled', NULL, NULL, NULL, NULL FROM {removed}) p
               JOIN lms.users u ON u.id = p.user_id
               JOIN lms.courses c ON c.id = p.course_id
               LEFT JOIN lms.users m ON m.id = u.manager_id
               WHERE p.status = ANY({statuses})
               ORDER BY p.user_id, p.course_id"""
        ).format(
            window=window.where(sql.SQL("p.updated_at")),
            removed=removals(
                "learner_progress", window, sql.SQL("t.user_id = r.key[1]::bigint AND t.course_id = r.key[2]::bigint")
            ),
            statuses=sql.Literal(list(cfg.status or ())),
        ),
    )


class TranscriptExport(ExportKind):
    NAME = "transcript_export"
    TITLE = "Learner transcripts (ALM's Learner Transcript)"
    FILE_PREFIX = "learner_transcript"
    FOLDER = "transcripts"

    header = staticmethod(header)
    query = staticmethod(query)
