"""Dead letters: list, show, replay and purge.

The archive in sync.dead_letters is the source of truth, so replay never depends on the broker's
dead-letter TTL. A replay resets the run and the stage (a fresh retry count), writes the message
to the outbox with its original message id in the same transaction as the audit row, publishes it
with confirms, and only then removes the dead copy from the broker's dead-letter queue.
"""

from __future__ import annotations

import getpass
import math
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import structlog

from schemas.messages import message_for_actor
from schemas.settings import Settings
from workers import store
from workers.runs import lifecycle
from workers.runs.outbox import OutboxBatch

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ReplayResult:
    dead_letter_id: int
    run_id: int | None
    actor: str
    outcome: str  # replayed | would_replay | skipped_succeeded | skipped_replayed | refused
    reason: str | None = None  # why it was refused


#: Set by the admin console for the request it serves, so what a console admin does is recorded
#: under their console name, as the CLI records the shell user.
_acting: ContextVar[str | None] = ContextVar("feedsync_acting_admin", default=None)


@contextmanager
def acting_as(identity: str) -> Iterator[None]:
    token = _acting.set(identity)
    try:
        yield
    finally:
        _acting.reset(token)


def admin_identity() -> str:
    acting = _acting.get()
    if acting is not None:
        return acting
    user = os.environ.get("SUDO_USER") or getpass.getuser()
    return f"{user}@{socket.gethostname()}"


def list_dead_letters(include_replayed: bool = False) -> list[dict[str, Any]]:
    with store.connect() as conn:
        return store.fetch_all(
            conn,
            """SELECT d.id, d.message_id, d.queue_name AS queue, d.actor_name AS actor, d.run_id,
                      r.connection_name AS connection, d.error, d.attempts,
                      round(EXTRACT(EPOCH FROM now() - d.created_at))::int AS age_s, d.created_at, d.replayed_at
               FROM sync.dead_letters d LEFT JOIN sync.runs r ON r.id = d.run_id
               WHERE %s OR d.replayed_at IS NULL ORDER BY d.id""",
            (include_replayed,),
        )


def missing(ids: list[int]) -> list[int]:
    """The ids named that are no dead letter."""
    if not ids:
        return []
    with store.connect() as conn:
        rows = store.fetch_all(conn, "SELECT id FROM sync.dead_letters WHERE id = ANY(%s)", (ids,))
    return sorted(set(ids) - {r["id"] for r in rows})


def show(dead_letter_id: int) -> dict[str, Any] | None:
    with store.connect() as conn:
        return store.fetch_one(conn, "SELECT * FROM sync.dead_letters WHERE id = %s", (dead_letter_id,))


def replay(
    settings: Settings,
    *,
    ids: list[int] | None = None,
    run_id: int | None = None,
    everything: bool = False,
    dry_run: bool = False,
    force: bool = False,
) -> list[ReplayResult]:
    with store.connect() as conn:
        rows = store.fetch_all(
            conn,
            """SELECT id FROM sync.dead_letters
               WHERE (%(all)s AND replayed_at IS NULL) OR id = ANY(%(ids)s)
                  OR (run_id = %(run)s AND replayed_at IS NULL)
               ORDER BY id""",
            {"all": everything, "ids": ids or [], "run": run_id},
        )
    results = [_replay_one(settings, int(r["id"]), dry_run=dry_run, force=force) for r in rows]
    return results


