"""New connection in the console, as ALM admins set one up: a template CSV, its columns mapped with
drop-downs, the mapping checked as `connections apply` checks a file, secrets only as environment
variable names, a dry-run preview that writes nothing, and a save that writes the console's
connections file (comments kept), applies it and shows the diff."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from schemas.connections import UsersConnection, load_connections_toml
from tests.conftest import sql
from tests.console.conftest import form_token
from tests.stubpipeline import Pipeline

TEMPLATE = (
    "Employee E-mail,Given Name,Surname,Manager Email,Cost Center\n"
    "ann@x.com,Ann,Ames,,CC-1\n"
    "bob@x.com,Bob,Bell,ann@x.com,CC-2\n"
    "not-an-address,Cy,Cole,ann@x.com,CC-2\n"
)
#: The mapping form for TEMPLATE: e-mail, names, manager and a profile attribute.
MAPPED = {"col0": "email", "col1": "first_name", "col2": "last_name", "col3": "manager", "col4": "profile:"}

STATE_TABLES = ("sync.connections", "sync.runs", "sync.feed_files", "sync.console_changes", "lms.users")


def upload(client: TestClient, body: str = TEMPLATE, name: str = "crm-users") -> Any:
    token = form_token(client, "/connections/new")
    return client.post(
        "/connections/new",
        data={"csrf": token, "name": name, "kind": "users", "delimiter": ",", "encoding": "utf-8"},
        files={"template": ("crm-template.csv", body.encode(), "text/csv")},
        follow_redirects=False,
    )


def mapping_page(client: TestClient) -> str:
    r = upload(client)
    assert r.status_code == 303, r.text
    return str(r.headers["location"])


def send(client: TestClient, url: str, action: str, **fields: str) -> Any:
    data = {"csrf": form_token(client, url), "name": "crm-users", "action": action, **MAPPED, **fields}
    return client.post(url, data={k: v for k, v in data.items() if v is not None}, follow_redirects=False)


def counts() -> list[int]:
    return [sql(f"SELECT count(*) FROM {t}")[0][0] for t in STATE_TABLES]  # noqa: S608  (our own table names)


def test_the_mapping_page_shows_each_column_with_samples_a_guess_and_the_required_attributes(
    as_admin: TestClient, console_file: Path
) -> None:
    page = as_admin.get(mapping_page(as_admin)).text
    assert "Employee E-mail" in page and "ann@x.com · bob@x.com · not-an-address" in page
    assert re.search(r'<option value="email" selected>email \*', page), "the e-mail column is guessed, and required"
    assert "CC-1 · CC-2" in page and "profile attribute cost_center" in page


def test_a_mapping_without_the_required_email_is_refused_beside_the_columns_as_apply_refuses_it(
    as_admin: TestClient, console_file: Path
) -> None:
    url = mapping_page(as_admin)
    r = send(as_admin, url, "save", col0="")
    assert r.status_code == 400
    assert "mapping must name the feed column for &#39;email&#39;, the key users are matched on" in r.text
    twice = send(as_admin, url, "save", col2="first_name")
    assert twice.status_code == 400 and "first_name is chosen for two columns" in twice.text
    bad = send(as_admin, url, "save", max_deactivate="lots")
    assert bad.status_code == 400 and "&#39;lots&#39; is not a threshold" in bad.text
    assert not console_file.exists() and sql("SELECT count(*) FROM sync.connections") == [(0,)]


def test_a_literal_secret_is_refused_and_never_shown_again(as_admin: TestClient, console_file: Path) -> None:
    url = mapping_page(as_admin)
    sftp = {"sftp_host": "sftp.hr.example.com", "sftp_user": "lms", "sftp_host_key": "ssh-ed25519 AAAA"}
    r = send(as_admin, url, "save", sftp_password_env="Winter2026!secret", **sftp)  # noqa: S106  (the literal secret the page must refuse)
    assert r.status_code == 400
    assert "does not look like an environment variable" in r.text
    assert "Winter2026!secret" not in r.text
    key = send(as_admin, url, "save", sftp_key_file="-----BEGIN OPENSSH PRIVATE KEY-----", **sftp)
    assert key.status_code == 400 and "never the key itself" in key.text and "BEGIN OPENSSH" not in key.text
    assert not console_file.exists()


def test_the_dry_run_preview_maps_the_first_rows_and_writes_nothing(as_admin: TestClient, console_file: Path) -> None:
    url = mapping_page(as_admin)
    before = counts()
    r = send(as_admin, url, "preview")
    assert r.status_code == 200
    assert "Dry run: the first rows of crm-template.csv" in r.text
    rows = re.findall(r"<tr><td>(\d+)</td>", r.text)
    assert rows == ["2", "3", "4"]
    assert "&#39;Employee E-mail&#39; (email) is not an e-mail address" in r.text
    assert "<th>cost_center</th>" in r.text
    assert counts() == before and not console_file.exists()


def test_saving_writes_the_console_file_keeping_its_comments_applies_it_and_shows_the_diff(
    as_admin: TestClient, pipeline: Pipeline, console_file: Path, settings: Any
) -> None:
    console_file.parent.mkdir()
    console_file.write_text("# Owned by the console; reviewed weekly by IT\n")
    url = mapping_page(as_admin)
    r = send(
        as_admin,
        url,
        "save",
        path="crm/*.csv",
        full_feed="on",
        max_deactivate="5%",
        schedule_enabled="on",
        start_date="2026-12-01",
        start_time="04:00",
        every="1",
    )
    assert r.status_code == 303, r.text
    page = as_admin.get(r.headers["location"]).text
    written = console_file.read_text()
    assert written.startswith("# Owned by the console; reviewed weekly by IT\n")
    config = {c.name: c for c in load_connections_toml(written)}["crm-users"]
    assert config.model_dump(include={"path", "full_feed", "max_deactivate"}) == {
        "path": "crm/*.csv",
        "full_feed": True,
        "max_deactivate": "5%",
    }
    assert isinstance(config, UsersConnection)
    assert config.mapping == {
        "email": "Employee E-mail",
        "first_name": "Given Name",
        "last_name": "Surname",
        "manager": "Manager Email",
        "cost_center": "Cost Center",
    }
    assert "+name = &#34;crm-users&#34;" in page and "+[connections.mapping]" in page
    assert sql("SELECT source_file FROM sync.connections WHERE name = 'crm-users'") == [(str(console_file),)]
    assert sql("SELECT every_days FROM sync.schedules") == [(1,)]
    assert sql("SELECT changed_by, source_file, settings FROM sync.console_changes") == [
        ("console:ada", str(console_file), ["(new connection)"])
    ]
    # The connection's page shows the whole effective configuration, defaults included.
    assert "Effective configuration" in page
    for default in ("on_threshold", "<code>hold</code>", "encoding", "<code>utf-8</code>", "empty_erases"):
        assert default in page
    # The draft (the template's rows) is gone once saved.
    assert list((settings.store_dir / "console-setup").iterdir()) == []
    assert as_admin.get(url).status_code == 404


def test_a_viewer_cannot_start_a_setup(as_viewer: TestClient, console_file: Path) -> None:
    assert as_viewer.get("/connections/new").status_code == 403
    assert 'href="/connections/new"' not in as_viewer.get("/connections").text
