"""The fetch stage: a users connection with ``source = "msgraph"`` pulls its feed from a Graph-shaped
server of ours at the start of each run (on demand, on a schedule), registers it as the run's file,
and the run goes on as for a dropped file; a fetch that fails after its retries changes nobody.
The connection's ``source`` and ``[connections.api]`` are checked through ``connections apply``."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from producers import queries, scheduler
from producers.commands import CommandError, start_sync
from schemas.connections import ConfigError, connection_from_json, load_connections_toml
from tests.api_vendors import TENANT
from tests.apidata import apply, entra_toml, graph_with_secret, people
from tests.apiservers import CLIENT_ID, CLIENT_SECRET, Served
from tests.conftest import sql
from tests.stubpipeline import HEADER, USERS_TOML, Pipeline
from workers.sources import fetch
from workers.sources.preview import spec_of

__all__ = ["graph_with_secret"]  # the fixture "graph", used by name


def active_people() -> dict[str, bool]:
    return dict(sql("SELECT email, active FROM lms.users"))


def sync(pipeline: Pipeline, **kw: Any) -> dict[str, Any]:
    run_id = start_sync(pipeline.settings, "entra-users", **kw)
    pipeline.drain(expect_failures=True)
    run = queries.run_detail(run_id)
    assert run is not None
    return run


def test_an_on_demand_sync_fetches_every_page_and_imports_it_as_the_runs_one_file(
    pipeline: Pipeline, graph: Served, tmp_path: Path
) -> None:
    apply(entra_toml(graph.url))

    run = sync(pipeline)

    assert run["status"] == "completed", run.get("error")
    counts, fetched = run["counts"], run["details"]
    # The two disabled accounts arrive inactive: counted as deactivated, not created.
    assert (fetched["fetched_pages"], fetched["fetched_records"], counts["read"], counts["created"]) == (
        3,
        250,
        250,
        248,
    )
    assert (counts["deactivated"], counts["unchanged"]) == (2, 0)
    assert fetched["fetch_requests"] == 3 and fetched["fetch_ms"] >= 0
    ((path, stored, sha, size, status),) = sql(
        "SELECT original_path, stored_path, sha256, size_bytes, status FROM sync.feed_files"
    )
    assert path.startswith("api/msgraph/entra-users-") and status == "imported"
    # The same pull again gives the same bytes: the file recorded is the file fetched.
    ((stored_config,),) = sql("SELECT config FROM sync.runs")
    again = fetch(
        spec_of("entra-users", connection_from_json(stored_config)), pipeline.settings, tmp_path / "again.csv"
    )
    data = again.path.read_bytes()
    assert (hashlib.sha256(data).hexdigest(), len(data)) == (sha, size)
    assert stored.startswith("fetched/entra-users/run-")
    assert [s["stage"] for s in run["stages"]][:2] == ["plan", "fetch"]
    assert next(s for s in run["stages"] if s["stage"] == "fetch")["counts"]["records"] == 250
    found = active_people()
    assert len(found) == 250 and sorted(e for e, a in found.items() if not a) == [
        "person3@contoso.example",
        "person4@contoso.example",
    ]
    assert not (pipeline.settings.store_dir / "fetching" / f"run-{run['run_id']}").exists()


def test_a_second_pull_with_a_third_gone_holds_for_approval_and_changes_nobody(
    pipeline: Pipeline, graph: Served
) -> None:
    apply(entra_toml(graph.url))
    assert sync(pipeline)["status"] == "completed"
    graph.vendor.people = people(175)  # 75 of 250 gone (30%)

    run = sync(pipeline)

    assert run["status"] == "awaiting_approval"
    assert sum(active_people().values()) == 248


def test_a_dry_run_fetches_changes_nobody_and_leaves_no_file_waiting(pipeline: Pipeline, graph: Served) -> None:
    apply(entra_toml(graph.url))

    run = sync(pipeline, dry_run=True)

    assert run["status"] == "completed" and run["details"]["fetched_records"] == 250
    assert active_people() == {}
    ((status, removed),) = sql("SELECT status, removed_at IS NOT NULL FROM sync.feed_files")
    assert (status, removed) == ("rejected", True)
    assert sync(pipeline)["counts"]["created"] == 248  # and the two disabled accounts, inactive


def test_a_fetch_that_fails_after_its_retries_fails_the_run_in_one_sentence_and_changes_nobody(
    pipeline: Pipeline, graph: Served
) -> None:
    apply(entra_toml(graph.url, api_extra="max_retries = 2\n"))
    assert sync(pipeline)["status"] == "completed"
    before = sql("SELECT email, first_name, active, manager_id FROM lms.users ORDER BY email")
    graph.vendor.people = people(150)  # a full feed that would deactivate 100
    graph.vendor.fail("skiptoken", 503, times=100)

    run = sync(pipeline)

    assert run["status"] == "failed"
    assert "entra-users" in run["error"] and "\n" not in run["error"] and "503" in run["error"]
    assert sql("SELECT email, first_name, active, manager_id FROM lms.users ORDER BY email") == before
    assert sql("SELECT count(*) FROM sync.feed_files")[0][0] == 1, "the cut-off pull registered no file"
    assert not any((pipeline.settings.store_dir / "fetching").iterdir())


def test_a_schedule_slot_fetches_and_imports(pipeline: Pipeline, graph: Served) -> None:
    start = datetime.now(UTC) - timedelta(hours=1)
    schedule = f'trigger = "on_schedule"\n[connections.schedule]\nstart = "{start.isoformat()}"\nevery_days = 1\n'
    apply(entra_toml(graph.url, extra=schedule))

    (run_id,) = scheduler.tick(at=start + timedelta(days=1, minutes=1))
    pipeline.drain()

    run = queries.history()[0]
    assert (run["run_id"], run["type"], run["status"]) == (run_id, "scheduled", "completed")
    assert (run["details"]["fetched_records"], run["counts"]["created"]) == (250, 248)


def test_a_literal_secret_is_refused_on_its_line_without_repeating_it(settings: Any) -> None:
    text = entra_toml("https://graph.microsoft.com", api_extra=f'client_secret = "{CLIENT_SECRET}"\n')
    with pytest.raises(ConfigError) as caught:
        apply(text)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if ln.startswith("client_secret ="))
    message = str(caught.value)
    assert f"connections.toml:{line + USERS_TOML.count(chr(10))}:" in message
    assert "api.client_secret" in message and "client_secret_env" in message
    assert CLIENT_SECRET not in message
    assert sql("SELECT count(*) FROM sync.connections WHERE name = 'entra-users'")[0][0] == 0


def test_an_api_source_needs_its_api_table_and_its_vendors_keys() -> None:
    text = USERS_TOML + '\n[[connections]]\nname = "sf"\nkind = "users"\nsource = "salesforce"\n'
    text += '[connections.mapping]\nemail = "Email"\n'
    with pytest.raises(ConfigError, match=r"source: source 'salesforce' needs a \[connections.api\] table"):
        load_connections_toml(text)
    without_tenant = entra_toml("https://graph.microsoft.com").replace(f'tenant = "{TENANT}"\n', "")
    without_tenant = without_tenant.replace('token_url = "https://graph.microsoft.com', 'scope = "x')
    with pytest.raises(ConfigError) as caught:
        load_connections_toml(USERS_TOML + without_tenant)
    assert "api.tenant: source 'msgraph' needs tenant" in str(caught.value)
    with pytest.raises(ConfigError, match=r"api: \[connections.api\] is only read with source"):
        load_connections_toml(USERS_TOML + entra_toml("https://x.example").replace('source = "msgraph"\n', ""))


def test_api_connections_take_no_files_so_their_paths_overlap_nothing(pipeline: Pipeline, graph: Served) -> None:
    # Neither names a path: both have the users kind's default, the folder of hr-users' files.
    second = entra_toml(graph.url).replace('name = "entra-users"', 'name = "entra-other"')
    assert [r[1] for r in apply(entra_toml(graph.url) + second)] == ["unchanged", "created", "created"]
    run_id = pipeline.import_files(("import/user/internal/a.csv", HEADER + "ann@x.com,Ann,A,,Ops\n"))
    assert sql("SELECT connection_name, status FROM sync.runs WHERE id = %s", (run_id,)) == [("hr-users", "completed")]
    assert graph.vendor.token_requests() == []
    plain = '\n[[connections]]\nname = "more-files"\nkind = "users"\n[connections.mapping]\nemail = "Email"\n'
    with pytest.raises((ConfigError, CommandError), match="overlaps"):
        apply(plain)


def test_the_commented_api_examples_are_valid_connections_once_uncommented() -> None:
    text = (Path(__file__).resolve().parents[2] / "examples" / "connections.toml").read_text()
    block = text[text.index('# [[connections]]\n# name = "entra-users"') :]
    lines = [ln.removeprefix("# ") for ln in block.splitlines()]
    toml = "\n".join(ln for ln in lines if re.match(r'^(\[|"?[\w.]+"?\s*=)', ln))  # the prose lines left out
    found = {c.name: c for c in load_connections_toml(toml)}
    assert [(n, c.kind, getattr(c, "source", None)) for n, c in found.items()] == [
        ("entra-users", "users", "msgraph"),
        ("sf-contacts", "users", "salesforce"),
        ("workday-workers", "users", "workday"),
        ("workday-report", "users", "workday_raas"),
        ("workday-hr", "hierarchy", "workday"),
        ("skills-to-workday", "skills_export", None),
        ("linkedin", "linkedin_learning", None),
    ]


def test_an_undo_of_a_fetched_run_reads_its_journal_and_pulls_nothing(pipeline: Pipeline, graph: Served) -> None:
    from producers.undo import start_undo

    apply(entra_toml(graph.url))
    run = sync(pipeline)
    assert run["journaled"], "a users run is journaled: it can be undone"
    requests = len(graph.vendor.api_requests())

    undo_id = start_undo(run["run_id"])
    pipeline.drain()

    # Undoing 250 creations takes 250 people away: over max_deactivate, so it waits like any run.
    assert sql("SELECT trigger, status FROM sync.runs WHERE id = %s", (undo_id,)) == [("undo", "awaiting_approval")]
    assert len(graph.vendor.api_requests()) == requests
    assert sql("SELECT count(*) FROM sync.feed_files")[0][0] == 1
    assert sql("SELECT count(*) FROM sync.stage_runs WHERE run_id = %s AND stage = 'fetch'", (undo_id,)) == [(0,)]


@pytest.mark.parametrize("bulk", [False, True], ids=["rest", "bulk"])
def test_salesforce_contacts_import_through_the_fetch_stage(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, bulk: bool
) -> None:
    from tests.api_vendors import SalesforceVendor
    from tests.apidata import contacts

    monkeypatch.setenv("SF_CLIENT_SECRET", CLIENT_SECRET)
    with Served(SalesforceVendor(people=contacts(250))) as org:
        apply(f"""
[[connections]]
name = "sf-contacts"
kind = "users"
source = "salesforce"
[connections.mapping]
email = "Email"
first_name = "FirstName"
manager = "ReportsTo.Email"
[connections.api]
client_id = "{CLIENT_ID}"
client_secret_env = "SF_CLIENT_SECRET"
token_url = "{org.url}/services/oauth2/token"
backoff_s = 0.01
bulk_poll_s = 0.05
{"bulk_threshold = 100" if bulk else ""}
""")
        run_id = start_sync(pipeline.settings, "sf-contacts")
        pipeline.drain()
        assert any("/jobs/query" in s.path for s in org.vendor.api_requests()) == bulk

    run = queries.run_detail(run_id)
    assert run is not None and run["status"] == "completed", run and run["error"]
    assert (run["details"]["fetched_records"], run["counts"]["created"]) == (250, 250)
    links = dict(sql("SELECT u.email, m.email FROM lms.users u LEFT JOIN lms.users m ON m.id = u.manager_id"))
    assert links["contact9@example.org"] == "contact2@example.org" and links["contact0@example.org"] is None
    ((path,),) = sql("SELECT original_path FROM sync.feed_files")
    assert path.startswith("api/salesforce/sf-contacts-")
