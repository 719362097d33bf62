"""Stage bookkeeping, kept apart from what the stages do to the feed.

``StageLedger`` (Dramatiq middleware) records that a message is running and counts the attempt
in PostgreSQL *before* the actor starts: a duplicate of finished work is skipped, and a message
that keeps killing its worker is dead-lettered after ``max_attempts`` instead of being redelivered
forever. After the actor, it records failures by kind (workers.errors).

It knows whether a message ran, nothing of run policy: what a run refuses, and what a failed
stage does to its run, it asks the run package through ``workers.runs.hook``. A stage's own
transaction is ``workers.runs.stage.run_stage``.
"""

from __future__ import annotations

import threading
from typing import Any

import dramatiq
import psycopg
import structlog
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware, SkipMessage
from psycopg.types.json import Jsonb

from schemas.messages import Message, message_for_actor
from schemas.settings import get_settings
from schemas.states import StageStatus
from workers import hosts, notify, store
from workers.errors import Kind, classify, safe_text
from workers.files.objects import file_store
from workers.runs import hook
from workers.runs.outbox import OutboxBatch

log = structlog.get_logger(__name__)


class StageLedger(Middleware):
    def __init__(self) -> None:
        # Quarantine connections of the messages this process is running alone, by message id.
        self._held: dict[str, psycopg.Connection[Any]] = {}
        self._held_lock = threading.Lock()
        self._heartbeat: hosts.Heartbeat | None = None

    # Resources open at worker boot, never at import or per message.
    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        settings = get_settings()
        store.open_pool(settings, max_size=max(4, worker.worker_threads + 2))
        # One heartbeat per process: a second boot of this middleware (a worker restarted in the same
        # process) must not leave the first one's thread beating under a stale identity.
        if self._heartbeat is not None:
            self._heartbeat.stop()
        self._heartbeat = hosts.Heartbeat(settings, file_store(settings).describe())
        self._heartbeat.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        heartbeat = self._heartbeat
        if heartbeat is not None:
            heartbeat.stop()
            self._heartbeat = None
        store.close_pool()

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(message_id=message.message_id, actor=message.actor_name)
        try:
            msg = message_for_actor(message.actor_name, message.kwargs)
        except ValueError as exc:
            log.error("message does not match its schema; dead-lettering it", error=safe_text(exc))
            message.fail()
            raise SkipMessage from None
        if msg is None or msg.STAGE is None or msg.run is None:
            return
        structlog.contextvars.bind_contextvars(run_id=msg.run, stage=msg.STAGE, part=msg.stage_part() or None)
        me = hosts.identity(get_settings())
        key = {
            "run": msg.run,
            "stage": msg.STAGE,
            "part": msg.stage_part(),
            "mid": message.message_id,
            "group": me.worker_group,
            "host": me.host,
            "pid": me.pid,
        }
        with store.connect() as conn:
            prior = store.fetch_one(
                conn,
                "SELECT status FROM sync.stage_runs WHERE run_id = %(run)s AND stage = %(stage)s AND part = %(part)s",
                key,
            )
        if prior is not None and prior["status"] == StageStatus.RUNNING:
            # The last attempt never finished: its worker died, perhaps because of another message it
            # held at the time. Suspects run one at a time, and the attempt is charged only once this
            # one holds the lock, so each crash counts against the message that was running alone.
            self._quarantine(message)
        try:
            verdict = self._register(message, msg, key)
        except BaseException:
            self._release(message)
            raise
        if verdict != "run":
            self._release(message)
            if verdict == "dead":
                message.fail()
                hook.after_failure(msg.run)
            raise SkipMessage

    def _register(self, message: MessageProxy, msg: Message, key: dict[str, Any]) -> str:
        """Count the attempt and decide: 'run', 'skip' or 'dead'. Commits before returning."""
        outbox = OutboxBatch()
        try:
            with store.connect() as conn:
                return self._count_attempt(conn, message, msg, key, outbox)
        finally:
            outbox.flush()

    def _count_attempt(
        self,
        conn: psycopg.Connection[Any],
        message: MessageProxy,
        msg: Message,
        key: dict[str, Any],
        outbox: OutboxBatch,
    ) -> str:
        refused = hook.refuses(conn, msg.run or 0)
        if refused is not None:
            log.info(f"{refused}; message skipped")
            return "skip"
        row = store.fetch_one(
            conn,
            """INSERT INTO sync.stage_runs AS s (run_id, stage, part, status, attempts, message_id,
                                                 worker_group, host, pid)
               VALUES (%(run)s, %(stage)s, %(part)s, 'running', 1, %(mid)s, %(group)s, %(host)s, %(pid)s)
               ON CONFLICT (run_id, stage, part) DO UPDATE SET
                 attempts = s.attempts + CASE WHEN s.status IN ('running', 'retrying') THEN 1 ELSE 0 END,
                 status = CASE WHEN s.status = 'retrying' THEN 'running' ELSE s.status END,
                 message_id = EXCLUDED.message_id,
                 -- who runs this attempt (a finished stage keeps who finished it)
                 worker_group = CASE WHEN s.status = 'succeeded' THEN s.worker_group ELSE EXCLUDED.worker_group END,
                 host = CASE WHEN s.status = 'succeeded' THEN s.host ELSE EXCLUDED.host END,
                 pid = CASE WHEN s.status = 'succeeded' THEN s.pid ELSE EXCLUDED.pid END,
                 started_at = CASE WHEN s.status = 'retrying' THEN clock_timestamp() ELSE s.started_at END
               RETURNING s.id, s.status, s.attempts,
                 (SELECT connection_name FROM sync.runs WHERE id = %(run)s) AS connection""",
            key,
        )
        assert row is not None
        structlog.contextvars.bind_contextvars(connection=row["connection"])
        if row["status"] == StageStatus.SUCCEEDED:
            log.info("duplicate of a finished stage; skipped", attempts=row["attempts"])
            return "skip"
        if row["status"] in (StageStatus.FAILED, StageStatus.DEAD_LETTERED):
            log.info("stage already failed; replay it with `feedsync dlq replay`", status=row["status"])
            return "skip"
        if row["attempts"] > get_settings().max_attempts:
            # The earlier attempts never reached after_process_message: the worker died.
            error = (
                f"stage {msg.STAGE} was attempted {row['attempts'] - 1} times and its worker never "
                "finished (killed, out of memory or crashed); dead-lettered"
            )
            self._dead_letter(conn, message, msg, row["id"], error, row["attempts"] - 1, outbox)
            return "dead"
        return "run"

    def _quarantine(self, message: MessageProxy) -> None:
        conn = psycopg.connect(
            get_settings().database_url.get_secret_value(), autocommit=True, application_name="feedsync-quarantine"
        )
        log.warning("redelivered after an unfinished attempt; running it alone")
        conn.execute("SELECT pg_advisory_lock(7302)")
        with self._held_lock:
            self._held[message.message_id] = conn

    def _release(self, message: MessageProxy) -> None:
        with self._held_lock:
            conn = self._held.pop(message.message_id, None)
        if conn is not None:
            conn.close()  # closing the session releases its advisory lock

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        try:
            if exception is None:
                return
            msg = message_for_actor(message.actor_name, message.kwargs)
            if msg is None or msg.STAGE is None or msg.run is None:
                return
            kind = classify(exception)
            error = safe_text(exception)
            failed_run = False
            outbox = OutboxBatch()
            with store.connect() as conn:
                stage = store.fetch_one(
                    conn,
                    "SELECT id, attempts FROM sync.stage_runs WHERE run_id = %s AND stage = %s AND part = %s",
                    (msg.run, msg.STAGE, msg.stage_part()),
                )
                if stage is None:
                    return
                if kind is Kind.TERMINAL:
                    conn.execute(
                        "UPDATE sync.stage_runs SET status = 'failed', error = %s, finished_at = clock_timestamp() "
                        "WHERE id = %s AND status <> 'succeeded'",
                        (error, stage["id"]),
                    )
                    failed_run = hook.stage_failed(conn, msg.run, error, outbox)
                    log.warning("stage failed; run failed", error=error)
                elif message.failed:
                    failed_run = self._dead_letter(conn, message, msg, stage["id"], error, stage["attempts"], outbox)
                else:
                    conn.execute(
                        "UPDATE sync.stage_runs SET status = 'retrying', error = %s "
                        "WHERE id = %s AND status = 'running'",
                        (error, stage["id"]),
                    )
                    log.warning("stage will be retried", error=error, kind=kind.value, attempts=stage["attempts"])
            outbox.flush()
            if failed_run:
                hook.after_failure(msg.run)
        finally:
            self._release(message)
            structlog.contextvars.clear_contextvars()

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        self._release(message)
        structlog.contextvars.clear_contextvars()

    def _dead_letter(
        self,
        conn: psycopg.Connection[Any],
        message: MessageProxy,
        msg: Message,
        stage_id: int,
        error: str,
        attempts: int,
        outbox: OutboxBatch,
    ) -> bool:
        conn.execute(
            "UPDATE sync.stage_runs SET status = 'dead_lettered', error = %s, finished_at = clock_timestamp() "
            "WHERE id = %s AND status <> 'succeeded'",
            (error, stage_id),
        )
        conn.execute(
            """INSERT INTO sync.dead_letters (message_id, queue_name, actor_name, run_id, message, error, attempts)
               VALUES (%s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (message_id) DO UPDATE SET error = EXCLUDED.error, attempts = EXCLUDED.attempts,
                 created_at = clock_timestamp(), replayed_at = NULL""",
            (
                message.message_id,
                message.queue_name.removesuffix(".DQ"),
                message.actor_name,
                msg.run,
                Jsonb(message.asdict()),
                error,
                attempts,
            ),
        )
        failed = hook.stage_failed(
            conn, msg.run or 0, f"stage {msg.STAGE} dead-lettered after {attempts} attempts: {error}", outbox
        )
        log.error("message dead-lettered", error=error, attempts=attempts)
        return failed


def _warn(run_id: int) -> None:
    """A run a stage failure ended sends its connection's warning, as finalize does for the others;
    once the failure has committed, and never a reason for the message to fail again."""
    try:
        notify.run_finished(run_id)
    except Exception as exc:
        log.error("could not send the warning of a failed run", error=safe_text(exc))


__all__ = ["StageLedger"]
