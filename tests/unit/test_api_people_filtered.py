"""The done-when scenario of issue #28 for Graph, on the stub-broker pipeline: a Graph-shaped server of
2,500 people in a manager tree (2 disabled, 1 contingent worker) imports on a schedule and on demand
with exact counts, the contingent worker filtered out; a second pull with 30% gone holds for approval
and changes nobody; the filtered person is never counted among the deactivations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from producers import queries, scheduler
from producers.commands import start_sync
from tests.api_vendors import GraphVendor
from tests.apidata import apply, entra_toml, people
from tests.apiservers import CLIENT_SECRET, Served
from tests.conftest import sql
from tests.stubpipeline import Pipeline

PEOPLE = 2_500
FILTERS = '\n[connections.filters]\nexclude_values = { worker_type = ["Contingent"] }\n'


def test_a_graph_feed_of_2500_imports_on_schedule_and_on_demand_filtered_and_a_third_gone_waits(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRAPH_CLIENT_SECRET", CLIENT_SECRET)
    vendor = GraphVendor(people=people(PEOPLE))
    start = datetime.now(UTC) - timedelta(hours=1)
    schedule = f'trigger = "on_schedule"\n[connections.schedule]\nstart = "{start.isoformat()}"\nevery_days = 1\n'
    with Served(vendor) as graph:
        apply(entra_toml(graph.url, extra=schedule) + FILTERS)

        (scheduled,) = scheduler.tick(at=start + timedelta(days=1, minutes=1))
        pipeline.drain()
        run = queries.run_detail(scheduled)
        assert run is not None and (run["type"], run["status"]) == ("scheduled", "completed"), run
        assert (run["details"]["fetched_pages"], run["details"]["fetched_records"]) == (25, PEOPLE)
        # The two disabled accounts arrive inactive: counted as deactivated, not created (nor unchanged).
        counts = run["counts"]
        assert (counts["read"], counts["created"], counts["deactivated"], counts["unchanged"]) == (
            PEOPLE,
            PEOPLE - 3,
            2,
            0,
        )
        assert run["details"]["filtered"] == 1
        assert queries.errors(scheduled) == [], "the contingent manager's reports are no unknown managers"
        found = dict(sql("SELECT email, active FROM lms.users"))
        assert "person9@contoso.example" not in found
        assert sorted(e for e, a in found.items() if not a) == ["person3@contoso.example", "person4@contoso.example"]

        again = start_sync(pipeline.settings, "entra-users")  # on demand: the same directory, nothing to do
        pipeline.drain()
        run = queries.run_detail(again)
        assert run is not None and run["status"] == "completed"
        assert (run["counts"]["unchanged"], run["counts"]["deactivated"], run["details"]["filtered"]) == (
            PEOPLE - 1,
            0,
            1,
        )

        vendor.people = people(PEOPLE * 7 // 10)  # 30% gone; person9 still there, still filtered
        held_id = start_sync(pipeline.settings, "entra-users")
        pipeline.drain()
    held = queries.run_detail(held_id)
    assert held is not None and held["status"] == "awaiting_approval"
    assert (held["plan"]["deactivations"], held["plan"]["filtered"], held["plan"]["filter_leavers"]) == (750, 1, 0)
    assert held["plan"]["held_because"] == ["it would deactivate 750 of 2497 people (max_deactivate = 20%)"]
    assert sql("SELECT count(*) FROM lms.users WHERE active")[0][0] == PEOPLE - 3
