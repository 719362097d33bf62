"""Feed alarms: evaluated by the scheduler on the database clock, kept in ``sync.alerts``, sent on
the connection's ``[connections.notify]`` channels.

Kinds (schemas.states.AlertKind), per enabled connection:

Deadlines count from when the connection was created or last enabled and its schedule last
resumed (``enabled_at``, migration 026); while its schedule is paused no feed is due.

- ``missing`` / ``late``: with ``expect.by``, a deadline passed (producers/expectations.py) and no
  run imported the feed in time: nothing had arrived (missing), or something arrived but was not
  imported (late). With ``expect.every``, no successful import for that long (plus ``grace_min``).
  Resolved by the next on-time successful run; a feed imported late keeps its alert open, quietly.
- ``row_drift``: the latest successful run read more than ``max_row_drift`` away from the median of
  the ``drift_runs`` successful runs before it; nothing until there are that many.
- ``failed_runs``: the last ``max_failed_runs`` runs (3) all failed.
- ``held``: a run waits for approval. ``dead_letter``: a dead letter of its runs is not replayed.
- ``parked``: an API's daily quota is used up (LinkedIn's 429) and the connection is parked until
  it resets (``sync.connections.parked_until``); resolved once that time has passed.

One open alert per connection and kind (a partial unique index): a condition seen again updates
its ``last_seen`` and message, and is sent again only after RENOTIFY and only while NEW (an
acknowledged alert is someone's already). A condition gone resolves its alert.

Exactly once with several schedulers: an evaluation is one transaction that first takes a
transaction-level advisory lock with ``pg_try_advisory_xact_lock``; a scheduler that does not get
it skips this round (another is evaluating the same facts). Alerts to send are claimed
(``last_notified_at``) and queued, one digest per destination, in that transaction; the notifier
thread sends the digests (producers/notifier.py), never the evaluation: a slow webhook must not
hold the scheduler's thread, which fires the schedule slots.

Messages carry names, counts, times and run and dead-letter ids, never row values.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog

from producers import expectations, notifier
from schemas.config_parts import Expect, Notify
from schemas.kinds import connection_from_json
from schemas.states import AlertKind, AlertState
from workers import failpoints, store

log = structlog.get_logger(__name__)

#: The advisory lock key of an evaluation ("fsal").
LOCK_KEY = 0x6673616C
RENOTIFY = timedelta(hours=1)
_DEADLINE_KINDS = frozenset({AlertKind.LATE, AlertKind.MISSING})

# A run that imported the feed: it ended well, was not a dry run and, for a kind that takes files,
# read at least one file it did not reject (a scheduled run that found nothing is no feed).
_IMPORTED = """
    SELECT finished_at FROM sync.runs
    WHERE connection_name = %(c)s AND status IN ('completed', 'completed_with_errors') AND NOT dry_run
      AND (NOT %(files)s OR coalesce((counts->>'files')::int, 0) > coalesce((counts->>'files_rejected')::int, 0))
      AND finished_at > %(after)s AND finished_at <= %(until)s
    ORDER BY finished_at LIMIT 1
