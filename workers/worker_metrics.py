"""What a worker group observes itself: Dramatiq's message metrics and feedsync's stage durations.

Worker groups have several processes, so both are written in prometheus_client's multiprocess mode:
``feedsync worker`` and ``feedsync up`` give each group an empty folder of its own
(``PROMETHEUS_MULTIPROC_DIR``, and ``dramatiq_prom_db`` for Dramatiq's middleware) before its
processes start, and the group's metrics server (workers.metrics_server, a Dramatiq fork process)
reads them back at each scrape together with feedsync's database metrics.

Why Dramatiq's middleware is used but not its server: its exposition server binds 0.0.0.0:9191 from
``dramatiq_prom_*`` variables and serves only ``/metrics`` of the multiprocess files. The group needs
one port with Dramatiq's metrics, feedsync's (a custom collector, which multiprocess mode cannot hold),
``/healthz`` and ``/readyz``, bound where FEEDSYNC_METRICS_BIND says (loopback by default). So the
middleware's ``forks`` runs feedsync's server instead of Dramatiq's; the counters are Dramatiq's own.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware
from dramatiq.middleware.prometheus import Prometheus

from schemas.messages import MESSAGE_TYPES

if TYPE_CHECKING:
    from prometheus_client import Histogram

#: From a fraction of a second (a plan, a small chunk) to an hour (the stage time limit).
STAGE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


@lru_cache(maxsize=1)
def stage_histogram() -> Histogram:
    """Made on first use, in the worker process, once its multiprocess folder is set."""
    from prometheus_client import Histogram

    return Histogram(
        "feedsync_stage_duration_seconds",
        "Time a worker spent on one stage message, by stage and outcome (succeeded or failed)",
        ["stage", "outcome"],
        buckets=STAGE_BUCKETS,
    )


def _stage(actor_name: str) -> str:
    cls = MESSAGE_TYPES.get(actor_name)
    return (cls.STAGE if cls is not None else None) or actor_name


class StageTimer(Middleware):
    """Observes how long each stage message took. A message the ledger skips (a duplicate of
    finished work) is not a stage run and is not observed."""

    def __init__(self) -> None:
        self._started: dict[str, float] = {}

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        self._started[message.message_id] = time.monotonic()

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any | None = None,
        exception: BaseException | None = None,
    ) -> None:
        started = self._started.pop(message.message_id, None)
        if started is None:
            return
        outcome = "succeeded" if exception is None else "failed"
        stage_histogram().labels(_stage(message.actor_name), outcome).observe(time.monotonic() - started)

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        self._started.pop(message.message_id, None)


class MessageMetrics(Prometheus):
    """Dramatiq's Prometheus middleware (``dramatiq_messages_total`` and the rest), served by the
    group's own metrics server (workers.metrics_server) instead of Dramatiq's: one port per worker
    group for Dramatiq's metrics, feedsync's, /healthz and /readyz, bound where
    FEEDSYNC_METRICS_BIND says rather than on every interface.

    Its metrics exist once a worker process has booted (``after_process_boot``, which the Dramatiq
    CLI emits); a worker started in-process (the stub tier) never boots, and then it records nothing.
    """

    _booted = False

    @property
    def forks(self) -> list[Any]:
        from workers.metrics_server import serve_worker_group

        return [serve_worker_group]

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        super().after_process_boot(broker)  # type: ignore[no-untyped-call]  # dramatiq leaves it unannotated
        self._booted = True

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if self._booted:
            super().after_worker_shutdown(broker, worker)  # type: ignore[no-untyped-call]

    def after_nack(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        if self._booted:
            super().after_nack(broker, message)  # type: ignore[no-untyped-call]

    def after_enqueue(self, broker: dramatiq.Broker, message: dramatiq.Message[Any], delay: int | None) -> None:
        if self._booted:
            super().after_enqueue(broker, message, delay)  # type: ignore[no-untyped-call]

    def before_delay_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        if self._booted:
            super().before_delay_message(broker, message)  # type: ignore[no-untyped-call]

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        if self._booted:
            super().before_process_message(broker, message)  # type: ignore[no-untyped-call]

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any | None = None,
        exception: BaseException | None = None,
    ) -> None:
        if self._booted:
            super().after_process_message(broker, message, result=result, exception=exception)  # type: ignore[no-untyped-call]

    def after_skip_message(  # Dramatiq's counts a skipped message as processed, with the same hook
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any | None = None,
        exception: BaseException | None = None,
    ) -> None:
        self.after_process_message(broker, message, result=result, exception=exception)
