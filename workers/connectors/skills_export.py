"""Kind ``skills_export``: skill achievements, one row per person and skill achieved (or whose
achievement changed) in the window, with the columns of ALM's Skill Transcript. ALM does not publish
the columns of its ``skill_achievements`` file; this is the closest schema it documents.

A person achieves a course's skills when they complete it; the loads that write completed progress
keep ``lms.user_skills`` up to date (workers/connectors/user_skills.py), so this export is a read. Skills carry
no levels or credits in feedsync: those columns are empty; ``Completion Percentage`` is 100.

An achievement removed in the window (``feedsync undo`` of the run that gave it, a voiding that
withdrew it) and still gone is a row with ``Completion Percentage`` 0 and no date achieved: the skill
is no longer achieved. ALM's file has no status column to say it otherwise.
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


def _before_profile(cfg: ExportConnection) -> list[tuple[str, sql.Composable]]:
    """(header, value) in ALM's Skill Transcript order up to userState."""
    return [
        ("Name", person_name("u")),
        ("email", sql.SQL("u.email")),
        ("Adobe ID", EMPTY),
        *([("User Unique ID", sql.SQL("u.external_id"))] if cfg.unique_ids else []),
        ("Skill", sql.SQL("s.name")),
        ("Skill Level", EMPTY),
        ("Credits Required", EMPTY),
        ("Credits Earned", EMPTY),
        ("Completion Percentage", sql.SQL("us.completion")),
        (zoned("Date Assigned", cfg), EMPTY),
        (zoned("Date Achieved", cfg), day(sql.SQL("us.achieved_on"))),
        ("userState", user_state("u")),
    ]


def header(cfg: ExportConnection, profile: Sequence[str]) -> list[str]:
    return [h for h, _ in _before_profile(cfg)] + list(profile) + ["Manager Name"]


def query(cfg: ExportConnection, profile: Sequence[str], window: Window) -> sql.Composed:
    columns = [v for _, v in _before_profile(cfg)] + profile_columns("u", profile) + [person_name("m")]
    return select(
        cfg,
        columns,
        sql.SQL(
            """FROM (SELECT us.user_id, us.skill_id, us.achieved_on, 100 AS completion
                     FROM lms.user_skills us WHERE {window}
                     UNION ALL
                     SELECT r.user_id, r.key[2]::bigint, NULL, 0 FROM {removed}) us
               JOIN lms.users u ON u.id = us.user_id
               JOIN lms.skills s ON s.id = us.skill_id
               LEFT JOIN lms.users m ON m.id = u.manager_id
               ORDER BY us.user_id, s.name_key"""
        ).format(
            window=window.where(sql.SQL("us.updated_at")),
            removed=removals(
                "user_skills", window, sql.SQL("t.user_id = r.key[1]::bigint AND t.skill_id = r.key[2]::bigint")
            ),
        ),
    )


class SkillsExport(ExportKind):
    NAME = "skills_export"
    TITLE = "Skill achievements (ALM's Skill Transcript)"
    FILE_PREFIX = "skill_achievements"
    FOLDER = "skills"

    header = staticmethod(header)
    query = staticmethod(query)
