"""People straight from the system of record, as an admin would run it: `feedsync up` running, a
users connection with ``source = "msgraph"`` pointed at a Graph-shaped server of ours, `feedsync sync`
on demand, and the CLI and the database to read what happened. The secret is only in the
environment: never in the database nor in a log line."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from schemas.settings import get_settings
from tests.api_vendors import GraphVendor
from tests.apidata import entra_toml, people
from tests.apiservers import CLIENT_SECRET, Served
from tests.conftest import feedsync, sql

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PEOPLE = 2_500


def sync(env: dict[str, str]) -> dict[str, Any]:
    """`feedsync sync --wait` (it waits for the run's end), then the run as `feedsync history` shows it."""
    feedsync("sync", "entra-users", "--wait", env=env, check=False, timeout=300)
    latest: dict[str, Any] = json.loads(feedsync("history", "--json", env=env).stdout)[0]
    return latest


def test_people_from_a_graph_server_import_on_demand_and_a_pull_missing_thirty_percent_waits(
    settings: Any, rabbit_env: dict[str, str], start: Any, tmp_path: Path
) -> None:
    env = {**rabbit_env, "GRAPH_CLIENT_SECRET": CLIENT_SECRET}
    vendor = GraphVendor(people=people(PEOPLE))
    with Served(vendor) as served:
        config = tmp_path / "connections.toml"
        config.write_text(entra_toml(served.url))
        assert "entra-users: created" in feedsync("connections", "apply", str(config), env=env).stdout
        up = start("up", "--processes", "1", "--threads", "2", env=env)
        up.wait_for("watching the drop dir")

        run = sync(env)

        assert run["status"] == "completed", up.output()[-3000:]
        assert run["type"] == "on_demand"
        assert run["counts"] == {
            "read": PEOPLE,
            "created": PEOPLE - 2,  # the two disabled accounts arrive inactive: counted as deactivated
            "updated": 0,
            "unchanged": 0,
            "deactivated": 2,
            "rejected": 0,
        }
        # Graph sends at most 100 users a page with $expand=manager: 25 pages, one request each.
        assert (run["details"]["fetched_pages"], run["details"]["fetched_records"]) == (25, PEOPLE)
        assert run["details"]["fetch_requests"] == 25
        users = {
            e: (a, m)
            for e, a, m in sql(
                "SELECT u.email, u.active, m.email FROM lms.users u LEFT JOIN lms.users m ON m.id = u.manager_id"
            )
        }
        assert len(users) == PEOPLE
        assert sorted(e for e, (a, _) in users.items() if not a) == [
            "person3@contoso.example",
            "person4@contoso.example",
        ]
        assert all(
            m == (f"person{(i - 1) // 5}@contoso.example" if i else None)
            for i in range(PEOPLE)
            for m in [users[f"person{i}@contoso.example"][1]]
        )
        ((path, sha),) = sql("SELECT original_path, sha256 FROM sync.feed_files")
        assert path.startswith("api/msgraph/entra-users-") and len(sha) == 64

        # 30% gone from the directory: over max_deactivate (20%), the run waits and changes nobody.
        vendor.people = people(PEOPLE * 7 // 10)
        held = sync(env)

        assert held["status"] == "awaiting_approval", up.output()[-3000:]
        assert held["plan"]["deactivations"] == PEOPLE * 3 // 10
        assert held["plan"]["held_because"] == ["it would deactivate 750 of 2498 people (max_deactivate = 20%)"]
        assert sql("SELECT count(*) FROM lms.users WHERE active")[0][0] == PEOPLE - 2
        tokens = set(vendor.valid_tokens)

    # The secret and the tokens it bought are in no log line and nowhere in the database.
    log = up.output()
    assert "api fetch done" in log and CLIENT_SECRET not in log
    assert not any(t in log for t in tokens)
    url = get_settings().database_url.get_secret_value()
    dump = subprocess.run(["pg_dump", "--data-only", url], capture_output=True, text=True, check=True).stdout
    assert "person7@contoso.example" in dump, "the dump holds the data"
    assert CLIENT_SECRET not in dump and not any(t in dump for t in tokens)
    assert "GRAPH_CLIENT_SECRET" in dump, "the connection names the variable, never its value"
