"""The transactional outbox: next-stage messages are written in the same transaction as the effect
that causes them and published after commit, so a crash can delay a message but never lose it or
send one for work that rolled back. ``sweep`` republishes rows left unsent."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import structlog
from psycopg import sql
from psycopg.types.json import Jsonb

from schemas.messages import Message
from workers import store
from workers.broker import publish
from workers.errors import safe_text

log = structlog.get_logger(__name__)


class OutboxBatch:
    """The messages one transaction adds; ``flush()`` after the commit."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    def add(
        self, conn: psycopg.Connection[Any], msg: Message, dedupe_key: str, *, message_id: str | None = None
    ) -> None:
        conn.execute(
            """INSERT INTO sync.outbox (dedupe_key, message_id, queue_name, actor_name, kwargs)
               VALUES (%s, %s, %s, %s, %s) ON CONFLICT (dedupe_key) DO NOTHING""",
            (dedupe_key, message_id or uuid.uuid4(), msg.QUEUE, msg.ACTOR, Jsonb(msg.to_kwargs())),
        )
        self.keys.append(dedupe_key)

    def flush(self) -> int:
        if not self.keys:
            return 0
        keys, self.keys = self.keys, []
        try:
            return _publish_rows(sql.SQL("dedupe_key = ANY(%s)"), (keys,))
        except Exception as exc:  # the sweeper publishes these later; the stage itself succeeded
            log.warning("outbox publish deferred to the sweeper", error=safe_text(exc), messages=len(keys))
            return 0


def _publish_rows(where: sql.Composable, params: tuple[Any, ...], limit: int = 1000) -> int:
    """Publish the unpublished rows ``where`` selects (one of this module's fixed conditions)."""
    from schemas.messages import MESSAGE_TYPES

    sent = 0
    with store.connect() as conn:
        rows = store.fetch_all(
            conn,
            sql.SQL(
                """SELECT id, message_id, actor_name, kwargs FROM sync.outbox
                   WHERE published_at IS NULL AND {}
                   ORDER BY id LIMIT {} FOR UPDATE SKIP LOCKED"""
            ).format(where, sql.Literal(int(limit))),
            params,
        )
        for row in rows:
            msg = MESSAGE_TYPES[row["actor_name"]].from_kwargs(row["kwargs"])
            # Same message id on every republish, so a duplicate is recognisable in the logs.
            publish(msg, message_id=str(row["message_id"]))
            conn.execute("UPDATE sync.outbox SET published_at = now() WHERE id = %s", (row["id"],))
            sent += 1
    return sent


def sweep(grace_s: float) -> int:
    """Publish outbox rows older than ``grace_s`` that nobody published (a crash between commit
    and publish, or the broker was down)."""
    return _publish_rows(sql.SQL("created_at < now() - make_interval(secs => %s)"), (grace_s,))
