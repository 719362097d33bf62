"""``[connections.workday]`` in a connections file: a password is never written in it, the table
goes with the Workday sources only, and the user is sent as ``user@tenant``."""

from __future__ import annotations

import pytest

from schemas.connections import ConfigError, load_connections_toml
from schemas.kinds.users import UsersConnection
from tests.workday_server import TENANT
from tests.workdaydata import config, workday_toml


def problem(text: str) -> str:
    with pytest.raises(ConfigError) as failed:
        load_connections_toml(text)
    return str(failed.value)


def test_a_workday_connection_loads_with_its_defaults() -> None:
    (conn,) = load_connections_toml(workday_toml("https://wd3-impl-services1.workday.com"))
    assert isinstance(conn, UsersConnection)
    assert conn.source == "workday" and conn.fetched
    wd = conn.workday
    assert wd is not None and wd.version == "v40.1" and wd.user == f"ISU_feedsync@{TENANT}"
    assert wd.service_url("Human_Resources") == (
        "https://wd3-impl-services1.workday.com/ccx/service/contoso4/Human_Resources/v40.1"
    )


def test_a_password_written_in_the_file_is_refused_without_repeating_it() -> None:
    text = workday_toml("https://wd3-impl-services1.workday.com", workday_extra='password = "hunter2-secret"')
    message = problem(text)
    assert "password is never written in the connections file" in message and "hunter2-secret" not in message


def test_the_workday_table_goes_with_a_workday_source_only() -> None:
    text = workday_toml("https://wd3-impl-services1.workday.com").replace('source = "workday"', 'source = "files"')
    assert "[connections.workday] is only read with source = 'workday' or 'workday_raas'" in problem(text)


def test_a_raas_source_needs_a_report_url_on_the_tenants_host() -> None:
    text = workday_toml("https://wd3-impl-services1.workday.com")
    text = text.replace('source = "workday"', 'source = "workday_raas"')
    assert "source 'workday_raas' needs report_url" in problem(text)
    elsewhere = 'report_url = "https://reports.example.com/ccx/service/customreport2/contoso4/isu/Workers?format=json"'
    assert "report_url is not on base_url's host" in problem(
        workday_toml("https://wd3-impl-services1.workday.com", workday_extra=elsewhere)
    )


def test_a_user_with_a_tenant_is_sent_as_written() -> None:
    assert config("https://h.example", username="isu@other").user == "isu@other"


def test_only_a_skills_export_sends_to_workday() -> None:
    table = '[connections.workday]\nbase_url = "https://h.example"\ntenant = "t"\nusername = "u"\npassword_env = "P"\n'
    text = f'[[connections]]\nname = "tr"\nkind = "transcript_export"\n{table}'
    assert "[connections.workday] on an export sends skills: it applies to skills_export only" in problem(text)
    (conn,) = load_connections_toml(text.replace("transcript_export", "skills_export"))
    assert conn.kind == "skills_export"
