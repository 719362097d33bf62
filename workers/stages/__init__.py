"""One module per stage. ``stage_actor`` turns a handler of a typed message into a Dramatiq actor
on that message's queue; the message is validated again when received."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import dramatiq
import dramatiq.broker
from dramatiq.middleware import Retries

from schemas.messages import Message
from schemas.settings import Settings
from workers.broker import setup_broker
from workers.runs.ledger import StageLedger
from workers.worker_metrics import MessageMetrics, StageTimer

M = TypeVar("M", bound=Message)


def setup_worker_broker(settings: Settings | None = None) -> dramatiq.Broker:
    """The process's broker with what a worker adds: the metrics, and the StageLedger, before
    Retries in the list so its after_process_message runs after Retries has decided whether the
    message failed for good (Dramatiq runs "after" hooks in reverse order)."""
    broker = setup_broker(settings)
    broker.add_middleware(StageLedger(), before=Retries)
    # Message metrics and stage durations, served by the group's metrics server (workers/metrics_server.py).
    broker.add_middleware(MessageMetrics())
    broker.add_middleware(StageTimer())
    return broker


def stage_actor(cls: type[M], **options: Any) -> Callable[[Callable[[M], None]], dramatiq.Actor[..., None]]:
    if dramatiq.broker.global_broker is None:  # imported on its own (a test, a script): use settings
        setup_worker_broker()

    def decorate(handler: Callable[[M], None]) -> dramatiq.Actor[..., None]:
        def receive(**kwargs: Any) -> None:
            handler(cls.model_validate(kwargs))

        receive.__name__ = receive.__qualname__ = cls.ACTOR
        receive.__doc__ = handler.__doc__
        actor: dramatiq.Actor[..., None] = dramatiq.actor(actor_name=cls.ACTOR, queue_name=cls.QUEUE, **options)(
            receive
        )
        return actor

    return decorate
