"""Kind ``xapi_export``: ALM's xAPI activity report, one row per statement stored in the window, with
exactly ALM's header (``User Name,User Email,TimeStamp,Activity IRI,Verb IRI,Statement JSON,Manager
Name,<profile attributes>,userState``). The statement is one CSV-quoted cell holding the JSON as the
LRS stored it (``lms.xapi_statements``, filled by the xAPI import). A statement whose actor is not a
person feedsync knows keeps its e-mail; the person columns are then empty.

A statement removed in the window (``feedsync undo`` of the run that stored it) and still gone is
sent as xAPI says a statement is taken back: a statement by the same actor voiding it (verb
``voided``, object a ``StatementRef`` to its id, ``Activity IRI`` empty), timed at the removal.
"""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import sql

from schemas.exports import ExportConnection
from workers.connectors.contract import ExportKind
from workers.connectors.exporting import Window, instant, person_name, profile_columns, removals, select, user_state

VOIDED = "http://adlnet.gov/expapi/verbs/voided"


def header(cfg: ExportConnection, profile: Sequence[str]) -> list[str]:
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
        instant(sql.SQL('x."timestamp"'), cfg.timezone),
        sql.SQL("x.object_id"),
        sql.SQL("x.verb_id"),
        sql.SQL("x.statement"),
        person_name("m"),
        *profile_columns("u", profile),
        sql.SQL("CASE WHEN u.id IS NOT NULL THEN {} END").format(user_state("u")),
    ]
    return select(
        cfg,
        columns,
        sql.SQL(
            """FROM (SELECT x.user_id, x.actor_email, x."timestamp", x.object_id, x.verb_id,
                            x.statement::text AS statement, x.stored_at, x.id
                     FROM lms.xapi_statements x WHERE {window}
                     UNION ALL
                     SELECT r.user_id, r.actor_email, r.removed_at, '', {voided}, {voiding}, r.removed_at, r.id
                     FROM {removed}) x
               LEFT JOIN lms.users u ON u.id = x.user_id
               LEFT JOIN lms.users m ON m.id = u.manager_id
               ORDER BY x.stored_at, x."timestamp", x.id"""
        ).format(
            window=window.where(sql.SQL("x.stored_at")),
            voided=sql.Literal(VOIDED),
            voiding=_voiding(),
            removed=removals("xapi_statements", window, sql.SQL("t.id = r.key[1]::uuid")),
        ),
    )


def _voiding() -> sql.Composed:
    """SQL: the statement voiding removal ``r`` (xAPI 1.0.3's Voided statements): its id is the removal's, so a
    rerun of the export sends the same statement."""
    return sql.SQL(
        """json_build_object('id', r.id, 'actor', r.actor,
                             'verb', json_build_object('id', {voided}, 'display', json_build_object('en-US', 'voided')),
                             'object', json_build_object('objectType', 'StatementRef', 'id', r.key[1]),
                             'timestamp', {at}, 'version', '1.0.3')::text"""
    ).format(voided=sql.Literal(VOIDED), at=instant(sql.SQL("r.removed_at")))


class XapiExport(ExportKind):
    NAME = "xapi_export"
    TITLE = "xAPI activity (ALM's xAPI report)"
    FILE_PREFIX = "xapi_activity"
    FOLDER = "xapi"

    header = staticmethod(header)
    query = staticmethod(query)
