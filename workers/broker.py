"""Broker set-up, imported before any actor is declared.

``FEEDSYNC_BROKER_URL=stub://`` gives Dramatiq's StubBroker (one process, no RabbitMQ); anything
else is RabbitMQ with publisher confirms, a heartbeat and a blocked-connection timeout.
Producers publish typed messages with ``publish`` and never import actor modules. This module
builds the broker and imports nothing of the pipeline: a worker adds its own middleware (the
StageLedger, ``workers.stages.setup_worker_broker``) on top.
"""

from __future__ import annotations

import uuid
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import dramatiq
import dramatiq.broker
from dramatiq.broker import MessageProxy
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AgeLimit, CurrentMessage, Retries, ShutdownNotifications, TimeLimit

from schemas.messages import MESSAGE_TYPES, Message
from schemas.settings import Settings, get_settings
from workers.errors import safe_traceback, should_retry

ALL_QUEUES = sorted({m.QUEUE for m in MESSAGE_TYPES.values()})


def rabbitmq_url(settings: Settings) -> str:
    url = settings.broker_url.get_secret_value()
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.setdefault("heartbeat", str(settings.broker_heartbeat_s))
    query.setdefault("blocked_connection_timeout", str(settings.broker_blocked_timeout_s))
    query.setdefault("connection_attempts", "3")
    query.setdefault("retry_delay", "1")
    return urlunsplit(parts._replace(query=urlencode(query)))


def build_broker(settings: Settings | None = None) -> dramatiq.Broker:
    settings = settings or get_settings()
    middleware = [
        AgeLimit(),
        TimeLimit(time_limit=settings.stage_time_limit_ms),
        ShutdownNotifications(),
        CurrentMessage(),
        SafeRetries(
            max_retries=settings.max_attempts - 1,
            min_backoff=settings.min_backoff_ms,
            max_backoff=settings.max_backoff_ms,
            retry_when=_retry_when,
        ),
    ]
    broker: dramatiq.Broker
    if settings.is_stub:
        broker = StubBroker(middleware=middleware)
    else:
        broker = RabbitmqBroker(url=rabbitmq_url(settings), confirm_delivery=True, middleware=middleware)
    for queue in ALL_QUEUES:
        broker.declare_queue(queue)
    return broker


class SafeRetries(Retries):
    """Dramatiq's Retries, but the traceback it keeps in the message (published with the retry,
    kept in the dead-letter queue and archived in sync.dead_letters) is workers.errors'
    safe_traceback: a database error's own text quotes the row that broke it."""

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any | None = None,
        exception: BaseException | None = None,
    ) -> None:
        if exception is None:
            return
        safe = safe_traceback(exception, limit=30)
        # Retries publishes the retry itself, right after writing its own traceback into the message.
        super().after_process_message(  # type: ignore[no-untyped-call]  # dramatiq leaves this one unannotated
            cast(dramatiq.Broker, _TracebackScrubber(broker, safe)), message, result=result, exception=exception
        )
        if "traceback" in message.options:
            message.options["traceback"] = safe


class _TracebackScrubber:
    """The broker as Retries sees it: every message it enqueues carries the safe traceback."""

    def __init__(self, broker: dramatiq.Broker, traceback: str) -> None:
        self._broker, self._traceback = broker, traceback

    def enqueue(self, message: dramatiq.Message[Any], *, delay: int | None = None) -> dramatiq.Message[Any]:
        message.options["traceback"] = self._traceback
        return self._broker.enqueue(message, delay=delay)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._broker, name)


def _retry_when(retries: int, exc: BaseException) -> bool:
    # Read when deciding, so the retry limit and the ledger's dead-letter limit are always one number.
    return should_retry(retries, exc, get_settings().max_attempts)


def setup_broker(settings: Settings | None = None) -> dramatiq.Broker:
    broker = build_broker(settings)
    dramatiq.set_broker(broker)
    return broker


def current_broker() -> dramatiq.Broker:
    """The process's broker, set up from settings on first use. Never dramatiq.get_broker()'s own
    default, which would silently publish to a RabbitMQ on localhost's default vhost."""
    if dramatiq.broker.global_broker is None:
        return setup_broker()
    return dramatiq.broker.global_broker


def publish(msg: Message, *, message_id: str | None = None, options: dict[str, object] | None = None) -> str:
    """Publish a typed message (validated here) and return its message id. With RabbitMQ the call
    returns only once the broker has confirmed the message, and raises if it did not."""
    message: dramatiq.Message[Any] = dramatiq.Message(
        queue_name=msg.QUEUE,
        actor_name=msg.ACTOR,
        args=(),
        kwargs=type(msg).model_validate(msg.to_kwargs()).to_kwargs(),
        options=dict(options or {}),
        message_id=message_id or str(uuid.uuid4()),
    )
    current_broker().enqueue(message)
    return message.message_id
