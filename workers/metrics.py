"""Prometheus metrics: what feedsync did, read from PostgreSQL and RabbitMQ at scrape time.

Two kinds of metric, for two kinds of truth:

- ``DatabaseCollector`` reads the history (``sync.run_totals``, ``runs``, ``feed_files``,
  ``dead_letters``, ``alerts``) and the broker's queue depths when a scrape comes, one cheap query
  each. It keeps no state, so every endpoint (each worker group, the web, the scheduler, on any
  host) serves the same numbers: aggregate them across instances with ``max``, never ``sum``.
- Stage durations are observed where the stage runs (workers/worker_metrics.py).

No label carries a person's data: connection names, kinds, stages, queues, actors and statuses only.
prometheus_client is imported inside functions: its multiprocess mode is chosen when it is first
imported, which must happen after a worker's environment is set.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import pika
import pika.exceptions
import structlog
from psycopg import sql

from schemas.settings import Settings, get_settings
from schemas.states import RunStatus
from workers import store
from workers.broker import ALL_QUEUES, rabbitmq_url
from workers.errors import safe_text

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

log = structlog.get_logger(__name__)

#: A scrape's statements are small; one that takes longer is cancelled and the scrape goes on without it.
SCRAPE_STATEMENT_MS = 5_000
SUCCESS_STATUSES = [RunStatus.COMPLETED.value, RunStatus.COMPLETED_WITH_ERRORS.value]

# Finished runs and their rows come from sync.run_totals (schemas/sql/045_run_totals.sql), kept by a
# trigger as runs finish: a few rows per connection, however long the history.
_RUNS = sql.SQL("""
    SELECT connection_name AS connection, kind, status, runs AS n FROM sync.run_totals WHERE runs > 0
""")
_ROWS = sql.SQL("""
    SELECT t.connection_name AS connection, t.kind, o.outcome, sum(o.n) AS n
    FROM sync.run_totals t
    CROSS JOIN LATERAL (VALUES ('read', t.rows_read), ('created', t.rows_created), ('updated', t.rows_updated),
                               ('unchanged', t.rows_unchanged), ('deactivated', t.rows_deactivated),
                               ('rejected', t.rows_rejected)) AS o (outcome, n)
    GROUP BY 1, 2, 3
""")
_RUNS_ACTIVE = sql.SQL("""
    SELECT connection_name AS connection, kind, status, count(*) AS n
    FROM sync.runs WHERE status IN ('queued', 'in_progress', 'awaiting_approval') GROUP BY 1, 2, 3
""")
_LAST_SUCCESS = sql.SQL("""
    SELECT connection_name AS connection, extract(epoch FROM max(last_finished_at)) AS at
    FROM sync.run_totals WHERE status = ANY(%(success)s) AND last_finished_at IS NOT NULL GROUP BY 1
""")
_FILES_WAITING = sql.SQL("""
    SELECT c.name AS connection, count(*) AS n
    FROM sync.feed_files f JOIN sync.connections c ON c.id = f.connection_id
    WHERE f.status = 'registered' AND f.removed_at IS NULL GROUP BY 1
""")
_DEAD_LETTERS = sql.SQL("""
    SELECT coalesce(r.connection_name, '') AS connection, d.actor_name AS actor, count(*) AS n
    FROM sync.dead_letters d LEFT JOIN sync.runs r ON r.id = d.run_id
    WHERE d.replayed_at IS NULL GROUP BY 1, 2
""")
_ALERTS = sql.SQL("""
    SELECT connection, kind, count(*) AS n FROM sync.alerts WHERE state <> 'RESOLVED' GROUP BY 1, 2
