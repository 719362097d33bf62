"""Alerts as admins see them (``feedsync alerts``, the console): list, and acknowledge one.
The alarms that open and resolve them are producers/alarms.py."""

from __future__ import annotations

from typing import Any

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
