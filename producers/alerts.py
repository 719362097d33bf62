"""Alerts as admins see them (``feedsync alerts``, the console): list, acknowledge one, and
acknowledge many at once by ids, kind and connection (audited: a flood is acknowledged in one go).
The alarms that open and resolve them are producers/alarms.py."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg.types.json import Jsonb

from workers import store


class NotAcknowledged(Exception):
    """Why an alert could not be acknowledged, in one sentence for the admin."""


def list_alerts(include_resolved: bool = False) -> list[dict[str, Any]]:
    """Open alerts (NEW, ACKNOWLEDGED) newest first; with ``include_resolved``, every alert."""
    with store.connect() as conn:
        return store.fetch_all(
            conn,
            """SELECT id, kind, connection, state, message, first_seen, last_seen, acknowledged_by,
                      acknowledged_at, resolved_at, last_notified_at, notify_error
               FROM sync.alerts WHERE %s OR state <> 'RESOLVED' ORDER BY id DESC""",
            (include_resolved,),
        )


def acknowledge(alert_id: int, by: str) -> dict[str, Any]:
    """Mark a NEW alert ACKNOWLEDGED by ``by`` (on the database clock): it is no longer sent again
    while its condition lasts, and is still resolved when the condition clears."""
    with store.connect() as conn:
        row = store.fetch_one(
            conn,
            """UPDATE sync.alerts SET state = 'ACKNOWLEDGED', acknowledged_by = %s, acknowledged_at = sync.clock()
               WHERE id = %s AND state = 'NEW'
               RETURNING id, kind, connection, state, acknowledged_by, acknowledged_at""",
            (by, alert_id),
        )
        if row is not None:
            return row
        current = store.fetch_one(
            conn,
            "SELECT state, acknowledged_by, acknowledged_at, resolved_at FROM sync.alerts WHERE id = %s",
            (alert_id,),
        )
    if current is None:
        raise NotAcknowledged(f"no alert {alert_id}; see feedsync alerts --all")
    if current["state"] == "ACKNOWLEDGED":
        raise NotAcknowledged(
            f"alert {alert_id} was already acknowledged by {current['acknowledged_by']} "
            f"at {current['acknowledged_at']:%Y-%m-%d %H:%M}Z"
        )
    raise NotAcknowledged(
        f"alert {alert_id} was resolved at {current['resolved_at']:%Y-%m-%d %H:%M}Z: nothing to acknowledge"
    )


def acknowledge_matching(
    by: str,
    *,
    ids: Sequence[int] = (),
    kinds: Sequence[str] = (),
    connections: Sequence[str] = (),
    admin: str,
    client: str,
) -> list[dict[str, Any]]:
    """Acknowledge every NEW alert that matches all the criteria given (any of ``ids``, any of
    ``kinds``, a connection name matching any of the ``connections`` patterns, where ``*`` is any
    text), as ``by``; one ``alerts_ack`` row in sync.audit says who (``admin``, from ``client``)
    acknowledged which, also when nothing matched. Returns the acknowledged alerts, oldest first."""
    if not (ids or kinds or connections):
        raise NotAcknowledged(
            "name the alerts to acknowledge: their ids, --kind or --connection (feedsync alerts lists them)"
        )
    target = _describe(ids, kinds, connections)
    # A pattern's own % and _ are literal; only * is a wildcard.
    patterns = [c.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace("*", "%") for c in connections]
    with store.connect() as conn:
        rows = store.fetch_all(
            conn,
            """UPDATE sync.alerts SET state = 'ACKNOWLEDGED', acknowledged_by = %(by)s, acknowledged_at = sync.clock()
               WHERE state = 'NEW' AND (%(any_id)s OR id = ANY(%(ids)s)) AND (%(any_kind)s OR kind = ANY(%(kinds)s))
                 AND (%(any_conn)s OR connection LIKE ANY(%(patterns)s))
               RETURNING id, kind, connection, state, acknowledged_by, acknowledged_at""",
            {
                "by": by,
                "ids": list(ids),
                "any_id": not ids,
                "kinds": list(kinds),
                "any_kind": not kinds,
                "patterns": patterns,
                "any_conn": not connections,
            },
        )
        rows.sort(key=lambda r: int(r["id"]))
        outcome = "ok" if rows else "refused: no open alert not yet acknowledged matches"
        conn.execute(
            "INSERT INTO sync.audit (admin, action, target, outcome, detail, client) VALUES (%s, %s, %s, %s, %s, %s)",
            (admin, "alerts_ack", target, outcome, Jsonb({"ids": [int(r["id"]) for r in rows]}), client),
        )
    if not rows:
        raise NotAcknowledged(f"no NEW alert matches {target}; see feedsync alerts")
    return rows


def _describe(ids: Sequence[int], kinds: Sequence[str], connections: Sequence[str]) -> str:
    parts = []
    if ids:
        parts.append("alerts " + ", ".join(str(i) for i in ids))
    if kinds:
        parts.append("kind " + " or ".join(kinds))
    if connections:
        parts.append("connection " + " or ".join(connections))
    return "; ".join(parts)