def _replay_one(settings: Settings, dl_id: int, *, dry_run: bool, force: bool) -> ReplayResult:
    outbox = OutboxBatch()
    with store.connect() as conn:
        dl = store.fetch_one(conn, "SELECT * FROM sync.dead_letters WHERE id = %s FOR UPDATE", (dl_id,))
        assert dl is not None
        msg = message_for_actor(dl["actor_name"], dl["message"]["kwargs"])
        if msg is None:
            return ReplayResult(dl_id, dl["run_id"], dl["actor_name"], "refused")
        stage = None
        if msg.STAGE is not None and msg.run is not None:
            stage = store.fetch_one(
                conn,
                "SELECT id, status FROM sync.stage_runs WHERE run_id = %s AND stage = %s AND part = %s FOR UPDATE",
                (msg.run, msg.STAGE, msg.stage_part()),
            )
        run = store.fetch_one(
            conn, "SELECT status, connection_id, connection_name FROM sync.runs WHERE id = %s FOR UPDATE", (msg.run,)
        )
        if dl["replayed_at"] is not None and not force:
            return ReplayResult(dl_id, msg.run, dl["actor_name"], "skipped_replayed")
        if stage is not None and stage["status"] == "succeeded" and not force:
            return ReplayResult(dl_id, msg.run, dl["actor_name"], "skipped_succeeded")
        if run is not None and run["status"] not in ("failed", "in_progress", "queued"):
            # A completed run is not replayed piecemeal; `feedsync rerun` runs it again as a whole.
            return ReplayResult(dl_id, msg.run, dl["actor_name"], "refused", f"run {msg.run} is {run['status']}")
        if run is not None and run["status"] == "failed":
            # The connection's next run started when this one failed: going on with this one now
            # would apply two runs at once, or older files over newer.
            later = store.fetch_one(
                conn,
                """SELECT id, status FROM sync.runs WHERE connection_id = %s AND id > %s AND started_at IS NOT NULL
                     AND NOT dry_run ORDER BY id LIMIT 1""",
                (run["connection_id"], msg.run),
            )
            if later is not None:
                return ReplayResult(
                    dl_id,
                    msg.run,
                    dl["actor_name"],
                    "refused",
                    f"run {later['id']} of {run['connection_name']} started after run {msg.run} failed "
                    f"(it is {later['status']}); replaying would apply older files over newer: drop them again",
                )
        if dry_run:
            return ReplayResult(dl_id, msg.run, dl["actor_name"], "would_replay")
        if stage is not None:
            conn.execute(
                "UPDATE sync.stage_runs SET status = 'retrying', attempts = 0, error = NULL, finished_at = NULL "
                "WHERE id = %s",
                (stage["id"],),
            )
        if msg.run is not None:
            lifecycle.reopen_for_replay(conn, msg.run)
        replay_row = store.fetch_one(
            conn,
            """INSERT INTO sync.replays (dead_letter_id, run_id, message_id, actor_name, replayed_by, forced)
               VALUES (%s, %s, %s, %s, %s, %s) RETURNING id""",
            (dl_id, msg.run, dl["message_id"], dl["actor_name"], admin_identity(), force),
        )
        assert replay_row is not None
        conn.execute("UPDATE sync.dead_letters SET replayed_at = clock_timestamp() WHERE id = %s", (dl_id,))
        # Same message id as the dead copy; a fresh message, so Dramatiq's retry count starts at zero.
        outbox.add(conn, msg, f"replay:{replay_row['id']}", message_id=dl["message_id"])
    published = outbox.flush()
    if published and not settings.is_stub:
        _remove_dead_copy(settings, dl["queue_name"], dl["message_id"])
    log.info(
        "dead letter replayed", dead_letter_id=dl_id, run_id=msg.run, actor=dl["actor_name"], published=bool(published)
    )
    return ReplayResult(dl_id, msg.run, dl["actor_name"], "replayed")


@dataclass(frozen=True)
class PurgeResult:
    purged: int
    kept_unreplayed: int  # matched, but not replayed: kept unless include_unreplayed
    missing: list[int]  # ids named that are no dead letter


def purge(
    *, ids: list[int] | None = None, older_than_days: float | None = None, include_unreplayed: bool = False
) -> PurgeResult:
    """Delete archived dead letters named by id or older than a number of days. A dead letter never
    replayed is the only record of work that did not happen, so it goes only with
    ``include_unreplayed``."""
    if older_than_days is not None and not (math.isfinite(older_than_days) and older_than_days >= 0):
        raise ValueError("older_than_days must be a finite number of days, 0 or more")
    params = {"ids": ids or [], "days": older_than_days, "all": include_unreplayed}
    with store.connect() as conn:
        found = {
            r["id"] for r in store.fetch_all(conn, "SELECT id FROM sync.dead_letters WHERE id = ANY(%(ids)s)", params)
        }
        if set(ids or []) - found:  # a mistyped id purges nothing, not the others named with it
            return PurgeResult(0, 0, sorted(set(ids or []) - found))
        rows = store.fetch_all(
            conn,
            """DELETE FROM sync.dead_letters
               WHERE (id = ANY(%(ids)s) OR (%(days)s::float IS NOT NULL
                                            AND created_at < now() - make_interval(secs => %(days)s * 86400)))
                 AND (%(all)s OR replayed_at IS NOT NULL)
               RETURNING id""",
            params,
        )
        kept = store.fetch_one(
            conn,
            """SELECT count(*) AS n FROM sync.dead_letters
               WHERE id = ANY(%(ids)s) OR (%(days)s::float IS NOT NULL
                                           AND created_at < now() - make_interval(secs => %(days)s * 86400))""",
            params,
        )
    assert kept is not None
    return PurgeResult(len(rows), int(kept["n"]), [])


def _remove_dead_copy(settings: Settings, queue: str, message_id: str) -> int:
    """Ack the dead copy in <queue>.XQ once its replacement is confirmed; requeue the others."""
    import json

    import pika

    from workers.broker import rabbitmq_url

    removed = 0
    conn = pika.BlockingConnection(pika.URLParameters(rabbitmq_url(settings)))
    try:
        ch = conn.channel()
        xq = f"{queue}.XQ"
        others = []
        depth = ch.queue_declare(xq, passive=True).method.message_count
        for _ in range(depth):
            method, _props, body = ch.basic_get(xq, auto_ack=False)
            if method is None:
                break
            try:
                mid = json.loads(body).get("message_id")
            except ValueError:
                mid = None
            if mid == message_id:
                ch.basic_ack(method.delivery_tag)
                removed += 1
            else:
                others.append(method.delivery_tag)
        for tag in others:
            ch.basic_nack(tag, requeue=True)
    except Exception as exc:  # the archive is the source of truth; a stale copy in the XQ only expires
        log.warning("could not remove the dead copy from the broker", queue=queue, error=str(exc))
    finally:
        conn.close()
    return removed
