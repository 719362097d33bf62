"""Issue #28's Salesforce done-when through `feedsync up`: a Salesforce-shaped server of ours with 2,500
Contacts in a ReportsTo tree (2 inactive, 1 contingent worker left out by ``[connections.filters]``)
imports on demand by REST query paging (``nextRecordsUrl``); past ``bulk_threshold`` the next pull is a
Bulk API 2.0 query job (CSV results); a pull with 30% gone holds for approval and changes nobody.
Read back through `feedsync history --json`, `feedsync run` and SQL; the secret only in the
environment, never in a log line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.api_vendors import SalesforceVendor
from tests.apidata import contacts
from tests.apiservers import CLIENT_ID, CLIENT_SECRET, Served
from tests.conftest import feedsync, sql

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CONTACTS = 2_500


def org_contacts(n: int) -> list[dict[str, Any]]:
    """n Contacts (each reports to (i - 1) // 4): contact2 and contact7 inactive, contact11 contingent."""
    found = contacts(n)
    for contact in found:
        contact["Worker_Type__c"] = "Employee"
    if n > 11:
        found[7]["IsActive"] = False
        found[11]["Worker_Type__c"] = "Contingent"
    return found


def sf_toml(url: str) -> str:
    return f"""
[[connections]]
name = "sf-contacts"
kind = "users"
source = "salesforce"
full_feed = true
max_deactivate = "20%"

[connections.mapping]
email = "Email"
first_name = "FirstName"
last_name = "LastName"
manager = "ReportsTo.Email"
state = "IsActive"
worker_type = "Worker_Type__c"

[connections.filters]
exclude_values = {{ worker_type = ["Contingent"] }}

[connections.api]
client_id = "{CLIENT_ID}"
client_secret_env = "SF_CLIENT_SECRET"
token_url = "{url}/services/oauth2/token"
page_size = 1000
bulk_threshold = 2600
bulk_poll_s = 0.05
backoff_s = 0.01
max_backoff_s = 0.05
"""


def sync(env: dict[str, str]) -> dict[str, Any]:
    feedsync("sync", "sf-contacts", "--wait", env=env, check=False, timeout=300)
    latest: dict[str, Any] = json.loads(feedsync("history", "--json", env=env).stdout)[0]
    return latest


def test_salesforce_contacts_import_by_rest_paging_then_by_bulk_api_and_a_third_gone_waits(
    settings: Any, rabbit_env: dict[str, str], start: Any, tmp_path: Path
) -> None:
    env = {**rabbit_env, "SF_CLIENT_SECRET": CLIENT_SECRET}
    vendor = SalesforceVendor(people=org_contacts(CONTACTS), page_cap=1000)
    with Served(vendor) as org:
        config = tmp_path / "connections.toml"
        config.write_text(sf_toml(org.url))
        assert "sf-contacts: created" in feedsync("connections", "apply", str(config), env=env).stdout
        checked = feedsync("api", "check", "sf-contacts", env=env).stdout
        previewed = [ln.strip() for ln in checked.splitlines() if ln.startswith("  ")]
        assert previewed[1].startswith("2. email=co***  first_name=Fi***  last_name=La***  manager=co***"), checked
        assert "filters: 1 of the 1000 records of this page would be filtered out" in checked, checked
        assert "contact1@example.org" not in checked and CLIENT_SECRET not in checked
        assert sql("SELECT count(*) FROM sync.runs") == [(0,)], "api check writes nothing"
        vendor.seen.clear()
        up = start("up", "--processes", "1", "--threads", "2", env=env)
        up.wait_for("watching the drop dir")

        rest = sync(env)

        assert (rest["type"], rest["status"]) == ("on_demand", "completed"), up.output()[-3000:]
        assert rest["counts"] == {
            "read": CONTACTS,
            "created": CONTACTS - 3,  # contact11 filtered out, contact2 and contact7 arrive inactive
            "updated": 0,
            "unchanged": 0,
            "deactivated": 2,
            "rejected": 0,
        }
        assert rest["details"]["filtered"] == 1
        assert (rest["details"]["fetched_pages"], rest["details"]["fetched_records"]) == (3, CONTACTS)
        queried = [s for s in vendor.api_requests() if "/query" in s.path]
        # The COUNT(), the query, then its nextRecordsUrl twice (the api check's query took locator 0).
        assert [s.path.rsplit("/", 1)[1] for s in queried] == ["query", "query", "01gFAKE1-1000", "01gFAKE1-2000"]
        assert queried[0].query["q"] == ["SELECT COUNT() FROM Contact"], "the size decides REST or Bulk"
        assert not any("/jobs/query" in s.path for s in vendor.api_requests())
        users = {
            e: (a, m)
            for e, a, m in sql(
                "SELECT u.email, u.active, m.email FROM lms.users u LEFT JOIN lms.users m ON m.id = u.manager_id"
            )
        }
        assert len(users) == CONTACTS - 1 and "contact11@example.org" not in users
        assert sorted(e for e, (a, _) in users.items() if not a) == ["contact2@example.org", "contact7@example.org"]
        assert users["contact9@example.org"] == (True, "contact2@example.org")
        assert users["contact45@example.org"] == (True, None), "their manager was filtered out"
        ((path,),) = sql("SELECT original_path FROM sync.feed_files")
        assert path.startswith("api/salesforce/sf-contacts-")

        # 200 Contacts more: past bulk_threshold, one Bulk API 2.0 query job, its results as CSV.
        vendor.people = org_contacts(CONTACTS + 200)
        bulk = sync(env)

        assert bulk["status"] == "completed", up.output()[-3000:]
        assert bulk["counts"] == {
            "read": CONTACTS + 200,
            "created": 200,
            "updated": 0,
            "unchanged": CONTACTS - 1,
            "deactivated": 0,
            "rejected": 0,
        }
        assert (bulk["details"]["filtered"], bulk["details"]["fetched_records"]) == (1, CONTACTS + 200)
        (job,) = [s for s in vendor.api_requests() if s.method == "POST" and s.path.endswith("/jobs/query")]
        assert job.path == f"/services/data/{vendor.api_version}/jobs/query"
        assert len(vendor.jobs) == 1
        shown = feedsync("run", str(bulk["run_id"]), env=env).stdout
        assert "fetched_records=2700" in shown and "created=200" in shown, shown
        assert sql("SELECT count(*), count(*) FILTER (WHERE NOT active) FROM lms.users") == [(CONTACTS + 199, 2)]

        # 30% of the org gone (back under the threshold: REST): over max_deactivate, the run waits.
        vendor.people = org_contacts((CONTACTS + 200) * 7 // 10)
        held = sync(env)

        assert held["status"] == "awaiting_approval", up.output()[-3000:]
        assert (held["plan"]["deactivations"], held["plan"]["filtered"]) == (810, 1)
        assert held["plan"]["held_because"] == ["it would deactivate 810 of 2697 people (max_deactivate = 20%)"]
        assert sql("SELECT count(*), count(*) FILTER (WHERE NOT active) FROM lms.users") == [(CONTACTS + 199, 2)]
        assert len(vendor.jobs) == 1, "1,890 Contacts are under bulk_threshold: REST again"
        tokens = set(vendor.valid_tokens)

    log = up.output()
    assert "api fetch done" in log and CLIENT_SECRET not in log
    assert not any(t in log for t in tokens)
