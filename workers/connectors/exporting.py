"""What every export kind shares: the window and the person columns (the contract: ``contract.ExportKind``).

An export kind's module (``transcript_export``, ``skills_export``, ``xapi_export``) gives the file's
name prefix, its header and one ``SELECT`` over a window of change time; the export stage
(workers/stages/export.py) streams that SELECT with ``COPY … TO STDOUT`` into the file.

Columns follow Adobe Learning Manager's exports so a consumer's parser works unchanged: a column
feedsync has no data for is present and empty (NULL, written as an empty cell). Profile attributes
(``lms.users.attributes``, ALM's group-able Active Fields) are one column each, named by the
attribute, in alphabetical order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from schemas.exports import ExportConnection
from workers import store
from workers.files.cells import sql_cell

EMPTY = sql.SQL("NULL")


def zoned(title: str, cfg: ExportConnection) -> str:
    """A date column's header as ALM writes it, with the account's time zone: ``Completion Date (UTC
    TimeZone)``, ``Completion Date (Asia/Calcutta TimeZone)``."""
    return f"{title} ({cfg.timezone} TimeZone)"


@dataclass(frozen=True)
class Window:
    """Half-open by change time: start <= changed_at < end."""

    start: datetime
    end: datetime

    def where(self, column: sql.Composable) -> sql.Composed:
        return sql.SQL("{c} >= {a} AND {c} < {b}").format(c=column, a=sql.Literal(self.start), b=sql.Literal(self.end))


def profile_attributes(conn: psycopg.Connection[Any]) -> list[str]:
    """Every profile attribute any person has: one column each, so the header is the same for every row."""
    rows = store.fetch_all(
        conn, "SELECT DISTINCT k FROM lms.users u CROSS JOIN LATERAL jsonb_object_keys(u.attributes) k ORDER BY k"
    )
    return [r["k"] for r in rows]


def person_name(alias: str) -> sql.Composed:
    a = sql.Identifier(alias)
    return sql.SQL("nullif(concat_ws(' ', {a}.first_name, {a}.last_name), '')").format(a=a)


def user_state(alias: str) -> sql.Composed:
    """ALM's userState: ACTIVE; DELETED for a person a users feed said was DELETED (kept apart in
    lms.deleted_people: feedsync never deletes anyone); SUSPENDED for anyone else inactive."""
    return sql.SQL(
        """CASE WHEN {a}.active THEN 'ACTIVE'
                WHEN EXISTS (SELECT 1 FROM lms.deleted_people d WHERE d.user_id = {a}.id) THEN 'DELETED'
                ELSE 'SUSPENDED' END"""
    ).format(a=sql.Identifier(alias))


def profile_columns(alias: str, profile: Sequence[str]) -> list[sql.Composable]:
    return [sql.SQL("{a}.attributes ->> {k}").format(a=sql.Identifier(alias), k=sql.Literal(k)) for k in profile]


def day(expr: sql.Composable) -> sql.Composed:
    """A date as YYYY-MM-DD, whatever the session's DateStyle."""
    return sql.SQL("to_char({}, 'YYYY-MM-DD')").format(expr)


def instant(expr: sql.Composable, timezone: str = "UTC") -> sql.Composed:
    """A point in time as ISO 8601 with milliseconds: in UTC with ``Z`` as ALM's xAPI report writes
    it, or in the account's time zone with its offset (``2018-07-27T15:33:41.863+05:30``). Whatever
    the session's TimeZone."""
    if timezone == "UTC":
        return sql.SQL("""to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')""").format(expr)
    return sql.SQL(
        """(SELECT to_char(x.local, 'YYYY-MM-DD"T"HH24:MI:SS.MS')
                   || CASE WHEN x.off < interval '0' THEN '-' || to_char(-x.off, 'HH24:MI')
                           ELSE '+' || to_char(x.off, 'HH24:MI') END
            FROM (SELECT {e} AT TIME ZONE {tz} AS local,
                         ({e} AT TIME ZONE {tz}) - ({e} AT TIME ZONE 'UTC') AS off) x)"""
    ).format(e=expr, tz=sql.Literal(timezone))


def removals(table: str, window: Window, gone: sql.Composable) -> sql.Composed:
    """SQL: the records of lms.``table`` removed in the window (``sync.removals``, written by a trigger
    on every delete) and still gone now, the latest removal of each, as a subquery ``r``. ``gone``
    matches the record ``t`` to the removal ``r`` by key. A record back since is sent as it is now
    (by its own change time) instead, so a file never holds a record and its removal together."""
    return sql.SQL(
        """(SELECT DISTINCT ON (r.key) r.* FROM sync.removals r
            WHERE r.tbl = {tbl} AND {window} AND NOT EXISTS (SELECT 1 FROM {t} t WHERE {gone})
            ORDER BY r.key, r.removed_at DESC) r"""
    ).format(
        tbl=sql.Literal(table),
        window=window.where(sql.SQL("r.removed_at")),
        t=sql.Identifier("lms", table),
        gone=gone,
    )


def select(cfg: ExportConnection, columns: Sequence[sql.Composable], from_where: sql.Composable) -> sql.Composed:
    """The export's SELECT; every cell through ``sql_cell`` unless the connection asks for raw values:
    the one place all three exports pass, whichever column a feed's value lands in."""
    cells = columns if not cfg.escape_formulas else [sql_cell(c) for c in columns]
    return sql.SQL("SELECT {} {}").format(sql.SQL(", ").join(cells), from_where)
