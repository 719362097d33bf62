"""Issue #28's Graph done-when through `feedsync up`: a Graph-shaped server of ours with 2,500 people in
a manager tree (2 disabled accounts, 1 contingent worker left out by ``[connections.filters]``) imports
on the connection's schedule (its slot falls due while `feedsync up` runs its scheduler) and on demand
with exact counts; a second pull with 30% gone holds for approval and changes nobody; `feedsync api
check` shows the mapping applied to the first records, masked. Read back through `feedsync history
--json`, `feedsync run` and SQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.api_vendors import GraphVendor
from tests.apidata import entra_toml, people
from tests.apiservers import CLIENT_SECRET, Served
from tests.conftest import feedsync, sql
from tests.services import wait_run

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PEOPLE = 2_500
FILTERS = '\n[connections.filters]\nexclude_values = { worker_type = ["Contingent"] }\n'


def history(env: dict[str, str]) -> dict[str, Any]:
    latest: dict[str, Any] = json.loads(feedsync("history", "--json", env=env).stdout)[0]
    return latest


def on_demand(env: dict[str, str]) -> dict[str, Any]:
    feedsync("sync", "entra-users", "--wait", env=env, check=False, timeout=300)
    return history(env)


def recorded(env: dict[str, str], run_id: int) -> dict[str, str]:
    """`feedsync run`'s "recorded:" line as a dict: every count and fetch detail the run kept."""
    shown = feedsync("run", str(run_id), env=env).stdout
    line = next(ln for ln in shown.splitlines() if ln.startswith("recorded: "))
    return dict(part.split("=", 1) for part in line.removeprefix("recorded: ").split(", ") if "=" in part)


def test_graph_people_import_filtered_on_their_schedule_and_on_demand_and_a_third_gone_waits(
    settings: Any, rabbit_env: dict[str, str], start: Any, tmp_path: Path
) -> None:
    env = {**rabbit_env, "GRAPH_CLIENT_SECRET": CLIENT_SECRET}
    vendor = GraphVendor(people=people(PEOPLE))
    # The first slot is the start itself: ahead of the apply (so it is owed) and due while `feedsync up`
    # runs (it takes ~10 s to start on a busy machine); the scheduler fires it, nobody else.
    slot = (datetime.now(UTC) + timedelta(seconds=20)).replace(microsecond=0)
    schedule = f'trigger = "on_schedule"\n[connections.schedule]\nstart = "{slot.isoformat()}"\nevery_days = 1\n'
    with Served(vendor) as served:
        config = tmp_path / "connections.toml"
        config.write_text(entra_toml(served.url, extra=schedule) + FILTERS)
        assert "entra-users: created" in feedsync("connections", "apply", str(config), env=env).stdout
        ((armed,),) = sql("SELECT armed_at FROM sync.schedules")
        assert armed < slot, "the apply took longer than the margin: the slot would not be owed"

        checked = feedsync("api", "check", "entra-users", env=env).stdout
        assert "first page of msgraph: 100 records, more pages follow" in checked, checked
        previewed = [ln.strip() for ln in checked.splitlines() if ln.startswith("  ")]
        assert previewed[1].startswith("2. email=pe***  first_name=Gi***  last_name=Su***  manager=pe***"), checked
        assert "filters: 1 of the 100 records of this page would be filtered out" in checked, checked
        assert "person1@contoso.example" not in checked and CLIENT_SECRET not in checked
        assert sql("SELECT count(*) FROM sync.runs") == [(0,)], "api check writes nothing"

        up = start("up", "--processes", "1", "--threads", "2", env=env)
        up.wait_for("watching the drop dir")
        wait_run(timeout_s=120)
        scheduled = history(env)

        assert (scheduled["type"], scheduled["status"]) == ("scheduled", "completed"), up.output()[-3000:]
        assert scheduled["counts"] == {
            "read": PEOPLE,
            "created": PEOPLE - 3,  # the contingent worker filtered out, the two disabled arrive inactive
            "updated": 0,
            "unchanged": 0,
            "deactivated": 2,
            "rejected": 0,
        }
        assert scheduled["details"]["filtered"] == 1
        # Graph sends at most 100 users a page with $expand=manager: 25 pages, one request each.
        assert (scheduled["details"]["fetched_pages"], scheduled["details"]["fetched_records"]) == (25, PEOPLE)
        shown = recorded(env, scheduled["run_id"])
        assert (shown["created"], shown["fetched_records"], shown["filtered"]) == ("2497", "2500", "1"), shown
        users = {
            e: (a, m)
            for e, a, m in sql(
                "SELECT u.email, u.active, m.email FROM lms.users u LEFT JOIN lms.users m ON m.id = u.manager_id"
            )
        }
        assert len(users) == PEOPLE - 1 and "person9@contoso.example" not in users
        assert sorted(e for e, (a, _) in users.items() if not a) == [
            "person3@contoso.example",
            "person4@contoso.example",
        ]
        # The contingent worker's reports are imported, their manager link left empty (not an error).
        assert users["person46@contoso.example"] == (True, None)
        assert users["person45@contoso.example"] == (True, "person8@contoso.example")

        # On demand, the next morning's directory: one more account disabled, ten people hired.
        vendor.people = people(PEOPLE + 10)
        vendor.people[5]["accountEnabled"] = False
        demanded = on_demand(env)

        assert (demanded["type"], demanded["status"]) == ("on_demand", "completed"), up.output()[-3000:]
        assert demanded["counts"] == {
            "read": PEOPLE + 10,
            "created": 10,
            "updated": 1,  # person5, disabled: updated, and deactivated by their state
            "unchanged": PEOPLE - 2,
            "deactivated": 1,
            "rejected": 0,
        }
        assert demanded["details"]["filtered"] == 1
        assert sql("SELECT count(*), count(*) FILTER (WHERE NOT active) FROM lms.users") == [(PEOPLE + 9, 3)]
        assert sql("SELECT active FROM lms.users WHERE email = 'person5@contoso.example'") == [(False,)]

        # 30% gone from the directory: over max_deactivate (20%), the run waits and changes nobody.
        vendor.people = people(PEOPLE * 7 // 10)
        held = on_demand(env)

        assert held["status"] == "awaiting_approval", up.output()[-3000:]
        assert (held["plan"]["deactivations"], held["plan"]["filtered"], held["plan"]["filter_leavers"]) == (760, 1, 0)
        assert held["plan"]["held_because"] == ["it would deactivate 760 of 2506 people (max_deactivate = 20%)"]
        assert sql("SELECT count(*), count(*) FILTER (WHERE NOT active) FROM lms.users") == [(PEOPLE + 9, 3)]
        tokens = set(vendor.valid_tokens)

    log = up.output()
    assert "schedule fired" in log and CLIENT_SECRET not in log
    assert not any(t in log for t in tokens)
