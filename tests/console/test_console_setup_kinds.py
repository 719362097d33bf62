"""New connection for every kind: users is mapped column by column; a kind whose columns its
provider fixes (hmm, getabstract) has its template checked against the columns the kind reads and
no mapping step; every other kind is named on the page as set up in a connections file, with the
README section that says how, and is never offered as a form that cannot work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncssh
from starlette.testclient import TestClient

from producers.console import setupform
from schemas.connections import load_connections_toml
from tests.conftest import sql
from tests.console.conftest import form_token, text_of
from tests.kindsamples import SAMPLES
from workers import connectors

HMM_METADATA = "hmm12_metadata.csv"
GA_REPORT = "report_export_2026_01_01.xlsx"


def upload(client: TestClient, kind: str, file_name: str, body: str | bytes, name: str = "provider") -> Any:
    token = form_token(client, "/connections/new")
    data = body.encode() if isinstance(body, str) else body
    return client.post(
        "/connections/new",
        data={"csrf": token, "name": name, "kind": kind, "delimiter": ",", "encoding": "utf-8"},
        files={"template": (file_name, data, "application/octet-stream")},
        follow_redirects=False,
    )


def test_every_registered_kind_is_set_up_on_the_page_or_named_as_set_up_in_a_file(as_admin: TestClient) -> None:
    registered = {k.NAME for k in connectors.kinds()}
    in_file = setupform.in_file()
    assert set(setupform.KINDS) | set(setupform.FIXED) | set(in_file) | set(setupform.exports()) == registered
    assert not set(in_file) & set(setupform.offered()) and {"hierarchy", "xapi"} <= set(in_file)
    page = as_admin.get("/connections/new").text
    offered = {v for v in setupform.offered() if f'<option value="{v}"' in page}
    assert offered == {"users", "hmm", "getabstract"}
    for kind in in_file:
        assert f'<option value="{kind}"' not in page
        assert f"<code>{kind}</code>: README" in page
    assert "xAPI activity: CSV rows become xAPI 1.0.3 statements" in text_of(page)
    for kind in setupform.exports():
        assert f'<option value="{kind}"' not in page and f'href="/connections/new/export/{kind}"' in page


def test_a_kind_set_up_in_a_file_is_refused_with_where_to_read_how(as_admin: TestClient, console_file: Path) -> None:
    r = upload(as_admin, "xapi", "a.csv", "Email,Verb\n")
    assert r.status_code == 400
    assert "a xapi connection is set up in a connections file: see the README, xAPI activity" in text_of(r.text)
    assert not console_file.exists()


def test_a_providers_template_goes_to_the_settings_without_a_mapping_and_saves(
    as_admin: TestClient, console_file: Path, settings: Any
) -> None:
    r = upload(as_admin, "hmm", HMM_METADATA, str(SAMPLES["hmm"].first[HMM_METADATA]), name="hmm")
    assert r.status_code == 303, r.text
    url = r.headers["location"]
    page = as_admin.get(url).text
    assert "There is nothing to map" in page
    assert "Map the columns" not in page and 'value="preview"' not in page and "Max deactivate" not in page
    token = form_token(as_admin, url)
    saved = as_admin.post(
        url,
        data={"csrf": token, "name": "hmm", "action": "save", "path": "import/hmm/*.csv", "trigger": "on_schedule"},
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text
    (config,) = load_connections_toml(console_file.read_text())
    assert (config.name, config.kind, config.trigger) == ("hmm", "hmm", "on_schedule")
    assert "mapping" not in console_file.read_text()
    assert sql("SELECT kind FROM sync.connections WHERE name = 'hmm'") == [("hmm",)]


def test_an_xlsx_report_is_checked_against_the_columns_getabstract_reads(
    as_admin: TestClient, console_file: Path
) -> None:
    good = upload(as_admin, "getabstract", GA_REPORT, SAMPLES["getabstract"].first[GA_REPORT], name="ga")
    assert good.status_code == 303, good.text
    assert "There is nothing to map" in as_admin.get(good.headers["location"]).text
    ((name, body),) = SAMPLES["getabstract"].bad_header.items()
    bad = upload(as_admin, "getabstract", name, body, name="ga")
    assert bad.status_code == 400
    said = text_of(bad.text)
    assert name in said and "line 1" in said and "dataId" in said, said


def test_a_template_lacking_a_column_the_kind_reads_is_refused_naming_the_file_line_and_column(
    as_admin: TestClient, console_file: Path
) -> None:
    ((name, body),) = SAMPLES["hmm"].bad_header.items()
    r = upload(as_admin, "hmm", name, body)
    assert r.status_code == 400
    said = text_of(r.text)
    assert name in said and "line 1" in said and "Topic Code" in said, said
    renamed = upload(as_admin, "hmm", "metadata.csv", str(SAMPLES["hmm"].first[HMM_METADATA]))
    assert renamed.status_code == 400 and "metadata.csv" in text_of(renamed.text)
    assert not console_file.exists()


def export_form(client: TestClient, kind: str, **fields: str) -> Any:
    url = f"/connections/new/export/{kind}"
    page = client.get(url)
    assert page.status_code == 200 and "Save connection" in page.text and "Map the columns" not in page.text
    data = {"csrf": form_token(client, url), "name": "transcripts", "schedule_enabled": "on", **fields}
    return client.post(url, data=data, follow_redirects=False)


def test_an_export_is_set_up_with_its_destination_and_schedule_and_saved(
    as_admin: TestClient, console_file: Path
) -> None:
    schedule = {"start_date": "2026-12-01", "start_time": "03:00", "every": "1", "every_unit": "days"}
    bad = export_form(as_admin, "transcript_export", timezone="Mars/Olympus", **schedule)
    assert bad.status_code == 400 and "Mars/Olympus" in text_of(bad.text)
    assert not console_file.exists()
    host_key = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    sftp = {"sftp_host": "sftp.alm.example.com", "sftp_user": "lms", "sftp_host_key": host_key}
    secret = export_form(as_admin, "transcript_export", sftp_password_env="hunter2!", **sftp, **schedule)  # noqa: S106  (the literal secret the page must refuse)
    assert secret.status_code == 400 and "hunter2!" not in secret.text
    r = export_form(
        as_admin,
        "transcript_export",
        location="alm",
        timezone="Europe/Berlin",
        line_ends="crlf",
        sftp_password_env="ALM_SFTP_PASSWORD",  # noqa: S106  (a variable's name, not a secret)
        **sftp,
        **schedule,
    )
    assert r.status_code == 303, text_of(r.text)
    (config,) = load_connections_toml(console_file.read_text())
    assert config.model_dump(include={"kind", "location", "timezone", "line_ends"}) == {
        "kind": "transcript_export",
        "location": "alm",
        "timezone": "Europe/Berlin",
        "line_ends": "crlf",
    }
    assert config.sftp is not None and config.sftp.password_env == "ALM_SFTP_PASSWORD"  # noqa: S105
    assert sql("SELECT every_days FROM sync.schedules") == [(1,)]
    assert as_admin.get("/connections/new/export/users").status_code == 404
