"""What ops scrape: a worker group's /metrics, /healthz and /readyz on FEEDSYNC_METRICS_BIND after a real
import over RabbitMQ, the scheduler's, and /readyz saying what is down."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from producers import feedgen, registry
from producers.commands import apply_connections
from schemas.connections import load_connections_toml
from tests.conftest import sql
from tests.notifying import free_port
from tests.scraping import Scrape, alert_exprs, dashboard_exprs, metric_names, scrape
from tests.services import wait_run
from tests.waiting import poll_until

pytestmark = pytest.mark.integration

CONNECTION = "hr-users"
STAGES = ("plan", "parse", "transform", "load", "finalize")


def _leftovers(run_id: int) -> None:
    """What the history holds besides the run: a file waiting, a dead letter not replayed, an open alert."""
    (conn_id,) = sql("SELECT id FROM sync.connections WHERE name = %s", (CONNECTION,))[0]
    sql(
        """INSERT INTO sync.feed_files (connection_id, original_path, stored_path, sha256, size_bytes)
           VALUES (%s, 'import/user/internal/later.csv', 'later.csv', repeat('a', 64), 10)""",
        (conn_id,),
    )
    sql(
        """INSERT INTO sync.dead_letters (message_id, queue_name, actor_name, run_id, message, error, attempts)
           VALUES ('m-1', 'parse', 'parse_file', %s, '{}', 'RuntimeError: boom', 5)""",
        (run_id,),
    )
    sql(
        """INSERT INTO sync.alerts (kind, connection, message, first_seen, last_seen)
           VALUES ('late', %s, 'nothing imported by 06:00', now(), now())""",
        (CONNECTION,),
    )


def _stages_observed(url: str) -> Scrape | None:
    seen = scrape(url)
    done = all(
        (seen.value("feedsync_stage_duration_seconds_count", stage=s, outcome="succeeded") or 0) >= 1 for s in STAGES
    )
    return seen if done else None


def test_a_worker_group_serves_message_stage_and_run_metrics_after_an_import(
    settings: Any, rabbit_broker: Any, rabbit_env: dict[str, str], start: Any
) -> None:
    apply_connections(load_connections_toml(feedgen.DEMO_CONNECTIONS))
    bind = f"127.0.0.1:{free_port()}"
    worker = start("worker", "--processes", "2", "--threads", "2", env={**rabbit_env, "FEEDSYNC_METRICS_BIND": bind})
    feedgen.generate_users(settings.drop_dir / "import/user/internal/people.csv", 500, bad_rows=2)
    registry.scan(settings)
    run = wait_run()
    assert run["status"] == "completed_with_errors", worker.output()[-2000:]
    _leftovers(run["run_id"])

    url = f"http://{bind}/metrics"
    worker.wait_for("serving metrics", timeout_s=60)  # a fork process of the group, started once it has booted
    m = poll_until(lambda: _stages_observed(url), timeout=30, interval=0.3, message=lambda: worker.output()[-2000:])
    assert m.value("feedsync_runs_total", connection=CONNECTION, kind="users", status="completed_with_errors") == 1
    assert m.value("feedsync_rows_total", connection=CONNECTION, outcome="read") == 500
    assert m.value("feedsync_rows_total", connection=CONNECTION, outcome="created") == 498
    assert m.value("feedsync_rows_total", connection=CONNECTION, outcome="rejected") == 2
    last = m.value("feedsync_last_success_timestamp_seconds", connection=CONNECTION)
    assert last is not None and abs(last - time.time()) < 600
    assert m.value("feedsync_files_waiting", connection=CONNECTION) == 1
    assert m.value("feedsync_dead_letters", connection=CONNECTION, actor="parse_file") == 1
    assert m.value("feedsync_alerts_open", connection=CONNECTION, kind="late") == 1
    assert m.value("feedsync_runs_active", connection=CONNECTION) is None  # nothing queued or running
    assert m.value("feedsync_queue_messages", queue="feedsync.parse") == 0
    assert m.value("feedsync_queue_messages", queue="feedsync.parse.XQ") == 0
    assert m.value("feedsync_dependency_up", dependency="postgresql") == 1
    assert m.value("feedsync_dependency_up", dependency="rabbitmq") == 1
    # Dramatiq's message metrics, from the group's processes.
    assert (m.value("dramatiq_messages_total", actor_name="transform_chunk") or 0) >= 1
    assert m.families["feedsync_stage_duration_seconds"] == "histogram"
    assert m.families["feedsync_runs"] == "counter"
    # No person's data in any label: the feed's 500 e-mail addresses are nowhere.
    assert not [v for v in m.label_values() if "@" in v]

    # The dashboard and the alert rules ask only for what this endpoint serves.
    for title, expr in [*dashboard_exprs(), *alert_exprs()]:
        assert metric_names(expr) <= m.names(), (title, metric_names(expr) - m.names())

    assert httpx.get(f"http://{bind}/healthz").status_code == 200
    ready = httpx.get(f"http://{bind}/readyz", timeout=30)
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ready", "checks": {"postgresql": "ok", "rabbitmq": "ok", "store": "ok"}}
    assert httpx.get(f"http://{bind}/nothing").status_code == 404


def test_the_scheduler_serves_the_run_metrics_where_its_bind_says(
    settings: Any, rabbit_env: dict[str, str], start: Any
) -> None:
    apply_connections(load_connections_toml(feedgen.DEMO_CONNECTIONS))
    sql(
        """INSERT INTO sync.runs (connection_id, connection_name, kind, trigger, status, config, finished_at)
           SELECT id, name, kind, 'on_demand', 'failed', config, now() FROM sync.connections WHERE name = %s""",
        (CONNECTION,),
    )
    bind = f"127.0.0.1:{free_port()}"
    scheduler = start("scheduler", env={**rabbit_env, "FEEDSYNC_SCHEDULER_METRICS_BIND": bind})
    scheduler.wait_for("serving metrics")
    m = scrape(f"http://{bind}/metrics")
    assert m.value("feedsync_runs_total", connection=CONNECTION, status="failed") == 1
    assert m.value("feedsync_last_success_timestamp_seconds", connection=CONNECTION) is None  # never succeeded
    assert "feedsync_stage_duration_seconds" not in m.families  # observed by workers, served by them
    assert httpx.get(f"http://{bind}/readyz", timeout=30).status_code == 200


def test_readyz_is_503_naming_postgresql_when_its_port_is_closed(
    settings: Any, rabbit_env: dict[str, str], start: Any
) -> None:
    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/feedsync"
    bind = f"127.0.0.1:{free_port()}"
    scheduler = start(
        "scheduler", env={**rabbit_env, "FEEDSYNC_DATABASE_URL": closed, "FEEDSYNC_SCHEDULER_METRICS_BIND": bind}
    )
    scheduler.wait_for("serving metrics")
    assert httpx.get(f"http://{bind}/healthz").status_code == 200  # alive: nothing to restart
    ready = httpx.get(f"http://{bind}/readyz", timeout=30)
    assert ready.status_code == 503
    body = json.loads(ready.text)
    assert body["status"] == "not ready" and body["failed"] == ["postgresql"]
    assert "Connection refused" in body["checks"]["postgresql"] or "connect" in body["checks"]["postgresql"]
    assert body["checks"]["rabbitmq"] == "ok" and body["checks"]["store"] == "ok"
    m = scrape(f"http://{bind}/metrics")  # still served, saying what it could not read
    assert m.value("feedsync_dependency_up", dependency="postgresql") == 0
    assert m.value("feedsync_runs_total") is None


def test_readyz_is_503_naming_the_store_when_it_cannot_take_a_file(
    settings: Any, rabbit_env: dict[str, str], start: Any
) -> None:
    bind = f"127.0.0.1:{free_port()}"
    (settings.drop_dir.parent / "a-file").write_text("not a folder")
    missing = settings.drop_dir.parent / "a-file" / "store"  # as a volume mounted as a file would be
    scheduler = start(
        "scheduler", env={**rabbit_env, "FEEDSYNC_STORE_DIR": str(missing), "FEEDSYNC_SCHEDULER_METRICS_BIND": bind}
    )
    scheduler.wait_for("serving metrics")
    ready = httpx.get(f"http://{bind}/readyz", timeout=30)
    assert ready.status_code == 503
    assert ready.json()["failed"] == ["store"]
    assert str(missing) in ready.json()["checks"]["store"]
