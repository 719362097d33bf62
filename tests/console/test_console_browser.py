"""The console in a real browser: Debian's headless Chromium driven by Playwright, the console
served on a free 127.0.0.1 port in this process, the pipeline on the stub broker. Screenshots of
the main pages are written to docs/ (the README shows them)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import db_today, feedsync
from tests.console.browsing import browser_page, shot, sign_in
from tests.data import apply, people
from tests.stubpipeline import Pipeline

FEED = "import/user/internal/"

pytestmark = pytest.mark.slow
__all__ = ["browser_page"]  # the fixture, used by name


def test_an_admin_signs_in_starts_an_on_demand_run_and_sees_it_complete_without_reloading(
    console: Any, pipeline: Pipeline, browser_page: Any
) -> None:
    page = browser_page
    apply("retention_days = 30\n")
    today = db_today()  # the database's date: an on-demand start date is judged by its clock
    pipeline.drop(f"{FEED}users-{today:%Y%m%d}.csv", people(5) + "not-an-email,X,Y,,S\n=1+2,Z,W,,S\n")
    sign_in(page)
    assert page.locator(".tile h2", has_text="hr-users").is_visible()
    page.click("text=hr-users")
    page.wait_for_url("**/connections/hr-users")
    page.fill("#since", today.isoformat())
    page.check("input[name=access][value=exclusive]")
    page.click("#sync-form button[type=submit]")
    page.wait_for_url("**/runs/*")
    # Marked after the run page loaded: a reload would lose the mark.
    page.evaluate("window.__notReloaded = true")
    page.locator("#live .status", has_text="completed with errors").wait_for(timeout=60_000)
    assert page.evaluate("window.__notReloaded") is True
    assert page.locator("#live").get_attribute("data-poll") is None  # polling stopped
    assert "exclusive" in page.inner_text("main")
    shot(page, "run")
    run_id = page.url.rsplit("/", 1)[1]
    # The error report, downloaded, is the CLI's, byte for byte.
    with page.expect_download() as d:
        page.click("a[href$='errors.csv']")
    downloaded = Path(d.value.path()).read_text(encoding="utf-8")
    cli = feedsync("errors", run_id, "--csv").stdout
    assert list(csv.reader(io.StringIO(downloaded))) == list(csv.reader(io.StringIO(cli)))
    assert "'=1+2" in downloaded
    page.goto(f"/runs/{run_id}/errors")
    shot(page, "errors")
    page.goto("/runs")
    assert page.locator(".warn").first.is_visible()
    shot(page, "execution-status")
    page.goto("/connections/hr-users")
    shot(page, "connection")
    page.goto("/connections")
    assert "completed with errors" in page.inner_text(".tile")
    shot(page, "connections")


def test_an_admin_approves_a_held_full_feed_in_the_browser(console: Any, pipeline: Pipeline, browser_page: Any) -> None:
    page = browser_page
    apply("full_feed = true\n")
    pipeline.import_files((FEED + "day1.csv", people(20)))
    held = pipeline.import_files((FEED + "day2.csv", people(10)))
    sign_in(page)
    page.goto(f"/runs/{held}")
    assert "Waiting for approval" in page.inner_text(".plan")
    shot(page, "approval")
    page.once("dialog", lambda dialog: dialog.accept())  # Approve asks to confirm
    page.click("button:has-text('Approve')")
    page.wait_for_url(f"**/runs/{held}")
    pipeline.drain()
    page.locator("#live .status", has_text="completed").wait_for(timeout=60_000)
    assert "Approved by console:ada" in page.inner_text("main")


def test_an_admin_uploads_a_file_and_sees_its_run(
    console: Any, pipeline: Pipeline, browser_page: Any, tmp_path: Path
) -> None:
    from producers import registry

    page = browser_page
    feed = tmp_path / "users-upload.csv"
    feed.write_text(people(4))
    sign_in(page)
    page.goto("/connections/hr-users")
    page.set_input_files("input[type=file]", str(feed))
    page.click("button:has-text('Upload')")
    page.wait_for_url("**/connections/hr-users?uploaded=1")
    assert "1 file(s) placed" in page.inner_text("main")
    registry.scan(pipeline.settings)  # what the watcher does with the file
    pipeline.drain()
    page.reload()
    row = page.locator("table.runs tbody tr").first
    assert "file drop" in row.inner_text() and "completed" in row.inner_text()


def test_a_viewer_sees_the_pages_without_any_action(console: Any, pipeline: Pipeline, browser_page: Any) -> None:
    page = browser_page
    pipeline.import_files((FEED + "a.csv", people(2)))
    sign_in(page, "vic")
    page.goto("/connections/hr-users")
    assert page.locator("#sync-form").count() == 0 and page.locator("button:has-text('Upload')").count() == 0
    page.goto("/audit")
    assert "sign in" in page.inner_text("table")
    shot(page, "audit")


def test_an_admin_replays_a_dead_letter_after_confirming_and_the_run_completes(
    console: Any, pipeline: Pipeline, browser_page: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from producers import queries
    from tests.data import FEED as TWO_PEOPLE
    from workers import failpoints

    pipeline.settings.max_attempts = 2
    failpoints.reset()
    monkeypatch.setenv("FEEDSYNC_FAILPOINTS", "transform.start=raise")
    run_id = pipeline.import_files((FEED + "a.csv", TWO_PEOPLE), expect_failures=True)
    failpoints.reset()
    monkeypatch.setenv("FEEDSYNC_FAILPOINTS", "")  # the cause is fixed
    page = browser_page
    sign_in(page)
    page.goto("/dead-letters")
    shot(page, "dead-letters")
    page.click("button:has-text('Replay…')")
    assert "would replay" in page.inner_text("td.outcome")
    assert queries.run_detail(run_id)["status"] == "failed"  # type: ignore[index]
    page.click("button:has-text('Confirm replay')")
    page.locator("td.outcome", has_text="replayed").wait_for()
    pipeline.drain(expect_failures=True)
    page.click(f"a[href='/runs/{run_id}']")
    page.locator("#live .status", has_text="completed").wait_for(timeout=60_000)
    assert "replay" in page.inner_text("main")
