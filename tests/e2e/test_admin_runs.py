"""Issue-3 paths as an admin drives them, through `feedsync up` on the real broker: a held full feed
approved from the CLI, a dry run, a --since window, rerun refusals, and the history types."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import feedsync, sql
from tests.stubpipeline import HEADER, USERS_TOML
from tests.waiting import poll_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# The unit tier's connection, renamed, as a full feed with a deactivation threshold.
TOML = USERS_TOML.replace('name = "hr-users"', 'name = "hr"').replace(
    "[connections.mapping]", 'full_feed = true\nmax_deactivate = "10%"\n\n[connections.mapping]'
)


def people(n: int, tag: str = "S") -> str:
    return HEADER + "".join(f"p{i}@x.com,P{i},L,,{tag}\n" for i in range(n))


def runs(env: dict[str, str]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(feedsync("history", "hr", "--json", env=env).stdout)
    return found


def test_an_admin_approves_a_held_full_feed_and_reads_the_history(
    settings: Any, rabbit_env: dict[str, str], start: Any, tmp_path: Path
) -> None:
    env = rabbit_env
    conf = tmp_path / "c.toml"
    conf.write_text(TOML)
    feedsync("connections", "apply", str(conf), env=env)
    start("worker", "--processes", "1", "--threads", "2").wait_for("Worker process is ready")
    inbox = settings.drop_dir / "import/user/internal"
    inbox.mkdir(parents=True)
    today = datetime.now(UTC).date()

    (inbox / f"users-{today - timedelta(days=3):%Y%m%d}.csv").write_text(people(100))
    assert feedsync("sync", "hr", "--wait", env=env).stdout.strip().endswith("completed")

    (inbox / f"users-{today - timedelta(days=1):%Y%m%d}.csv").write_text(people(70, "Ops"))
    dry = feedsync("sync", "hr", "--dry-run", "--wait", env=env)
    assert dry.stdout.strip().endswith("completed")
    assert sql("SELECT count(*) FROM lms.users WHERE active")[0][0] == 100

    held = feedsync("sync", "hr", "--since", f"{today - timedelta(days=1):%Y-%m-%d}", "--wait", env=env)
    assert "awaiting_approval" in held.stdout and "feedsync approve" in held.stdout
    run_id = runs(env)[0]["run_id"]
    shown = feedsync("run", str(run_id), env=env).stdout
    assert "waiting for approval: it would deactivate 30 of 100 people (max_deactivate = 10%)" in shown
    assert "deactivations: 30" in shown
    assert sql("SELECT count(*) FROM lms.users WHERE active")[0][0] == 100

    assert "approved" in feedsync("approve", str(run_id), env=env).stdout
    refused = feedsync("approve", str(run_id), env=env, check=False)
    assert refused.returncode == 1 and "not awaiting approval" in refused.stderr
    poll_until(
        lambda: runs(env)[0]["status"] == "completed", timeout=60, interval=0.3, message=lambda: str(runs(env)[0])
    )
    assert sql("SELECT count(*) FROM lms.users WHERE active")[0][0] == 70

    older = feedsync("rerun", "hr", "--run", str(run_id - 1), env=env, check=False)
    assert older.returncode == 1 and f"is not the latest run of hr (run {run_id} is)" in older.stderr
    history = runs(env)
    assert [(h["type"], h["dry_run"], h["status"]) for h in history] == [
        ("on_demand", False, "completed"),
        ("on_demand", True, "completed"),
        ("on_demand", False, "completed"),
    ]
    assert history[0]["since"] == f"{today - timedelta(days=1):%Y-%m-%d}" and history[0]["counts"]["deactivated"] == 30
