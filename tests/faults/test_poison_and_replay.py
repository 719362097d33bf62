"""Fault 5: a message that always crashes its worker is dead-lettered after N attempts (counted in
PostgreSQL, since the crash never lets Dramatiq count), other runs keep flowing, and once the cause
is fixed `feedsync dlq replay --run` completes the run without duplicates."""

from __future__ import annotations

import json
from typing import Any

import pytest

from producers import feedgen, registry
from tests.conftest import feedsync, sql
from tests.faults.helpers import run_status, two_connections, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.slow]


def test_a_crashing_message_is_dead_lettered_and_replayed_once_fixed(
    settings: Any, rabbit_env: dict[str, str], rabbit_broker: Any, start: Any
) -> None:
    two_connections()
    poisoned = {**rabbit_env, "FEEDSYNC_MAX_ATTEMPTS": "3", "FEEDSYNC_FAILPOINTS": "transform.start@hr-users=crash"}
    worker = start("worker", "--processes", "1", "--threads", "2", env=poisoned)
    worker.wait_for("Worker process is ready")

    feed = feedgen.generate_users(settings.drop_dir / "import/user/internal/people.csv", 1000)
    registry.scan(settings)
    wait_for(lambda: run_status("hr-users") == "failed", 120, "the poisoned run to fail", worker)

    stage = sql("SELECT stage, status, attempts, error FROM sync.stage_runs WHERE status = 'dead_lettered'")
    assert len(stage) == 1 and stage[0][0] == "transform" and stage[0][2] == 4
    assert "never finished" in stage[0][3]
    assert worker.output().count('"failpoint": "transform.start"') == 3  # three crashes, then dead-lettered
    run_error = sql("SELECT error FROM sync.runs WHERE connection_name = 'hr-users'")[0][0]
    assert run_error.startswith("stage transform dead-lettered after 3 attempts")
    assert rabbit_broker.get_queue_message_counts("feedsync.transform")[2] == 1  # the dead copy in the XQ

    # Another connection's run flows through the same (restarted) workers meanwhile.
    feedgen.generate_users(settings.drop_dir / "import/crm/crm.csv", 300, seed=99)
    registry.scan(settings)
    wait_for(lambda: run_status("crm-users") == "completed", 60, "the other connection's run", worker)

    listed = json.loads(feedsync("dlq", "list", "--json", env=rabbit_env).stdout)
    assert [(d["actor"], d["queue"], d["connection"], d["attempts"]) for d in listed] == [
        ("transform_chunk", "feedsync.transform", "hr-users", 3)
    ]
    shown = json.loads(feedsync("dlq", "show", str(listed[0]["id"]), env=rabbit_env).stdout)
    assert shown["message"]["kwargs"]["chunk_no"] == 0

    # Fix the cause (a worker without the fault), then replay the run's dead letters.
    worker.stop()
    start("worker", "--processes", "1", "--threads", "2").wait_for("Worker process is ready")
    run_id = listed[0]["run_id"]
    dry = feedsync("dlq", "replay", "--run", str(run_id), "--dry-run", env=rabbit_env).stdout
    assert "would replay" in dry and run_status("hr-users") == "failed"
    out = feedsync("dlq", "replay", "--run", str(run_id), env=rabbit_env).stdout
    assert "replayed" in out
    wait_for(lambda: run_status("hr-users") == "completed", 60, "the replayed run")

    # Both generated feeds number people from user0000000@…: the 300 of crm-users are among the 1000.
    assert sql("SELECT count(*), count(DISTINCT email_key) FROM lms.users")[0] == (1000, 1000)
    assert sorted(e for (e,) in sql("SELECT email FROM lms.users")) == sorted(feed.emails)
    history = json.loads(feedsync("history", "hr-users", "--json", env=rabbit_env).stdout)
    assert [(h["type"], h["trigger"], h["status"]) for h in history] == [("replay", "file_drop", "completed")]
    detail = json.loads(feedsync("run", str(run_id), "--json", env=rabbit_env).stdout)
    assert [r["actor"] for r in detail["replays"]] == ["transform_chunk"] and detail["replays"][0]["replayed_by"]
    assert rabbit_broker.get_queue_message_counts("feedsync.transform")[2] == 0  # dead copy acked after confirm
    again = feedsync("dlq", "replay", "--run", str(run_id), env=rabbit_env).stdout
    assert "no dead letters to replay" in again
    assert json.loads(feedsync("dlq", "list", "--json", env=rabbit_env).stdout) == []
    assert "purged 1" in feedsync("dlq", "purge", str(listed[0]["id"]), env=rabbit_env).stdout
