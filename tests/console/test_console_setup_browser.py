"""The admin sets up a users connection in a real browser: a template CSV, the mapping page, its dry
run, save (the console's connections file written and applied, the diff shown); then a schedule
changed in the console, and `connections apply` of the file without that change is refused."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import feedsync, sql
from tests.console.browsing import axe_violations, browser_page, shot, sign_in
from tests.kindsamples import SAMPLES

__all__ = ["browser_page"]

pytestmark = pytest.mark.slow

HMM_METADATA = "hmm12_metadata.csv"

TEMPLATE = (
    "Employee E-mail,Given Name,Surname,Manager Email,Cost Center\n"
    "ann@x.com,Ann,Ames,,CC-1\n"
    "bob@x.com,Bob,Bell,ann@x.com,CC-2\n"
    "not-an-address,Cy,Cole,ann@x.com,CC-2\n"
)


def test_an_admin_sets_up_a_users_connection_from_a_template_and_apply_without_the_change_is_refused(
    console: Any, browser_page: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from schemas.settings import get_settings

    owned = tmp_path / "conf" / "console.connections.toml"
    monkeypatch.setenv("FEEDSYNC_CONSOLE_CONNECTIONS_FILE", str(owned))
    get_settings.cache_clear()
    template = tmp_path / "crm-template.csv"
    template.write_text(TEMPLATE)
    page = browser_page
    sign_in(page)
    page.click("text=New connection")
    page.wait_for_url("**/connections/new")
    page.fill("input[name=name]", "crm-users")
    page.set_input_files("input[name=template]", str(template))
    shot(page, "setup-start")
    page.click("button[type=submit].primary")
    page.wait_for_url("**/connections/new/*")
    # The columns were guessed; the cost center becomes a profile attribute.
    assert page.input_value("#col0") == "email" and page.input_value("#col3") == "manager"
    page.select_option("#col4", "profile:")
    page.fill("input[name=path]", "crm/*.csv")
    page.check("input[name=full_feed]")
    page.fill("input[name=max_deactivate]", "5%")
    page.check("input[name=schedule_enabled]")
    page.fill("input[name=start_date]", "2026-12-01")
    page.fill("input[name=start_time]", "04:00")
    shot(page, "setup-mapping")
    page.click("button[value=preview]")
    page.locator("#preview").wait_for()
    assert "not an e-mail address" in page.inner_text("#preview")
    assert sql("SELECT count(*) FROM sync.connections") == [(0,)], "the dry run wrote nothing"
    assert not owned.exists()
    shot(page, "setup-preview")
    page.click("button[value=save]")
    page.wait_for_url("**/connections/crm-users?change=*")
    assert "+[connections.mapping]" in page.inner_text(".saved")
    assert "Effective configuration" in page.inner_text("main")
    shot(page, "setup-saved")

    # The file as saved (say, the version in git), then a schedule changed in the console.
    before = tmp_path / "crm-before.toml"
    shutil.copy(owned, before)
    page.fill("input[name=every]", "2")
    page.click("text=Save schedule")
    page.wait_for_url("**/connections/crm-users?change=*")
    assert "every_days = 2" in owned.read_text() and "+every_days = 2" in page.inner_text(".saved")
    refused = feedsync("connections", "apply", str(before), check=False)
    assert refused.returncode != 0
    said = "crm-users: this file would undo what the console changed (schedule.every_days;"
    assert said in refused.stderr, refused.stderr
    assert sql("SELECT every_days FROM sync.schedules") == [(2,)]


def test_an_admin_sets_up_a_provider_and_an_export_connection_in_the_browser(
    console: Any, browser_page: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from schemas.settings import get_settings

    owned = tmp_path / "conf" / "console.connections.toml"
    monkeypatch.setenv("FEEDSYNC_CONSOLE_CONNECTIONS_FILE", str(owned))
    get_settings.cache_clear()
    metadata = tmp_path / HMM_METADATA
    metadata.write_text(str(SAMPLES["hmm"].first[HMM_METADATA]))
    page = browser_page
    sign_in(page)
    page.goto(page.url.split("/connections")[0] + "/connections/new")
    assert axe_violations(page) == []
    page.fill("input[name=name]", "hmm")
    page.select_option("select[name=kind]", "hmm")
    page.set_input_files("input[name=template]", str(metadata))
    page.click("button[type=submit].primary")
    page.wait_for_url("**/connections/new/*")
    assert "There is nothing to map" in page.inner_text("main")
    assert axe_violations(page) == []
    shot(page, "setup-provider")
    page.click("button[value=save]")
    page.wait_for_url("**/connections/hmm?change=*")
    page.goto(page.url.split("/connections")[0] + "/connections/new")
    page.click("a[href='/connections/new/export/transcript_export']")
    page.wait_for_url("**/connections/new/export/transcript_export")
    page.fill("input[name=timezone]", "Europe/Berlin")
    assert axe_violations(page) == []
    shot(page, "setup-export")
    page.click("button[type=submit].primary")
    page.wait_for_url("**/connections/transcript-export?change=*")
    assert sql("SELECT name, kind FROM sync.connections ORDER BY name") == [
        ("hmm", "hmm"),
        ("transcript-export", "transcript_export"),
    ]