"""


@dataclass(frozen=True)
class Finding:
    kind: AlertKind
    message: str
    #: False: raised only when no deadline alert is open; an open one is left as it is (the feed
    #: came late: worth one alert, not an hourly reminder).
    repeat: bool = True


@dataclass
class Verdict:
    findings: list[Finding] = field(default_factory=list)
    resolve: set[AlertKind] = field(default_factory=set)


@dataclass(frozen=True)
class Evaluation:
    at: datetime
    opened: list[int]
    resolved: int
    #: The alerts queued to be sent (producers/notifier.py sends them).
    notified: list[int]


def evaluate(at: datetime | None = None) -> Evaluation | None:
    """Evaluate every connection's alarms once; None when another scheduler is evaluating.
    ``at`` sets the database clock for this evaluation (tests); the scheduler never passes it."""
    with store.connect() as conn:  # one transaction: the lock, the alerts and the claims
        if at is not None:
            conn.execute("SELECT set_config('feedsync.clock', %s, true)", (at.isoformat(),))
        got = store.fetch_one(conn, "SELECT pg_try_advisory_xact_lock(%s) AS got", (LOCK_KEY,))
        if got is None or not got["got"]:
            return None
        now_row = store.fetch_one(conn, "SELECT sync.clock() AS now")
        assert now_row is not None
        now: datetime = now_row["now"]
        # Deadlines count from when the connection was created or last enabled, and its schedule
        # last resumed; while its schedule is paused nothing is due.
        connections = store.fetch_all(
            conn,
            """SELECT c.name, c.config, greatest(c.created_at, c.enabled_at, s.enabled_at) AS armed,
                      coalesce(NOT s.enabled, false) AS paused
               FROM sync.connections c LEFT JOIN sync.schedules s ON s.connection_id = c.id
               WHERE c.deleted_at IS NULL AND c.enabled ORDER BY c.name""",
        )
        opened: list[int] = []
        # A deleted connection's conditions can no longer clear by themselves.
        resolved = conn.execute(
            """UPDATE sync.alerts SET state = 'RESOLVED', resolved_at = %s WHERE state <> 'RESOLVED'
               AND connection NOT IN (SELECT name FROM sync.connections WHERE deleted_at IS NULL)""",
            (now,),
        ).rowcount
        # Nothing is expected of a disabled connection: a feed it misses is no longer late.
        resolved += conn.execute(
            """UPDATE sync.alerts SET state = 'RESOLVED', resolved_at = %s WHERE state <> 'RESOLVED'
               AND kind = ANY(%s) AND connection IN
                   (SELECT name FROM sync.connections WHERE deleted_at IS NULL AND NOT enabled)""",
            (now, sorted(_DEADLINE_KINDS)),
        ).rowcount
        # Per destination, the alerts this round sends there: one digest each.
        outgoing: dict[tuple[str | None, tuple[str, ...]], tuple[Notify, list[int]]] = {}
        for c in connections:
            config = connection_from_json(c["config"])
            expect = config.expect or Expect()
            verdict = judge(conn, c["name"], expect, type(config).TAKES_FILES, c["armed"], now, paused=c["paused"])
            resolved += _resolve(conn, c["name"], verdict.resolve, now)
            for alert, new in _raise(conn, c["name"], verdict.findings, now):
                if new:
                    opened.append(int(alert["id"]))
                if config.notify is not None and (config.notify.webhook or config.notify.email):
                    conn.execute("UPDATE sync.alerts SET last_notified_at = %s WHERE id = %s", (now, alert["id"]))
                    channels = (config.notify.webhook, tuple(sorted(config.notify.email)))
                    outgoing.setdefault(channels, (config.notify, []))[1].append(int(alert["id"]))
        for channels_of, ids in outgoing.values():
            notifier.queue(conn, channels_of, ids, now)
        failpoints.hit("alarms.evaluated")  # the alerts written, claimed and queued, the lock held, not committed
    notified = sorted(i for _, ids in outgoing.values() for i in ids)
    return Evaluation(now, opened, resolved, notified)


def judge(
    conn: Any, name: str, expect: Expect, takes_files: bool, armed: datetime, now: datetime, *, paused: bool = False
) -> Verdict:
    """What holds for one connection at ``now``: alerts to raise and kinds to resolve. ``armed``:
    no deadline before it counts; ``paused``: the schedule is paused, so no feed is due."""
    verdict = Verdict()
    for part in (
        Verdict(resolve=set(_DEADLINE_KINDS)) if paused else _deadlines(conn, name, expect, takes_files, armed, now),
        _drift(conn, name, expect, takes_files, now),
        _failed_runs(conn, name, expect, now),
        _held(conn, name, expect),
        _dead_letters(conn, name, expect),
        _parked(conn, name, now),
    ):
        verdict.findings += part.findings
        verdict.resolve |= part.resolve
    return verdict


def _imported(conn: Any, name: str, files: bool, after: datetime, until: datetime) -> datetime | None:
    row = store.fetch_one(conn, _IMPORTED, {"c": name, "files": files, "after": after, "until": until})
    return None if row is None else row["finished_at"]


def _arrived(conn: Any, name: str, after: datetime, until: datetime) -> str | None:
    """What came for the connection in the window: files registered or runs started, as a phrase."""
    row = store.fetch_one(
        conn,
        """SELECT (SELECT count(*) FROM sync.feed_files f JOIN sync.connections c ON c.id = f.connection_id
                   WHERE c.name = %(c)s AND NOT f.preview AND f.registered_at > %(a)s AND f.registered_at <= %(u)s)
                  AS files,
                  (SELECT count(*) FROM sync.runs WHERE connection_name = %(c)s AND NOT dry_run
                   AND created_at > %(a)s AND created_at <= %(u)s) AS runs""",
        {"c": name, "a": after, "u": until},
    )
    assert row is not None
    if not row["files"] and not row["runs"]:
        return None
    return f"{row['files']} file(s) arrived and {row['runs']} run(s) started"


def _deadlines(conn: Any, name: str, e: Expect, files: bool, armed: datetime, now: datetime) -> Verdict:
    if e.period is not None:
        base_row = store.fetch_one(
            conn,
            """SELECT max(finished_at) AS at FROM sync.runs
               WHERE connection_name = %(c)s AND status IN ('completed', 'completed_with_errors') AND NOT dry_run
                 AND (NOT %(files)s OR coalesce((counts->>'files')::int, 0)
                                        > coalesce((counts->>'files_rejected')::int, 0))
                 AND finished_at <= %(now)s""",
            {"c": name, "files": files, "now": now},
        )
        last = (base_row or {}).get("at")
        base = armed if last is None else max(last, armed)  # an import before the connection was off is no base
        due = base + e.period + e.grace
        if now <= due:
            return Verdict(resolve=set(_DEADLINE_KINDS))
        since = f"no feed imported since {base:%Y-%m-%d %H:%M}Z (expected every {e.every}" + (
            f" + {e.grace_min} min grace)" if e.grace_min else ")"
        )
        came = _arrived(conn, name, base, now)
        if came:
            return Verdict([Finding(AlertKind.LATE, f"{name}: {since}; {came} since, not imported")])
        return Verdict([Finding(AlertKind.MISSING, f"{name}: {since}; nothing arrived since")])
    if e.by is None:
        return Verdict(resolve=set(_DEADLINE_KINDS))
    last_dl, next_dl = expectations.latest(e, now), expectations.following(e, now)
    on_time_next = next_dl is not None and _imported(conn, name, files, next_dl.opens, now)
    if last_dl is None or last_dl.at <= armed:  # no deadline since the connection was created
        return Verdict(resolve=set(_DEADLINE_KINDS) if on_time_next else set())
    if _imported(conn, name, files, last_dl.opens, last_dl.at):
        return Verdict(resolve=set(_DEADLINE_KINDS))
    due = last_dl.describe(e)
    late = _imported(conn, name, files, last_dl.at, now)
    if late is None:
        came = _arrived(conn, name, last_dl.opens, last_dl.at)
        if came:
            return Verdict([Finding(AlertKind.LATE, f"{name}: the feed due {due} was not imported by then ({came})")])
        return Verdict([Finding(AlertKind.MISSING, f"{name}: no feed arrived for {due}")])
    # The feed came late: that import answers this deadline, so only a run after it is on time for the next.
    if next_dl is not None and _imported(conn, name, files, max(next_dl.opens, late), now):
        return Verdict(resolve=set(_DEADLINE_KINDS))
    return Verdict([Finding(AlertKind.LATE, f"{name}: the feed due {due} was imported late, at {late:%H:%M}Z", False)])


def _drift(conn: Any, name: str, e: Expect, files: bool, now: datetime) -> Verdict:
    limit = e.drift_percent
    if limit is None:
        return Verdict(resolve={AlertKind.ROW_DRIFT})
    runs = store.fetch_all(
        conn,
        """SELECT id, coalesce((counts->>'read')::bigint, (counts->>'rows')::bigint, 0) AS n FROM sync.runs
           WHERE connection_name = %(c)s AND status IN ('completed', 'completed_with_errors') AND NOT dry_run
             AND (NOT %(files)s OR coalesce((counts->>'files')::int, 0) > coalesce((counts->>'files_rejected')::int, 0))
             AND finished_at <= %(now)s
           ORDER BY finished_at DESC, id DESC LIMIT %(k)s""",
        {"c": name, "files": files, "now": now, "k": e.drift_runs + 1},
    )
    if len(runs) <= e.drift_runs:  # too little history to know what is usual
        return Verdict(resolve={AlertKind.ROW_DRIFT})
    latest, usual = int(runs[0]["n"]), statistics.median(int(r["n"]) for r in runs[1:])
    drift = abs(latest - usual) * 100.0 / usual if usual else (0.0 if latest == 0 else float("inf"))
    if drift <= limit:
        return Verdict(resolve={AlertKind.ROW_DRIFT})
    way = "below" if latest < usual else "above"
    message = (
        f"{name}: run {runs[0]['id']} read {latest} rows, {drift:.0f}% {way} the median {usual:g} of the "
        f"{e.drift_runs} successful runs before it (max_row_drift {e.max_row_drift})"
    )
    return Verdict([Finding(AlertKind.ROW_DRIFT, message)])


def _failed_runs(conn: Any, name: str, e: Expect, now: datetime) -> Verdict:
    if not e.max_failed_runs:
        return Verdict(resolve={AlertKind.FAILED_RUNS})
    runs = store.fetch_all(
        conn,
        """SELECT id, status FROM sync.runs
           WHERE connection_name = %(c)s AND NOT dry_run AND finished_at <= %(now)s
             AND trigger <> 'undo'  -- an admin's undo (even refused) says nothing of the feed
             AND status IN ('completed', 'completed_with_errors', 'failed')
           ORDER BY finished_at DESC, id DESC LIMIT %(k)s""",
        {"c": name, "now": now, "k": e.max_failed_runs},
    )
    if len(runs) < e.max_failed_runs or any(r["status"] != "failed" for r in runs):
        return Verdict(resolve={AlertKind.FAILED_RUNS})
    ids = ", ".join(str(r["id"]) for r in reversed(runs))
    message = f"{name}: the last {len(runs)} runs failed (runs {ids}); see feedsync run {runs[0]['id']}"
    return Verdict([Finding(AlertKind.FAILED_RUNS, message)])


def _held(conn: Any, name: str, e: Expect) -> Verdict:
    if not e.held:
        return Verdict(resolve={AlertKind.HELD})
    held = store.fetch_all(
        conn,
        "SELECT id FROM sync.runs WHERE connection_name = %s AND status = 'awaiting_approval' ORDER BY id",
        (name,),
    )
    if not held:
        return Verdict(resolve={AlertKind.HELD})
    ids = ", ".join(str(r["id"]) for r in held)
    message = (
        f"{name}: run {ids} waits for approval: see its plan with feedsync run {held[0]['id']}, then approve or reject"
    )
    return Verdict([Finding(AlertKind.HELD, message)])


def _dead_letters(conn: Any, name: str, e: Expect) -> Verdict:
    if not e.dead_letters:
        return Verdict(resolve={AlertKind.DEAD_LETTER})
    row = store.fetch_one(
        conn,
        """SELECT count(*) AS n, max(d.id) AS latest FROM sync.dead_letters d JOIN sync.runs r ON r.id = d.run_id
           WHERE r.connection_name = %s AND d.replayed_at IS NULL""",
        (name,),
    )
    if row is None or not row["n"]:
        return Verdict(resolve={AlertKind.DEAD_LETTER})
    message = (
        f"{name}: {row['n']} dead letter(s) not replayed, the latest {row['latest']}: "
        f"see feedsync dlq show {row['latest']}, then feedsync dlq replay"
    )
    return Verdict([Finding(AlertKind.DEAD_LETTER, message)])


def _parked(conn: Any, name: str, now: datetime) -> Verdict:
    row = store.fetch_one(
        conn,
        "SELECT parked_until, parked_reason FROM sync.connections WHERE name = %s AND deleted_at IS NULL",
        (name,),
    )
    if row is None or row["parked_until"] is None or row["parked_until"] <= now:
        return Verdict(resolve={AlertKind.PARKED})
    message = (
        f"{name}: the API's daily quota is used up ({row['parked_reason']} answered HTTP 429); the connection is "
        f"parked until {row['parked_until']:%Y-%m-%d %H:%M}Z and scheduled runs skip it until then"
    )
    return Verdict([Finding(AlertKind.PARKED, message)])


def _resolve(conn: Any, name: str, kinds: set[AlertKind], now: datetime) -> int:
    if not kinds:
        return 0
    cur = conn.execute(
        """UPDATE sync.alerts SET state = 'RESOLVED', resolved_at = %s
           WHERE connection = %s AND kind = ANY(%s) AND state <> 'RESOLVED'""",
        (now, name, sorted(kinds)),
    )
    return int(cur.rowcount)


def _raise(conn: Any, name: str, findings: list[Finding], now: datetime) -> list[tuple[dict[str, Any], bool]]:
    """Open or repeat each finding's alert; returns those to send now, each with whether it is new."""
    due = []
    for f in findings:
        kinds = [f.kind] if f.repeat else sorted(_DEADLINE_KINDS)
        current = store.fetch_one(
            conn,
            """SELECT * FROM sync.alerts WHERE connection = %s AND kind = ANY(%s) AND state <> 'RESOLVED'
               ORDER BY id LIMIT 1 FOR UPDATE""",
            (name, kinds),
        )
        if current is None:
            # The unique index guards it too: an alert opened by anything else meanwhile wins.
            new = store.fetch_one(
                conn,
                """INSERT INTO sync.alerts (kind, connection, message, first_seen, last_seen)
                   VALUES (%(k)s, %(c)s, %(m)s, %(now)s, %(now)s)
                   ON CONFLICT (connection, kind) WHERE state <> 'RESOLVED' DO NOTHING RETURNING *""",
                {"k": f.kind, "c": name, "m": f.message, "now": now},
            )
            if new is not None:
                log.info("alert opened", alert_id=new["id"], kind=f.kind, connection=name)
                due.append((new, True))
            continue
        if not f.repeat:
            continue
        again = current["state"] == AlertState.NEW and (
            current["last_notified_at"] is None or current["last_notified_at"] <= now - RENOTIFY
        )
        row = store.fetch_one(
            conn,
            "UPDATE sync.alerts SET last_seen = greatest(last_seen, %s), message = %s WHERE id = %s RETURNING *",
            (now, f.message, current["id"]),
        )
        if again and row is not None:
            due.append((row, False))
    return due