""")


def _family(kind: str, name: str, doc: str, labels: list[str], rows: Iterable[dict[str, Any]], value: str) -> Metric:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    family: CounterMetricFamily | GaugeMetricFamily
    if kind == "counter":
        family = CounterMetricFamily(name, doc, labels=labels)
    else:
        family = GaugeMetricFamily(name, doc, labels=labels)
    for r in rows:
        family.add_metric([str(r[label]) for label in labels], float(r[value]))
    return family


class DatabaseCollector:
    """feedsync's own metrics, read from PostgreSQL and RabbitMQ at each scrape (a prometheus_client
    custom collector: ``describe`` is empty so registering it runs no query)."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings

    @property
    def settings(self) -> Settings:
        return self._settings or get_settings()

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        up = GaugeMetricFamily(
            "feedsync_dependency_up", "1 when the scrape could read the dependency, else 0", labels=["dependency"]
        )
        try:
            families = self._from_database()
        except Exception as exc:
            log.warning("metrics: PostgreSQL could not be read", error=safe_text(exc))
            up.add_metric(["postgresql"], 0)
        else:
            up.add_metric(["postgresql"], 1)
            yield from families
        depths = self._queue_depths()
        up.add_metric(["rabbitmq"], 0 if depths is None else 1)
        if depths is not None:
            yield depths
        yield up

    def _from_database(self) -> list[Metric]:
        params = {"success": SUCCESS_STATUSES}
        with (
            store.statement_timeout(SCRAPE_STATEMENT_MS),
            store.connect(autocommit=True, application_name="feedsync-metrics") as conn,
        ):

            def rows(query: sql.SQL) -> list[dict[str, Any]]:
                return store.fetch_all(conn, query, params)

            return [
                _family(
                    "counter",
                    "feedsync_runs",
                    "Runs finished, by connection, kind and final status (a replayed run counts each time it finishes)",
                    ["connection", "kind", "status"],
                    rows(_RUNS),
                    "n",
                ),
                _family(
                    "counter",
                    "feedsync_rows",
                    "Rows of finished runs by outcome: read, created, updated, unchanged, deactivated, rejected "
                    "(the counts `feedsync history` shows; a kind's own counts are not rows)",
                    ["connection", "kind", "outcome"],
                    rows(_ROWS),
                    "n",
                ),
                _family(
                    "gauge",
                    "feedsync_runs_active",
                    "Runs queued, in progress or awaiting approval",
                    ["connection", "kind", "status"],
                    rows(_RUNS_ACTIVE),
                    "n",
                ),
                _family(
                    "gauge",
                    "feedsync_last_success_timestamp_seconds",
                    "When the connection's last successful run finished (Unix time)",
                    ["connection"],
                    rows(_LAST_SUCCESS),
                    "at",
                ),
                _family(
                    "gauge",
                    "feedsync_files_waiting",
                    "Files taken from the drop dir and waiting for a run",
                    ["connection"],
                    rows(_FILES_WAITING),
                    "n",
                ),
                _family(
                    "gauge",
                    "feedsync_dead_letters",
                    "Dead-lettered messages not replayed, by connection ('' when no run) and actor",
                    ["connection", "actor"],
                    rows(_DEAD_LETTERS),
                    "n",
                ),
                _family(
                    "gauge",
                    "feedsync_alerts_open",
                    "Open feed alerts (new or acknowledged) by connection and kind",
                    ["connection", "kind"],
                    rows(_ALERTS),
                    "n",
                ),
            ]

    def _queue_depths(self) -> Metric | None:
        """Ready messages per queue, its delay queue (.DQ) and its dead-letter queue (.XQ), by a
        passive declare (which creates nothing). None when the broker cannot be reached."""
        from prometheus_client.core import GaugeMetricFamily

        settings = self.settings
        family = GaugeMetricFamily("feedsync_queue_messages", "Messages ready in each RabbitMQ queue", labels=["queue"])
        if settings.is_stub:
            return family
        params = pika.URLParameters(rabbitmq_url(settings))
        params.connection_attempts, params.retry_delay = 1, 0
        params.socket_timeout = params.blocked_connection_timeout = 5
        try:
            conn = pika.BlockingConnection(params)
        except Exception as exc:
            log.warning("metrics: RabbitMQ could not be reached", error=safe_text(exc))
            return None
        try:
            channel = conn.channel()
            for queue in ALL_QUEUES:
                for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
                    try:
                        ok = channel.queue_declare(name, passive=True)
                    except pika.exceptions.ChannelClosedByBroker:  # not declared yet: nothing waits in it
                        channel = conn.channel()
                        continue
                    family.add_metric([name], ok.method.message_count)
        finally:
            conn.close()
        return family
