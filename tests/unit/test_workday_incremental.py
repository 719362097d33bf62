"""Workday pulls through the pipeline. A refused password fails the run and changes nobody.
Incremental pulls: with ``incremental = true`` a run asks Get_Workers only for the workers
changed since the last completed pull (Transaction_Log_Criteria Updated_From/Updated_Through) and
deactivates nobody missing from it; every ``full_pull_every_days`` a full pull comes again, and only
a full pull may deactivate (behind the same thresholds)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from producers import queries
from producers.commands import start_sync
from tests.apidata import apply
from tests.conftest import sql
from tests.stubpipeline import Pipeline
from tests.workday_server import PASSWORD, Served, Tenant, workers
from tests.workdaydata import workday_toml


@pytest.fixture
def tenant(monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    monkeypatch.setenv("WORKDAY_PASSWORD", PASSWORD)
    with Served(Tenant(people=workers(50))) as served:
        yield served


def sync(pipeline: Pipeline) -> dict[str, Any]:
    run_id = start_sync(pipeline.settings, "workday-workers")
    pipeline.drain(expect_failures=True)
    run = queries.run_detail(run_id)
    assert run is not None
    return {**run, "id": run_id}


def test_an_incremental_pull_asks_for_the_changes_since_the_last_pull_and_a_full_one_comes_every_n_days(
    pipeline: Pipeline, tenant: Served
) -> None:
    apply(workday_toml(tenant.url, workday_extra="incremental = true\nfull_pull_every_days = 7"))
    wd = tenant.tenant

    first = sync(pipeline)

    # The 10 inactive workers arrive inactive: counted deactivated, not created.
    assert first["status"] == "completed"
    assert (first["counts"]["created"], first["counts"]["deactivated"]) == (40, 10)
    assert wd.seen[-1]["updated_from"] is None, "the first pull is a full one"
    (as_of,) = sql("SELECT counts ->> 'fetch_as_of' FROM sync.runs WHERE id = %s", (first["id"],))[0]

    # Three workers change their title; twenty leave Workday's list (an incremental pull cannot see that).
    changed_at = as_of.replace("+00:00", "Z")  # the moment of the first pull: in the next one's range
    wd.people = [
        replace(w, title="Lead", updated=changed_at) if w.employee_id in ("21021", "21022", "21023") else w
        for w in wd.people[20:]
    ]
    wd.seen.clear()
    second = sync(pipeline)

    assert second["status"] == "completed", second
    assert wd.seen[-1]["updated_from"] is not None
    assert wd.seen[-1]["updated_from"].removesuffix("Z") == as_of.removesuffix("+00:00")
    assert (second["counts"]["read"], second["counts"]["updated"], second["counts"]["deactivated"]) == (3, 3, 0)
    assert sql("SELECT count(*) FROM lms.users WHERE active") == [(40,)]
    assert sql("SELECT count(*) FROM lms.users WHERE attributes ->> 'title' = 'Lead'") == [(3,)]

    # Nothing changed since: the run ends without a file, and changes nobody. (The three changes are
    # dated back before the second pull: Updated_From is inclusive, and two pulls in the same second
    # would see a change made at that second twice.)
    wd.people = [replace(w, updated="2026-01-05T09:00:00Z") for w in wd.people]
    quiet = sync(pipeline)
    assert quiet["status"] == "completed", quiet
    assert quiet["counts"]["read"] == 0 and wd.seen[-1]["updated_from"] is not None

    # Eight days on, the next pull is a full one: the twenty gone would be deactivated, over max_deactivate.
    sql("""UPDATE sync.runs SET counts = counts || jsonb_build_object('fetch_as_of', now() - interval '8 days')""")
    third = sync(pipeline)

    assert wd.seen[-1]["updated_from"] is None
    assert third["status"] == "awaiting_approval", third
    assert third["plan"]["deactivations"] == 10, "workers 0-9 (10-19, also gone, were inactive already)"
    assert sql("SELECT count(*) FROM lms.users WHERE active") == [(40,)], "awaiting approval: nobody changed"


def test_a_refused_password_fails_the_run_in_one_sentence_and_changes_nobody(
    pipeline: Pipeline, tenant: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply(workday_toml(tenant.url))
    assert sync(pipeline)["status"] == "completed"
    before = sql("SELECT email, active, attributes FROM lms.users ORDER BY email")
    tenant.tenant.people = tenant.tenant.people[:5]  # a pull that would deactivate nearly everyone
    monkeypatch.setenv("WORKDAY_PASSWORD", "expired-Pa55word")

    run = sync(pipeline)

    assert run["status"] == "failed"
    ((error,),) = sql("SELECT error FROM sync.runs WHERE id = %s", (run["id"],))
    assert error == (
        "workday-workers: Workday refused the user ISU_feedsync@contoso4 or its password (SOAP fault "
        "Client.authenticationError): check username and the password in WORKDAY_PASSWORD"
    )
    assert sql("SELECT email, active, attributes FROM lms.users ORDER BY email") == before
    assert sql("SELECT count(*) FROM sync.feed_files") == [(1,)], "no file registered for the failed pull"
