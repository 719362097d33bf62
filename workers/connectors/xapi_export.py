"""Kind ``xapi_export``: ALM's xAPI activity report, one row per statement stored in the window, with
exactly ALM's header (``User Name,User Email,TimeStamp,Activity IRI,Verb IRI,Statement JSON,Manager
Name,<profile attributes>,userState``). The statement is one CSV-quoted cell holding the JSON as the
LRS stored it (``lms.xapi_statements``, filled by the xAPI import). A statement whose actor is not a
person feedsync knows keeps its e-mail; the person columns are then empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from psycopg import sql

from schemas.exports import ExportConnection
from workers.connectors.exporting import Window, instant, person_name, profile_columns, select, user_state

EXPORT: Literal[True] = True
FILE_PREFIX = "xapi_activity"


def header(profile: Sequence[str]) -> list[str]:
    return [
        "User Name",
        "User Email",
        "TimeStamp",
        "Activity IRI",
        "Verb IRI",
        "Statement JSON",
        "Manager Name",
        *profile,
        "userState",
    ]


def query(cfg: ExportConnection, profile: Sequence[str], window: Window) -> sql.Composed:
    columns = [
        person_name("u"),
        sql.SQL("coalesce(u.email, x.actor_email)"),
        instant('x."timestamp"'),
        sql.SQL("x.object_id"),
        sql.SQL("x.verb_id"),
        sql.SQL("x.statement::text"),
        person_name("m"),
        *profile_columns("u", profile),
        sql.SQL("CASE WHEN u.id IS NOT NULL THEN {} END").format(user_state("u")),
    ]
    return select(
        cfg,
        columns,
        sql.SQL(
            """FROM lms.xapi_statements x
               LEFT JOIN lms.users u ON u.id = x.user_id
               LEFT JOIN lms.users m ON m.id = u.manager_id
               WHERE {window}
               ORDER BY x.stored_at, x."timestamp", x.id"""
        ).format(window=window.where(sql.SQL("x.stored_at"))),
    )
