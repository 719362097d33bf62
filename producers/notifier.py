"""Alarm digests and run-warning retries, sent off the scheduler's thread.

An evaluation round (producers/alarms.py) queues, in its own transaction, the alerts it has to send
(``queue``): one digest per destination (a connection's ``[connections.notify]`` channels), so an
alarm flood is one message per destination and round, not one per alert. While a digest waits, the
next rounds add their alerts to it rather than queueing more for the same destination.

The notifier, a thread of its own in ``feedsync scheduler`` (``loop``), sends them. Each round
(``deliver``) takes the oldest waiting digest and the oldest run warning due again
(workers/notify.py) in turn, one at a time, until nothing is left or the round's budget is spent;
what is left waits for the next round. A webhook that never answers so costs a round at most its
budget and one ``notify_timeout_s``, and never delays a schedule slot, which the scheduler's own
thread fires.

Exactly once with several schedulers: a digest is claimed (``claimed_at``, SKIP LOCKED) and
committed before it is sent; a crash in between loses that message rather than sending it twice,
and its alerts are sent again at their next reminder (producers/alarms.py RENOTIFY).

Messages carry names, kinds, counts, times and the alarms' own sentences (run and dead-letter ids,
never row values).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import structlog
from psycopg.types.json import Jsonb

from schemas.config_parts import Notify
from schemas.settings import Settings
from workers import notify, store
from workers.errors import safe_text

log = structlog.get_logger(__name__)

#: Alerts listed one by one in a digest; the counts cover them all.
LISTED = 200


@dataclass
class Round:
    """What one notifier round did: digests sent or failed (id -> outcome), warnings retried."""

    digests: dict[int, str] = field(default_factory=dict)
    warnings: int = 0


def queue(conn: Any, channels: Notify, alert_ids: list[int], now: Any) -> int:
    """Add alerts to their destination's waiting digest (or start one), in the caller's transaction."""
    key = Jsonb({"webhook": channels.webhook, "email": sorted(channels.email)})
    row = store.fetch_one(
        conn,
        """INSERT INTO sync.alert_digests (channels, alert_ids, created_at) VALUES (%s, %s, %s)
           ON CONFLICT (channels) WHERE claimed_at IS NULL DO UPDATE
           SET alert_ids = ARRAY(SELECT DISTINCT unnest(sync.alert_digests.alert_ids || EXCLUDED.alert_ids) ORDER BY 1)
           RETURNING id""",
        (key, sorted(alert_ids), now),
    )
    assert row is not None
    return int(row["id"])


def deliver(budget_s: float) -> Round:
    """One round: waiting digests and due run warnings, in turn, until none is left or ``budget_s``
    has passed (a send already started finishes: at most one notify_timeout_s more)."""
    until = time.monotonic() + budget_s
    done = Round()
    while time.monotonic() < until:
        digest = _claim()
        if digest is not None:
            done.digests[int(digest["id"])] = _send(digest)
        retried = time.monotonic() < until and notify.retry_next() is not None
        done.warnings += retried
        if digest is None and not retried:
            break
    return done


def loop(settings: Settings, stopping: threading.Event, wake: threading.Event) -> None:
    """The notifier thread: a round whenever the scheduler queued something, else each sweep interval."""
    while not stopping.is_set():
        try:
            done = deliver(settings.alarm_interval_s)
            if done.digests or done.warnings:
                log.info("notifier round", digests=len(done.digests), warnings_retried=done.warnings)
        except Exception as exc:
            log.warning("notifier round failed; retrying next round", error=safe_text(exc))
        wake.wait(settings.outbox_sweep_interval_s)
        wake.clear()


def _claim() -> dict[str, Any] | None:
    with store.connect(autocommit=True) as conn:
        return store.fetch_one(
            conn,
            """UPDATE sync.alert_digests SET claimed_at = now()
               WHERE id = (SELECT id FROM sync.alert_digests WHERE claimed_at IS NULL
                           ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
               RETURNING id, channels, alert_ids""",
        )


def _send(digest: dict[str, Any]) -> str:
    with store.connect() as conn:
        # Acknowledged or resolved since it was queued: someone has it already, or it is over.
        alerts = store.fetch_all(
            conn,
            """SELECT id, kind, connection, state, message, first_seen, last_seen FROM sync.alerts
               WHERE id = ANY(%s) AND state = 'NEW' ORDER BY connection, kind, id""",
            (digest["alert_ids"],),
        )
    if alerts:
        channels = Notify(webhook=digest["channels"]["webhook"], email=list(digest["channels"]["email"]))
        outcomes = notify.send(channels, _payload(int(digest["id"]), alerts), _subject(alerts), _body(alerts))
        error = "; ".join(f"{channel}: {outcome}" for channel, outcome in outcomes.items() if outcome != "sent")
    else:
        error = ""
    with store.connect() as conn:
        conn.execute(
            "UPDATE sync.alert_digests SET sent_at = CASE WHEN %(e)s = '' THEN now() END, error = nullif(%(e)s, '') "
            "WHERE id = %(id)s",
            {"e": error, "id": digest["id"]},
        )
        conn.execute(
            "UPDATE sync.alerts SET notify_error = nullif(%s, '') WHERE id = ANY(%s)",
            (error, [a["id"] for a in alerts]),
        )
    return error or "sent"


def _counts(alerts: list[dict[str, Any]]) -> dict[str, int]:
    return dict(sorted(Counter(str(a["kind"]) for a in alerts).items()))


def _ack_hint(alerts: list[dict[str, Any]]) -> str:
    ids = " ".join(str(a["id"]) for a in alerts[:LISTED])
    return f"feedsync alerts ack {ids}" if len(alerts) <= LISTED else "feedsync alerts ack --kind KIND"


def _payload(digest_id: int, alerts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "event": "alerts",
        "digest_id": digest_id,
        "count": len(alerts),
        "counts": _counts(alerts),
        "alerts": [
            {
                "alert_id": a["id"],
                "kind": a["kind"],
                "connection": a["connection"],
                "state": a["state"],
                "message": a["message"],
                "first_seen": a["first_seen"].isoformat(),
                "last_seen": a["last_seen"].isoformat(),
                "acknowledge": f"feedsync alerts ack {a['id']}",
            }
            for a in alerts[:LISTED]
        ],
        "acknowledge": _ack_hint(alerts),
    }


def _subject(alerts: list[dict[str, Any]]) -> str:
    if len(alerts) == 1:
        (a,) = alerts
        return f"feedsync alert: {a['kind'].replace('_', ' ')} on {a['connection']}"
    counts = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in _counts(alerts).items())
    return f"feedsync alerts: {len(alerts)} ({counts})"


def _body(alerts: list[dict[str, Any]]) -> str:
    counts = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in _counts(alerts).items())
    lines = [f"{len(alerts)} alert(s): {counts}.", ""]
    for a in alerts[:LISTED]:
        lines.append(
            f"#{a['id']} {a['message']} (first seen {a['first_seen']:%Y-%m-%d %H:%M}Z, "
            f"last seen {a['last_seen']:%Y-%m-%d %H:%M}Z)"
        )
    if len(alerts) > LISTED:
        lines.append(f"... and {len(alerts) - LISTED} more: feedsync alerts")
    lines += [
        "",
        f"Acknowledge them: {_ack_hint(alerts)}, or by kind or connection (feedsync alerts ack --kind KIND "
        "--connection NAME), or on the console's Alerts page (open alerts: feedsync alerts).",
    ]
    return "\n".join(lines) + "\n"
