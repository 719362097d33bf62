"""Stage durations are observed where the stage runs, by stage and outcome; Dramatiq's message metrics
stay silent in a worker that never booted as a process (the stub tier) instead of breaking it."""

from __future__ import annotations

from prometheus_client import REGISTRY

from tests.stubpipeline import HEADER, Pipeline
from workers.metrics import DatabaseCollector

FEED = HEADER + "boss@x.com,Bea,Boss,,Board\nann@x.com,Ann,Anders,boss@x.com,Sales\n"


def _count(stage: str, outcome: str = "succeeded") -> float:
    labels = {"stage": stage, "outcome": outcome}
    return REGISTRY.get_sample_value("feedsync_stage_duration_seconds_count", labels) or 0.0


def test_each_stage_of_a_run_is_timed_once_by_stage_and_outcome(pipeline: Pipeline) -> None:
    before = {s: _count(s) for s in ("plan", "parse", "transform", "load", "finalize")}
    pipeline.import_files(("import/user/internal/users.csv", FEED))
    after = {s: _count(s) for s in before}
    assert {s: after[s] - before[s] for s in before} == {s: 1.0 for s in before}
    seconds = REGISTRY.get_sample_value(
        "feedsync_stage_duration_seconds_sum", {"stage": "load", "outcome": "succeeded"}
    )
    assert seconds is not None and 0 < seconds < 600
    assert REGISTRY.get_sample_value("dramatiq_messages_total", {"queue_name": "feedsync.parse"}) is None


def test_the_database_metrics_count_the_runs_rows_and_success_of_the_history(pipeline: Pipeline) -> None:
    pipeline.import_files(("import/user/internal/users.csv", FEED))
    families = {f.name: f for f in DatabaseCollector().collect()}
    runs = {tuple(s.labels.values()): s.value for s in families["feedsync_runs"].samples}
    assert runs == {("hr-users", "users", "completed"): 1.0}
    rows = {s.labels["outcome"]: s.value for s in families["feedsync_rows"].samples}
    assert rows["read"] == 2 and rows["created"] == 2 and rows["rejected"] == 0
    assert set(rows) == {"read", "created", "updated", "unchanged", "deactivated", "rejected"}  # rows, not files
    assert [s.labels for s in families["feedsync_last_success_timestamp_seconds"].samples] == [
        {"connection": "hr-users"}
    ]
    assert families["feedsync_files_waiting"].samples == []  # the file was imported
    up = {s.labels["dependency"]: s.value for s in families["feedsync_dependency_up"].samples}
    assert up == {"postgresql": 1.0, "rabbitmq": 1.0}
