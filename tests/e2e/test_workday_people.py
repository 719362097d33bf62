"""Workers straight from Workday, as an admin would run it: `feedsync up` running, a users connection
with ``source = "workday"`` pointed at a Workday tenant of ours (tests/workday_server.py),
`feedsync sync` on demand, and the CLI and the database to read what happened. The password is only
in the environment: never in the database nor in a log line."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from schemas.settings import get_settings
from tests.conftest import feedsync, sql
from tests.workday_server import PASSWORD, Served, Tenant, workers
from tests.workdaydata import workday_toml

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

WORKERS = 1_000


def sync(env: dict[str, str]) -> dict[str, Any]:
    feedsync("sync", "workday-workers", "--wait", env=env, check=False, timeout=300)
    latest: dict[str, Any] = json.loads(feedsync("history", "--json", env=env).stdout)[0]
    return latest


def test_workers_from_a_workday_tenant_import_in_three_pages_and_a_pull_missing_thirty_percent_waits(
    settings: Any, rabbit_env: dict[str, str], start: Any, tmp_path: Path
) -> None:
    env = {**rabbit_env, "WORKDAY_PASSWORD": PASSWORD}
    tenant = Tenant(people=workers(WORKERS))  # 1,000 employees (10 inactive) and 25 contingent workers
    with Served(tenant) as served:
        config = tmp_path / "connections.toml"
        config.write_text(workday_toml(served.url))
        assert "workday-workers: created" in feedsync("connections", "apply", str(config), env=env).stdout
        up = start("up", "--processes", "1", "--threads", "2", env=env)
        up.wait_for("watching the drop dir", timeout_s=120)  # a loaded machine starts its children slowly

        run = sync(env)

        assert run["status"] == "completed", up.output()[-3000:]
        # The 10 terminated workers arrive inactive: counted deactivated, not created.
        assert run["counts"] == {
            "read": WORKERS,
            "created": WORKERS - 10,
            "updated": 0,
            "unchanged": 0,
            "deactivated": 10,
            "rejected": 0,
        }
        # 400 workers a page: 3 pages, one request each.
        assert (run["details"]["fetched_pages"], run["details"]["fetched_records"]) == (3, WORKERS)
        assert run["details"]["fetch_requests"] == 3
        users = {
            e: (a, m, attrs)
            for e, a, m, attrs in sql(
                """SELECT u.email, u.active, m.email, u.attributes
                   FROM lms.users u LEFT JOIN lms.users m ON m.id = u.manager_id"""
            )
        }
        assert len(users) == WORKERS and not any(e.startswith("cw") for e in users), "contingent workers excluded"
        assert sorted(e for e, (a, _, _) in users.items() if not a) == sorted(
            f"worker{i}@contoso.example" for i in range(10, 20)
        )
        assert all(
            users[f"worker{i}@contoso.example"][1] == (f"worker{(i - 1) // 5}@contoso.example" if i else None)
            for i in range(WORKERS)
        )
        assert users["worker7@contoso.example"][2]["employee_id"] == "21007"
        ((path,),) = sql("SELECT original_path FROM sync.feed_files")
        assert path.startswith("api/workday/workday-workers-")
        assert tenant.problems == []

        # 30% gone from Workday: over max_deactivate (20%), the run waits and changes nobody.
        tenant.people = workers(WORKERS * 7 // 10)
        held = sync(env)

        assert held["status"] == "awaiting_approval", up.output()[-3000:]
        assert held["plan"]["deactivations"] == WORKERS * 3 // 10
        assert held["plan"]["held_because"] == ["it would deactivate 300 of 990 people (max_deactivate = 20%)"]
        assert sql("SELECT count(*) FROM lms.users WHERE active")[0][0] == WORKERS - 10

    log = up.output()
    assert "api fetch done" in log and PASSWORD not in log
    url = get_settings().database_url.get_secret_value()
    dump = subprocess.run(["pg_dump", "--data-only", url], capture_output=True, text=True, check=True).stdout
    assert "worker7@contoso.example" in dump, "the dump holds the data"
    assert PASSWORD not in dump
    assert "WORKDAY_PASSWORD" in dump, "the connection names the variable, never its value"
