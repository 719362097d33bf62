"""`feedsync web`'s /metrics, /healthz and /readyz: for Prometheus and the probes, so without sign-in."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from producers import feedgen
from producers.commands import apply_connections
from schemas.connections import load_connections_toml
from schemas.settings import get_settings
from tests.conftest import sql
from tests.notifying import free_port


def _samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, dict(s.labels), s.value) for f in text_string_to_metric_families(text) for s in f.samples]


def test_the_web_serves_run_metrics_without_a_sign_in_and_no_address_in_labels(console: TestClient) -> None:
    apply_connections(load_connections_toml(feedgen.DEMO_CONNECTIONS))
    sql(
        """INSERT INTO sync.runs (connection_id, connection_name, kind, trigger, status, config, finished_at, counts)
           SELECT id, name, kind, 'on_demand', 'completed', config, now(), '{"read": 7, "created": 7}'
           FROM sync.connections WHERE name = 'hr-users'"""
    )
    response = console.get("/metrics", follow_redirects=False)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    samples = _samples(response.text)
    assert ("feedsync_runs_total", {"connection": "hr-users", "kind": "users", "status": "completed"}, 1.0) in samples
    assert ("feedsync_rows_total", {"connection": "hr-users", "kind": "users", "outcome": "created"}, 7.0) in samples
    assert any(n == "feedsync_last_success_timestamp_seconds" for n, _, _ in samples)
    # The worker group's own metrics are served by the group, not here.
    assert not any(n.startswith(("dramatiq_", "feedsync_stage_duration")) for n, _, _ in samples)
    assert not [v for _, labels, _ in samples for v in labels.values() if "@" in v]


def test_the_web_is_alive_and_ready_with_its_services_up(console: TestClient) -> None:
    alive = console.get("/healthz", follow_redirects=False)
    assert alive.status_code == 200 and alive.json() == {"status": "alive"}
    ready = console.get("/readyz", follow_redirects=False)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"postgresql": "ok", "rabbitmq": "ok", "store": "ok"}


def test_the_web_is_not_ready_and_says_why_when_postgresql_is_down(
    console: TestClient, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    monkeypatch.setenv("FEEDSYNC_DATABASE_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/feedsync")
    get_settings.cache_clear()
    ready = console.get("/readyz", follow_redirects=False)
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "not ready" and body["failed"] == ["postgresql"]
    assert "127.0.0.1" in body["checks"]["postgresql"]
    assert console.get("/healthz").status_code == 200  # alive all the same: a restart would not help
    scraped = _samples(console.get("/metrics").text)
    assert ("feedsync_dependency_up", {"dependency": "postgresql"}, 0.0) in scraped
