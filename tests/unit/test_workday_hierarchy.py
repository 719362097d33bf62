"""A hierarchy connection with ``source = "workday"``: one fetch pulls the supervisory organisations
(Get_Organizations, paged), and the positions and workers (Get_Workers) from a tenant of ours that
checks the WS-Security header, writes the bundle's three files and registers them as the run's
files; from there the run is the run of a dropped bundle. A refused password changes nobody."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

import pytest
from click.testing import CliRunner

from producers import queries
from producers.cli import cli
from producers.commands import start_sync
from schemas.connections import ConfigError, load_connections_toml
from schemas.workday import WorkdayConfig
from tests.apidata import apply
from tests.conftest import sql
from tests.stubpipeline import USERS_TOML, Pipeline
from tests.workday_orgs import Organizations, people, tree
from tests.workday_server import PASSWORD, N, Served, Tenant
from tests.workdaydata import hierarchy_toml
from workers.http import FetchError
from workers.http.soap import WD
from workers.sources.workday_bundle import OrgPath, org_path, organizations_request


@pytest.fixture
def tenant(monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    monkeypatch.setenv("WORKDAY_PASSWORD", PASSWORD)
    wd = Tenant(people=people())
    wd.organizations = Organizations(wd, tree())
    with Served(wd) as served:
        yield served


def sync(pipeline: Pipeline) -> dict[str, Any]:
    run_id = start_sync(pipeline.settings, "workday-hr")
    pipeline.drain(expect_failures=True)
    run = queries.run_detail(run_id)
    assert run is not None
    return {**run, "id": run_id}


def units() -> dict[str, tuple[str, str | None, bool]]:
    rows = sql(
        """SELECT u.external_id, u.name, p.external_id, u.active
           FROM lms.org_units u LEFT JOIN lms.org_units p ON p.id = u.parent_id"""
    )
    return {key: (name, parent, active) for key, name, parent, active in rows}


def test_one_fetch_imports_the_unit_tree_the_positions_and_fifty_workers_with_their_links(
    pipeline: Pipeline, tenant: Served
) -> None:
    apply(hierarchy_toml(tenant.url))

    run = sync(pipeline)

    assert run["status"] == "completed", run.get("error")
    wd = tenant.tenant
    assert wd.problems == []
    orgs = [s for s in wd.seen if s.get("op") == "Get_Organizations"]
    assert [s["page"] for s in orgs] == [1, 2, 3] and {s["count"] for s in orgs} == {5}
    assert {(s["type"], s["include_inactive"], s["hierarchy"]) for s in orgs} == {("SUPERVISORY", "false", True)}
    workers = [s for s in wd.seen if s.get("op") is None]
    assert [s["page"] for s in workers] == list(range(1, 11))
    assert len({s["as_of"] for s in wd.seen}) == 1, "units and workers are read as of one moment"
    assert workers[0]["criteria"]["Exclude_Contingent_Workers"] is True
    assert {"Include_Organizations", "Include_Employment_Information"} <= workers[0]["group"]

    found = units()
    assert len(found) == 13, "the cost centre and the inactive team are not supervisory units of today"
    assert found["SUP-ROOT"] == ("Contoso", None, True)
    assert found["SUP-D1"] == ("Division 1", "SUP-ROOT", True)
    assert found["SUP-D2-T1"] == ("Team 2.1", "SUP-D2", True)
    assert sql("SELECT count(*), count(*) FILTER (WHERE name = 'Role 3') FROM lms.positions") == [(45, 6)]

    people_rows = sql(
        """SELECT u.external_id, u.email, o.external_id, p.external_id, m.external_id
           FROM lms.users u LEFT JOIN lms.org_units o ON o.id = u.org_unit_id
           LEFT JOIN lms.positions p ON p.id = u.position_id LEFT JOIN lms.users m ON m.id = u.manager_id"""
    )
    by_key = {r[0]: r[1:] for r in people_rows}
    assert len(by_key) == 50 and not any(e.startswith("cw") for e, *_ in by_key.values())
    assert by_key["21000"] == ("worker0@contoso.example", "SUP-ROOT", "P-1000", None)
    assert by_key["21007"] == ("worker7@contoso.example", "SUP-D2-T1", "P-1007", "21001")
    assert by_key["21049"] == ("worker49@contoso.example", "SUP-D1-T1", None, "21009")
    assert sum(1 for r in by_key.values() if r[3] is None) == 1

    counts, fetched = run["counts"], run["details"]
    assert counts["read"] == 13 + 45 + 50
    assert fetched["fetched_pages"] == 3 + 10 and fetched["fetch_requests"] == 13
    assert fetched["fetched_records"] == 13 + 45 + 50
    ((stored,),) = sql("SELECT counts FROM sync.runs WHERE id = %s", (run["id"],))
    assert (stored["units_created"], stored["positions_created"], counts["created"]) == (13, 45, 50)
    files = sql("SELECT original_path, status FROM sync.feed_files ORDER BY id")
    assert [PurePosixPath(p).name for p, _ in files] == ["org.csv", "pos.csv", "user.csv"]
    assert all(p.startswith("api/workday/workday-hr-") and s == "imported" for p, s in files)
    assert not sql("SELECT 1 FROM sync.row_errors WHERE run_id = %s", (run["id"],))


def test_a_second_pull_with_two_fifths_of_the_workers_gone_holds_for_approval_and_changes_nobody(
    pipeline: Pipeline, tenant: Served
) -> None:
    apply(hierarchy_toml(tenant.url))
    assert sync(pipeline)["status"] == "completed"
    before = (sql("SELECT external_id, active, manager_id, org_unit_id FROM lms.users ORDER BY 1"), units())
    tenant.tenant.people = tenant.tenant.people[:30]  # 20 of the 50 employees gone (and the contingent ones)

    run = sync(pipeline)

    assert run["status"] == "awaiting_approval", run.get("error")
    assert (sql("SELECT external_id, active, manager_id, org_unit_id FROM lms.users ORDER BY 1"), units()) == before


def test_a_dry_run_pulls_the_bundle_changes_nobody_and_leaves_no_file_waiting(
    pipeline: Pipeline, tenant: Served
) -> None:
    apply(hierarchy_toml(tenant.url))

    run_id = start_sync(pipeline.settings, "workday-hr", dry_run=True)
    pipeline.drain(expect_failures=True)
    run = queries.run_detail(run_id)

    assert run is not None and run["status"] == "completed", run
    assert run["details"]["fetched_records"] == 13 + 45 + 50
    assert sql("SELECT count(*) FROM lms.users") == [(0,)] and units() == {}
    assert sql("SELECT status, removed_at IS NOT NULL FROM sync.feed_files") == [("rejected", True)] * 3
    assert sync(pipeline)["counts"]["created"] == 50


def test_a_refused_password_fails_the_run_in_one_sentence_and_changes_nobody(
    pipeline: Pipeline, tenant: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply(hierarchy_toml(tenant.url))
    assert sync(pipeline)["status"] == "completed"
    before = (sql("SELECT external_id, active, manager_id FROM lms.users ORDER BY 1"), units())
    monkeypatch.setenv("WORKDAY_PASSWORD", "not-the-password")
    tenant.tenant.seen.clear()

    run = sync(pipeline)

    assert run["status"] == "failed"
    assert run["error"] == (
        "workday-hr: Workday refused the user ISU_feedsync@contoso4 or its password (SOAP fault "
        "Client.authenticationError): check username and the password in WORKDAY_PASSWORD"
    )
    assert tenant.tenant.seen == [], "refused before anything was read"
    assert (sql("SELECT external_id, active, manager_id FROM lms.users ORDER BY 1"), units()) == before
    assert not sql("SELECT 1 FROM sync.run_files WHERE run_id = %s", (run["id"],))


def test_a_pull_cut_off_mid_way_fails_the_run_and_registers_no_file(
    pipeline: Pipeline, tenant: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply(hierarchy_toml(tenant.url, workday_extra="max_retries = 1"))
    assert sync(pipeline)["status"] == "completed"
    before = (sql("SELECT external_id, active, manager_id FROM lms.users ORDER BY 1"), units())
    files = sql("SELECT count(*) FROM sync.feed_files")
    wd = tenant.tenant
    answer = Organizations(wd, tree())
    # Page 2 of the organisations is never answered but with 503s (Workday down in the middle of the pull).
    wd.organizations = lambda req: (
        (503, b"") if req.findtext("wd:Response_Filter/wd:Page", namespaces=N) == "2" else answer(req)
    )

    run = sync(pipeline)

    assert run["status"] == "failed"
    assert "Get_Organizations" in run["error"] and "HTTP 503" in run["error"], run["error"]
    assert (sql("SELECT external_id, active, manager_id FROM lms.users ORDER BY 1"), units()) == before
    assert sql("SELECT count(*) FROM sync.feed_files") == files
    assert not (pipeline.settings.store_dir / "fetching" / f"run-{run['id']}").exists()


def test_the_connection_refuses_a_workday_source_without_its_table() -> None:
    text = hierarchy_toml("https://wd3-impl-services1.workday.com")
    without = text[: text.index("[connections.workday]")]
    with pytest.raises(ConfigError, match=r"source 'workday' needs a \[connections.workday\] table"):
        load_connections_toml(USERS_TOML + without)


@pytest.mark.parametrize(
    ("workday_extra", "says"),
    [
        ("exclude_inactive_workers = false", "exclude_inactive_workers = false does not apply to kind hierarchy"),
        ("incremental = true", "incremental does not apply to kind hierarchy: each run pulls the whole bundle"),
    ],
)
def test_the_connection_refuses_workday_settings_a_bundle_cannot_honour(workday_extra: str, says: str) -> None:
    text = hierarchy_toml("https://wd3-impl-services1.workday.com").replace(
        "exclude_inactive_workers = true\n", f"{workday_extra}\n"
    )
    with pytest.raises(ConfigError, match=says):
        load_connections_toml(USERS_TOML + text)


def test_api_check_shows_the_first_workers_through_the_user_files_mapping_and_writes_nothing(
    pipeline: Pipeline, tenant: Served
) -> None:
    apply(hierarchy_toml(tenant.url))

    result = CliRunner().invoke(cli, ["api", "check", "workday-hr"])

    assert result.exit_code == 0, result.output
    second = "2. email=wo***  first_name=Gi***  last_name=Fa***  manager=21***  key=21***  position=P-***  unit=SU***"
    assert second in result.output, "the manager is a worker's key (the hierarchy kind links by key), not an e-mail"
    assert "workday-hr: signed in; first page of workday: 5 records, more pages follow" in result.output
    assert "nothing was written" in result.output
    assert sql("SELECT count(*) FROM lms.users") == [(0,)]


def test_get_organizations_asks_only_for_the_parts_the_org_mapping_reads() -> None:
    config = WorkdayConfig.model_validate(
        {
            "base_url": "https://wd3-impl-services1.workday.com",
            "tenant": "contoso4",
            "username": "ISU",
            "password_env": "WD_PASSWORD",
        }
    )
    moment = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
    flat = [org_path(p, "c") for p in ("Reference_ID", "Name", "Organization_Reference/ID[@type='WID']")]
    tree_paths = [*flat, org_path("Hierarchy_Data/Superior_Organization_Reference/ID", "c")]

    def group(paths: list[OrgPath]) -> list[str]:
        request = organizations_request(config, paths, 2, moment)
        return [el.tag.rpartition("}")[2] for el in request.iterfind(f"{{{WD}}}Response_Group/*")]

    with pytest.raises(FetchError, match=r"^c: the org mapping's path 'Name\[@type' is not a path such as 'Name'"):
        org_path("Name[@type", "c")
    assert group(flat) == []
    assert group(tree_paths) == ["Include_Hierarchy_Data"]
    request = organizations_request(config, flat, 2, moment)
    assert request.findtext(f"{{{WD}}}Response_Filter/{{{WD}}}Page") == "2"
    assert request.findtext(f"{{{WD}}}Response_Filter/{{{WD}}}As_Of_Entry_DateTime") == "2026-12-07T09:30:00Z"


def test_filters_choose_who_of_the_pulled_workers_is_imported_and_leave_units_and_positions_whole(
    pipeline: Pipeline, tenant: Served
) -> None:
    apply(hierarchy_toml(tenant.url, '[connections.filters]\nunder_managers = ["worker1@contoso.example"]\n'))

    run = sync(pipeline)

    assert run["status"] == "completed", run.get("error")
    assert not sql("SELECT 1 FROM sync.row_errors WHERE run_id = %s", (run["id"],))
    below = sql(
        """WITH RECURSIVE t(id) AS (SELECT id FROM lms.users WHERE email = 'worker1@contoso.example'
                                    UNION SELECT u.id FROM lms.users u JOIN t ON u.manager_id = t.id)
           SELECT count(*) FROM t"""
    )[0][0]
    imported = sql("SELECT count(*) FROM lms.users")[0][0]
    assert 1 < below == imported < 50, "worker1 and everyone below them, no one else"
    assert run["details"]["filtered"] == 50 - imported
    ((stored,),) = sql("SELECT counts FROM sync.runs WHERE id = %s", (run["id"],))
    assert (stored["units_created"], stored["positions_created"]) == (13, 45)
