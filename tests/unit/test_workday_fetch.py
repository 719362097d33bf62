"""The Workday sources against a tenant of ours (tests/workday_server.py) that speaks Get_Workers
over SOAP with a WS-Security UsernameToken and serves a RaaS report: what it is sent (criteria,
paging on one snapshot, only the Response_Group the mapping needs) and what is written."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from schemas.settings import Settings
from tests.apidata import read
from tests.workday_server import PASSWORD, Served, Tenant, workers
from tests.workdaydata import MAPPING, spec
from workers.http import FetchError
from workers.sources import fetch
from workers.sources.preview import preview


@pytest.fixture
def wd_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("WORKDAY_PASSWORD", PASSWORD)
    return Settings(drop_dir=tmp_path / "drop", store_dir=tmp_path / "store", keys_dir=tmp_path / "keys")


@pytest.fixture
def tenant() -> Iterator[Served]:
    with Served(Tenant(people=workers(1000))) as served:
        yield served


def test_three_pages_of_one_snapshot_are_written_with_managers_as_emails(
    tenant: Served, wd_settings: Settings, tmp_path: Path
) -> None:
    result = fetch(spec(tenant.url), wd_settings, tmp_path / "users.csv")

    rows = read(result.path)
    assert rows[0] == list(MAPPING.values())
    assert (result.rows, result.pages, result.requests) == (1000, 3, 3)
    by_mail = {r[0]: r for r in rows[1:]}
    assert len(by_mail) == 1000 and not any(m.startswith("cw") for m in by_mail), "contingent workers excluded"
    # worker 7 reports to worker 1, whose manager (worker 0) comes first in the chain: [last()] is the immediate one.
    assert by_mail["worker7@contoso.example"] == [
        "worker7@contoso.example",
        "Given7",
        "Family7",
        "worker1@contoso.example",
        "ACTIVE",
        "21007",
        "Engineer",
    ]
    assert by_mail["worker0@contoso.example"][3] == "", "the top of the tree has no manager"
    assert by_mail["worker999@contoso.example"][3] == "worker199@contoso.example", "a manager on an earlier page"
    assert by_mail["worker1@contoso.example"][3] == "worker0@contoso.example"
    assert sorted(m for m, r in by_mail.items() if r[4] == "INACTIVE") == sorted(
        f"worker{i}@contoso.example" for i in range(10, 20)
    )
    seen = tenant.tenant.seen
    assert tenant.tenant.problems == []
    assert [s["page"] for s in seen] == [1, 2, 3] and {s["count"] for s in seen} == {400}
    assert len({s["as_of"] for s in seen}) == 1, "every page is read as of one moment"
    assert seen[0]["criteria"] == {
        "Exclude_Inactive_Workers": False,
        "Exclude_Employees": False,
        "Exclude_Contingent_Workers": True,
    }
    assert seen[0]["group"] == {
        "Include_Reference",
        "Include_Personal_Information",
        "Include_Employment_Information",
        "Include_Management_Chain_Data",
    }


def test_only_the_parts_the_mapping_reads_are_asked_for(tenant: Served, wd_settings: Settings, tmp_path: Path) -> None:
    mapping = {"email": MAPPING["email"], "first_name": MAPPING["first_name"]}
    result = fetch(spec(tenant.url, mapping, exclude_inactive_workers=True), wd_settings, tmp_path / "users.csv")

    assert result.rows == 990, "inactive workers excluded by Workday"
    assert tenant.tenant.seen[0]["group"] == {"Include_Reference", "Include_Personal_Information"}
    assert tenant.tenant.seen[0]["criteria"]["Exclude_Inactive_Workers"] is True


def test_a_bad_password_is_one_sentence_and_writes_nothing(
    tenant: Served,
    wd_settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("WORKDAY_PASSWORD", "not-the-password")
    caplog.set_level(logging.DEBUG)

    with pytest.raises(FetchError) as failed:
        fetch(spec(tenant.url), wd_settings, tmp_path / "users.csv")

    assert str(failed.value) == (
        "workday-workers: Workday refused the user ISU_feedsync@contoso4 or its password (SOAP fault "
        "Client.authenticationError): check username and the password in WORKDAY_PASSWORD"
    )
    assert not (tmp_path / "users.csv").exists() and not list(tmp_path.glob(".users.csv*"))
    assert len(tenant.tenant.seen) == 0, "refused before Get_Workers was read"
    assert "not-the-password" not in caplog.text


def test_a_missing_password_variable_is_named(
    tenant: Served, wd_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WORKDAY_PASSWORD")
    with pytest.raises(FetchError, match="the environment variable WORKDAY_PASSWORD \\(password_env\\) is not set"):
        fetch(spec(tenant.url), wd_settings, tmp_path / "users.csv")
    assert tenant.tenant.seen == []


def test_a_path_outside_the_worker_is_refused_before_any_request(
    tenant: Served, wd_settings: Settings, tmp_path: Path
) -> None:
    mapping = {**MAPPING, "cost_center": "Cost_Center/ID"}
    with pytest.raises(FetchError, match="the mapped path 'Cost_Center/ID' starts with 'Cost_Center'"):
        fetch(spec(tenant.url, mapping), wd_settings, tmp_path / "users.csv")
    assert tenant.tenant.seen == []


def test_more_workers_than_max_records_stops_after_the_first_page(
    tenant: Served, wd_settings: Settings, tmp_path: Path
) -> None:
    with pytest.raises(FetchError, match=r"Workday holds 1000 workers, more than max_records \(500\)"):
        fetch(spec(tenant.url, max_records=500), wd_settings, tmp_path / "users.csv")
    assert len(tenant.tenant.seen) == 1


def test_a_raas_report_is_read_with_basic_auth(tenant: Served, wd_settings: Settings, tmp_path: Path) -> None:
    tenant.tenant.report = [
        {"Email": f"r{i}@contoso.example", "First_Name": f"R{i}", "Manager_Email": "r0@contoso.example" if i else ""}
        for i in range(30)
    ]
    url = f"{tenant.url}/ccx/service/customreport2/contoso4/ISU_feedsync/Learning_Workers?format=json"
    mapping = {"email": "Email", "first_name": "First_Name", "manager": "Manager_Email"}

    result = fetch(spec(tenant.url, mapping, "workday_raas", report_url=url), wd_settings, tmp_path / "users.csv")

    rows = read(result.path)
    assert rows[0] == ["Email", "First_Name", "Manager_Email"]
    assert rows[1:3] == [["r0@contoso.example", "R0", ""], ["r1@contoso.example", "R1", "r0@contoso.example"]]
    assert (result.rows, result.pages) == (30, 1)
    assert tenant.tenant.problems == []


def test_a_preview_reads_the_first_page_only(tenant: Served, wd_settings: Settings) -> None:
    found = preview(spec(tenant.url), MAPPING, wd_settings)

    assert (found.records, found.more) == (400, True)
    assert [s["page"] for s in tenant.tenant.seen] == [1]
    assert found.missing == [] and found.rows[1]["manager"] == "wo***", "managers resolved within the page"


def test_paths_choose_among_repeated_elements_by_a_deeper_condition_and_read_attributes(
    tenant: Served, wd_settings: Settings, tmp_path: Path
) -> None:
    work = (
        "Personal_Data/Contact_Data/Email_Address_Data[Usage_Data/Type_Data/Type_Reference/"
        "ID[@type='Communication_Usage_Type_ID']='WORK']/Email_Address"
    )
    home = "Personal_Data/Contact_Data/Email_Address_Data[Usage_Data/Type_Data/Type_Reference/ID='HOME']/Email_Address"
    formatted = "Personal_Data/Name_Data/Legal_Name_Data/Name_Detail_Data/@Formatted_Name"
    mapping = {"email": work, "home_email": home, "full_name": formatted}

    result = fetch(spec(tenant.url, mapping), wd_settings, tmp_path / "users.csv")

    rows = read(result.path)
    assert rows[0] == [work, home, formatted]
    assert rows[8] == ["worker7@contoso.example", "", "Given7 Family7"], "no HOME address: an empty cell"


def test_a_path_that_is_not_one_is_refused_naming_it(tenant: Served, wd_settings: Settings, tmp_path: Path) -> None:
    mapping = {**MAPPING, "broken": "Personal_Data/Name_Data[=="}
    with pytest.raises(FetchError, match="the mapped path 'Personal_Data/Name_Data\\[==' is not a path such as"):
        fetch(spec(tenant.url, mapping), wd_settings, tmp_path / "users.csv")
    assert tenant.tenant.seen == []


def test_a_500_without_a_fault_is_tried_again_and_an_answer_with_a_dtd_is_refused_unread(
    tenant: Served, wd_settings: Settings, tmp_path: Path
) -> None:
    tenant.tenant.planned = [(500, b"<html><body>proxy error</body></html>"), (502, b"Bad Gateway")]
    result = fetch(spec(tenant.url), wd_settings, tmp_path / "users.csv")
    assert (result.rows, result.requests) == (1000, 5), "two failed answers, then the 3 pages"

    bomb = b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]><env:Envelope>&lol;</env:Envelope>'
    tenant.tenant.planned = [(200, bomb)]
    with pytest.raises(FetchError, match="the answer holds a DTD, which a SOAP message never does"):
        fetch(spec(tenant.url), wd_settings, tmp_path / "again.csv")
    assert not (tmp_path / "again.csv").exists()
