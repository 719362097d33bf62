"""Graph delta (``incremental = true``): the first run pulls a full round of /users/delta and keeps its
deltaLink; the next pulls only what changed from that link, deactivating nobody by absence: a person
Graph reports ``@removed`` and one disabled are deactivated, a new one created, a changed one updated.
A full round comes again once ``full_every_days`` have passed since the last."""

from __future__ import annotations

from typing import Any

import pytest

from producers import queries
from producers.commands import start_sync
from schemas.connections import ConfigError, load_connections_toml
from tests.api_vendors import GraphVendor
from tests.apidata import apply, entra_toml, people
from tests.apiservers import CLIENT_SECRET, Served
from tests.conftest import sql
from tests.stubpipeline import Pipeline

INCREMENTAL = "incremental = true\nfull_every_days = 7\n"


def sync(pipeline: Pipeline) -> dict[str, Any]:
    run_id = start_sync(pipeline.settings, "entra-users")
    pipeline.drain()
    run = queries.run_detail(run_id)
    assert run is not None
    return run


def active() -> dict[str, bool]:
    return dict(sql("SELECT email, active FROM lms.users"))


def test_a_delta_after_a_full_round_imports_exactly_what_changed(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRAPH_CLIENT_SECRET", CLIENT_SECRET)
    vendor = GraphVendor(people=people(250))
    with Served(vendor) as graph:
        apply(entra_toml(graph.url, api_extra=INCREMENTAL))
        first = sync(pipeline)
        assert first["status"] == "completed", first.get("error")
        assert (first["details"]["fetch_delta"], first["counts"]["created"]) == (0, 248)
        full = vendor.api_requests()[0]
        assert full.path == "/v1.0/users/delta" and "$top" not in full.query
        assert full.query["$expand"] == ["manager($select=mail)"]
        assert set(full.query["$select"][0].split(",")) >= {"id", "mail", "accountEnabled", "employeeType"}

        # Between the rounds: person20 leaves the directory, person21 is disabled, person22 changes
        # name, person250 joins; person23 is missing from nothing: a delta never deactivates by absence.
        vendor.people = [p for p in vendor.people if p["mail"] != "person20@contoso.example"]
        vendor.people[20]["accountEnabled"] = False
        assert vendor.people[20]["mail"] == "person21@contoso.example"
        vendor.people[21]["givenName"] = "Renamed"
        vendor.people.append({**people(251)[250]})
        before = len(vendor.api_requests())
        second = sync(pipeline)

    assert second["status"] == "completed", second.get("error")
    delta = vendor.api_requests()[before]
    assert "$deltatoken" in delta.query and set(delta.query) == {"$deltatoken"}
    details, counts = second["details"], second["counts"]
    assert (details["fetch_delta"], details["fetched_records"], details["fetch_removed"]) == (1, 4, 1)
    assert (counts["read"], counts["created"], counts["updated"], counts["deactivated"]) == (4, 1, 3, 2)
    people_now = active()
    assert len(people_now) == 251 and sum(people_now.values()) == 250 - 2 - 2 + 1
    assert (people_now["person20@contoso.example"], people_now["person21@contoso.example"]) == (False, False)
    assert sql("SELECT first_name FROM lms.users WHERE email = 'person22@contoso.example'") == [("Renamed",)]
    assert second["plan"]["deactivation_skipped"] is True


def test_a_full_round_comes_again_after_full_every_days(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAPH_CLIENT_SECRET", CLIENT_SECRET)
    vendor = GraphVendor(people=people(30))
    with Served(vendor) as graph:
        apply(entra_toml(graph.url, api_extra=INCREMENTAL))
        assert sync(pipeline)["details"]["fetch_delta"] == 0
        unchanged = sync(pipeline)  # nothing changed: no file, the run completes with nothing to do
        assert (unchanged["status"], unchanged["details"]["fetch_delta"], unchanged["counts"]["read"]) == (
            "completed",
            1,
            0,
        )
        sql("UPDATE sync.api_delta SET pending_full_at = now() - interval '8 days'")
        vendor.people = vendor.people[:-3]  # gone: only a full round can tell
        again = sync(pipeline)
    assert (again["details"]["fetch_delta"], again["counts"]["read"], again["counts"]["deactivated"]) == (0, 27, 3)


def test_a_failed_delta_run_leaves_the_link_where_it_was(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAPH_CLIENT_SECRET", CLIENT_SECRET)
    vendor = GraphVendor(people=people(30))
    with Served(vendor) as graph:
        apply(entra_toml(graph.url, api_extra=INCREMENTAL))
        sync(pipeline)
        vendor.people[5]["givenName"] = "Changed"
        sql("UPDATE sync.runs SET status = 'failed' WHERE id = (SELECT max(id) FROM sync.runs)")
        # The first round's run "failed": its link is not taken, the next run is a full round again.
        assert sync(pipeline)["details"]["fetch_delta"] == 0
    assert sql("SELECT first_name FROM lms.users WHERE email = 'person5@contoso.example'") == [("Changed",)]


def test_incremental_needs_the_state_mapped_to_account_enabled_and_a_graph_source() -> None:
    text = entra_toml("http://127.0.0.1:1", api_extra=INCREMENTAL).replace('state = "accountEnabled"\n', "")
    with pytest.raises(ConfigError, match='incremental = true needs state = "accountEnabled"'):
        load_connections_toml(text)


def test_under_managers_on_a_delta_walks_the_tree_through_the_people_already_imported(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRAPH_CLIENT_SECRET", CLIENT_SECRET)
    vendor = GraphVendor(people=people(60))  # person1 manages person6-10, who manage person31-55
    filters = '\n[connections.filters]\nunder_managers = ["person1@contoso.example"]\n'
    with Served(vendor) as graph:
        apply(entra_toml(graph.url, api_extra=INCREMENTAL) + filters)
        first = sync(pipeline)
        assert (first["counts"]["created"], first["details"]["filtered"]) == (1 + 5 + 25, 60 - 31)
        # person33 (under person7) and person12 (under person2) change; neither manager is in the delta.
        vendor.people[33]["givenName"] = "Inside"
        vendor.people[12]["givenName"] = "Outside"
        second = sync(pipeline)
    assert (second["details"]["fetch_delta"], second["counts"]["updated"], second["details"]["filtered"]) == (1, 1, 1)
    assert sql("SELECT first_name FROM lms.users WHERE email = 'person33@contoso.example'") == [("Inside",)]
    assert sql("SELECT count(*) FROM lms.users WHERE email = 'person12@contoso.example'") == [(0,)]
