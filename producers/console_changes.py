"""Config as code stays the truth: what the console changed on a connection, and what a later
``connections apply`` would undo.

The console writes each change into the connections file the connection came from and records
which settings it changed (``sync.console_changes``: names, never values). A change stays open
until a ``connections apply`` carries the same values (the file holds it: settled) or undoes it
with ``--force`` (overridden, by whom). Applying a file that lacks an open change is refused,
naming the settings it would undo, so a schedule set in the console is never wiped silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from schemas.kinds import KindConfig, to_json
from workers import store

#: The "setting" a connection created in the console records: no file applied later undoes a
#: creation (apply never deletes), and the first apply carrying the connection settles it.
CREATED = "(new connection)"
#: Tables of a connection's config whose keys are compared one by one (mapping.email, schedule.start).
_TABLES = ("mapping", "schedule", "sftp", "expect", "notify", "api", "state_values", "files")


def flatten(config: dict[str, Any]) -> dict[str, Any]:
    """A stored config as dotted keys: tables one level down, everything else whole."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if key in _TABLES and isinstance(value, dict):
            for sub, v in value.items():
                flat[f"{key}.{sub}"] = v
            if not value:
                flat[key] = {}
        else:
            flat[key] = value
    return flat


def changed_settings(before: dict[str, Any] | None, after: dict[str, Any]) -> list[str]:
    """The dotted keys whose values differ between two stored configs (all of them for a new one);
    a table added to or removed from an existing connection (a schedule where there was none) is
    named as the table."""
    before = before or {}
    whole = {t for t in _TABLES if isinstance(before.get(t), dict) != isinstance(after.get(t), dict)}
    old, new = flatten(before), flatten(after)
    changed = {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)}
    return sorted({k.split(".", 1)[0] if k.split(".", 1)[0] in whole else k for k in changed})


@dataclass(frozen=True)
class Change:
    """A change made in the console: by whom (``console:NAME``), and the file's diff it wrote."""

    by: str
    diff: str = ""


def record(
    conn: psycopg.Connection[Any], connection: str, settings: Sequence[str], change: Change, source_file: str | None
) -> None:
    """Record that the console changed ``settings`` of ``connection`` (in the caller's transaction)."""
    if not settings:
        return
    conn.execute(
        sql.SQL(
            """INSERT INTO sync.console_changes
                 (connection_id, connection_name, source_file, settings, changed_by, diff)
               SELECT id, name, %s, %s, %s, %s FROM sync.connections WHERE name = %s AND deleted_at IS NULL"""
        ),
        (source_file, list(settings), change.by, change.diff, connection),
    )


def _value(config: dict[str, Any], key: str) -> Any:
    """A dotted key's value in a stored config (a whole table for a table's name)."""
    head, _, sub = key.partition(".")
    value = config.get(head)
    return value.get(sub) if sub and isinstance(value, dict) else value


@dataclass(frozen=True)
class Undone:
    """Open console changes of one connection that applying a file would undo."""

    connection: str
    settings: list[str]
    changes: list[dict[str, Any]]

    def sentence(self) -> str:
        first = self.changes[0]
        where = f", written to {first['source_file']}" if first["source_file"] else ""
        return (
            f"{self.connection}: this file would undo what the console changed "
            f"({', '.join(self.settings)}; by {first['changed_by']} at {first['changed_at']:%Y-%m-%d %H:%M}Z{where}); "
            "apply the file the console wrote, or put the same values in this one, "
            "or apply with --force to undo them"
        )


_OPEN = sql.SQL(
    """SELECT c.id, c.source_file, c.settings, c.changed_by, c.changed_at, n.config
       FROM sync.console_changes c JOIN sync.connections n ON n.id = c.connection_id
       WHERE n.name = %s AND n.deleted_at IS NULL AND c.settled_at IS NULL AND c.overridden_at IS NULL
       ORDER BY c.id"""
)


def reconcile(
    conn: psycopg.Connection[Any], connections: Sequence[KindConfig], *, force: bool, by: str
) -> list[Undone]:
    """Settle the open console changes ``connections`` carry; return those they would undo. With
    ``force`` those are marked overridden by ``by`` (in the caller's transaction, which applies them)."""
    undone = []
    for c in connections:
        rows = store.fetch_all(conn, _OPEN, (c.name,))
        if not rows:
            continue
        stored, incoming = rows[0]["config"], to_json(c)
        lost = sorted({k for r in rows for k in r["settings"] if _value(stored, k) != _value(incoming, k)})
        lost_in = [r for r in rows if set(r["settings"]) & set(lost)]
        kept = [r["id"] for r in rows if r not in lost_in]
        if kept:
            conn.execute(sql.SQL("UPDATE sync.console_changes SET settled_at = now() WHERE id = ANY(%s)"), (kept,))
        if lost_in:
            undone.append(Undone(c.name, lost, lost_in))
            if force:
                conn.execute(
                    sql.SQL(
                        "UPDATE sync.console_changes SET overridden_at = now(), overridden_by = %s WHERE id = ANY(%s)"
                    ),
                    (by, [r["id"] for r in lost_in]),
                )
    return undone


def history(connection: str, limit: int = 20) -> list[dict[str, Any]]:
    """A connection's console changes, newest first."""
    with store.connect() as conn:
        return store.fetch_all(
            conn,
            sql.SQL(
                """SELECT id, settings, source_file, changed_by, changed_at, settled_at, overridden_at,
                          overridden_by, diff
                   FROM sync.console_changes WHERE connection_name = %s ORDER BY id DESC LIMIT %s"""
            ),
            (connection, limit),
        )


def latest(connection: str, by: str) -> int | None:
    """The id of the newest change ``by`` made to ``connection``."""
    with store.connect() as conn:
        row = store.fetch_one(
            conn,
            sql.SQL("SELECT max(id) AS id FROM sync.console_changes WHERE connection_name = %s AND changed_by = %s"),
            (connection, by),
        )
    return None if row is None or row["id"] is None else int(row["id"])
