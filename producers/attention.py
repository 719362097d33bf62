"""What needs a human now, in one place for the console's strip, nav counts and tile colours and
for ``feedsync status``: open alerts, runs held for approval, failed or dead-lettered runs that no
replay or rerun has taken up, and warnings (run webhooks, e-mails, alert notices) that could not be
sent. Each item has a severity: ``bad`` (something broke or went missing) or ``wait`` (a decision
or a look is owed); a connection's worst open item colours its tile."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from workers import store

BAD, WAIT = "bad", "wait"
#: Alert kinds that mean the feed is broken or absent; the others ask for a look.
_BAD_ALERTS = frozenset({"missing", "failed_runs", "dead_letter"})
_RANK = {BAD: 2, WAIT: 1}


@dataclass(frozen=True, slots=True)
class Item:
    """One thing to look at: what it is, on which connection, a sentence, and where to act."""

    what: str  # alert | held | failed | dead_lettered | unsent
    connection: str
    severity: str
    text: str
    link: str
    since: datetime | None


@dataclass(frozen=True, slots=True)
class Attention:
    items: list[Item] = field(default_factory=list)

    def count(self, *what: str) -> int:
        return sum(1 for i in self.items if not what or i.what in what)

    def worst(self) -> dict[str, str]:
        """Each connection's worst open item's severity (a connection with none is absent)."""
        out: dict[str, str] = {}
        for i in self.items:
            if _RANK[i.severity] > _RANK.get(out.get(i.connection, ""), 0):
                out[i.connection] = i.severity
        return out


_ALERTS = """SELECT id, kind, connection, message, first_seen, notify_error FROM sync.alerts
             WHERE state <> 'RESOLVED' ORDER BY first_seen, id"""
_HELD = """SELECT id, connection_name, held_at, plan FROM sync.runs
           WHERE status = 'awaiting_approval' ORDER BY id"""
# A failed run counts until a rerun of it is made or its dead letters are replayed (which reopens
# it); a run with dead letters not replayed counts whatever its status says.
_BROKEN = """SELECT r.id, r.connection_name, r.status, r.finished_at,
                    (SELECT count(*) FROM sync.dead_letters d WHERE d.run_id = r.id AND d.replayed_at IS NULL)
                      AS dead_letters
             FROM sync.runs r
             WHERE (r.status = 'failed' AND NOT EXISTS (SELECT 1 FROM sync.runs x WHERE x.rerun_of = r.id))
                OR EXISTS (SELECT 1 FROM sync.dead_letters d WHERE d.run_id = r.id AND d.replayed_at IS NULL)
             ORDER BY r.id"""
_UNSENT = """SELECT n.run_id, n.channel, r.connection_name FROM sync.notifications n
             JOIN sync.runs r ON r.id = n.run_id
             WHERE n.sent_at IS NULL AND n.error IS NOT NULL ORDER BY n.run_id, n.channel"""


def needs_attention() -> Attention:
    with store.connect() as conn:
        alerts = store.fetch_all(conn, _ALERTS)
        held = store.fetch_all(conn, _HELD)
        broken = store.fetch_all(conn, _BROKEN)
        unsent = store.fetch_all(conn, _UNSENT)
    items = [_alert(a) for a in alerts]
    items += [Item("held", h["connection_name"], WAIT, _held_text(h), f"/runs/{h['id']}", h["held_at"]) for h in held]
    items += [_broken(b) for b in broken]
    items += [
        Item(
            "unsent",
            u["connection_name"],
            WAIT,
            f"the {u['channel']} warning about run #{u['run_id']} could not be sent",
            f"/runs/{u['run_id']}",
            None,
        )
        for u in unsent
    ]
    items += [
        Item(
            "unsent",
            a["connection"],
            WAIT,
            f"the notice of alert #{a['id']} ({a['kind']}) could not be sent",
            "/alerts",
            a["first_seen"],
        )
        for a in alerts
        if a["notify_error"]
    ]
    return Attention(items)


def _alert(a: dict[str, Any]) -> Item:
    severity = BAD if a["kind"] in _BAD_ALERTS else WAIT
    return Item("alert", a["connection"], severity, f"{a['kind']} alert: {a['message']}", "/alerts", a["first_seen"])


def _held_text(h: dict[str, Any]) -> str:
    reasons = (h["plan"] or {}).get("held_because") or []
    why = f": {reasons[0]}" if reasons else ""
    return f"run #{h['id']} waits for approval{why}"


def _broken(b: dict[str, Any]) -> Item:
    n = int(b["dead_letters"])
    if n:
        text = f"run #{b['id']} has {n} dead-lettered message{'s' if n != 1 else ''}: replay once the cause is fixed"
        return Item("dead_lettered", b["connection_name"], BAD, text, f"/runs/{b['id']}", b["finished_at"])
    text = f"run #{b['id']} failed: read its error, fix the cause, then rerun"
    return Item("failed", b["connection_name"], BAD, text, f"/runs/{b['id']}", b["finished_at"])


def summary(a: Attention) -> str:
    """One line for ``feedsync status``."""
    parts = [
        (a.count("alert"), "open alert", "open alerts"),
        (a.count("held"), "held run", "held runs"),
        (a.count("failed", "dead_lettered"), "failed or dead-lettered run", "failed or dead-lettered runs"),
        (a.count("unsent"), "warning not sent", "warnings not sent"),
    ]
    shown = [f"{n} {one if n == 1 else many}" for n, one, many in parts if n]
    return ", ".join(shown) if shown else "nothing"
