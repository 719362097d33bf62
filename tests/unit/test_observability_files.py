"""deploy/observability: the alert rules pass promtool's checks and its rule unit tests, and every
dashboard panel is valid PromQL on feedsync's and Dramatiq's metrics (which of them /metrics really
serves is checked against a live worker group in tests/integration/test_metrics_endpoints.py)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.scraping import ALERTS, DASHBOARD, OBSERVABILITY, alert_exprs, dashboard_exprs, metric_names


def promtool(*args: str, cwd: Path = OBSERVABILITY) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail("promtool is missing: deploy/ensure-test-tools.sh installs Debian's prometheus package")
    return subprocess.run([tool, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_the_alert_rules_pass_promtools_check() -> None:
    checked = promtool("check", "rules", ALERTS.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(alert_exprs())} rules found" in checked.stdout


def test_each_alert_fires_on_its_condition_and_not_before_in_promtools_rule_tests() -> None:
    tested = promtool("test", "rules", "alerts.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    covered = set(re.findall(r"alertname: (\w+)", (OBSERVABILITY / "alerts.test.yml").read_text()))
    assert covered == {name for name, _ in alert_exprs()}, "every alert has a rule test"


def test_every_dashboard_panel_is_valid_promql(tmp_path: Path) -> None:
    exprs = dashboard_exprs()
    assert len(exprs) >= 10
    # promtool checks PromQL inside rule files: each panel's query becomes a recording rule.
    recorded = [{"record": f"dashboard:panel_{i}", "expr": e} for i, (_, e) in enumerate(exprs)]
    rules = {"groups": [{"name": "dashboard", "rules": recorded}]}
    (tmp_path / "dashboard-rules.yml").write_text(json.dumps(rules))  # JSON is YAML
    checked = promtool("check", "rules", "dashboard-rules.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_dashboard_shows_what_ops_asked_for_on_our_metrics_only() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for topic in ("throughput", "latency", "queue depth", "failures", "dead letters", "alerts by connection"):
        assert topic in titles
    for title, expr in [*dashboard_exprs(), *alert_exprs()]:
        names = metric_names(expr)
        assert names, f"{title}: no metric in {expr!r}"
        assert all(n.startswith(("feedsync_", "dramatiq_")) for n in names), (title, names)


def test_metric_names_are_read_from_promql_as_prometheus_would() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, stage) (rate(feedsync_stage_duration_seconds_bucket{stage="parse"}[5m])))'
        " / on (stage) group_left max without (instance) (feedsync_files_waiting offset 1h) > bool 3"
    )
    assert metric_names(expr) == {"feedsync_stage_duration_seconds_bucket", "feedsync_files_waiting"}
    since = 'time() - max by (connection) (feedsync_last_success_timestamp_seconds{connection=~"a|b"})'
    assert metric_names(since) == {"feedsync_last_success_timestamp_seconds"}
