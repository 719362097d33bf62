"""The admin's day in a real browser (Debian's chromium, Playwright): sign in, see what needs
attention (a held run and a dead-lettered run), approve with a comment after a confirm, replay the
dead letter; every page passes axe-core (no serious or critical violation) and fits 1280 px, each
table scrolling inside its own box with its status and ⚠ in view. Screenshots go to docs/ when
FEEDSYNC_CONSOLE_SCREENSHOTS=1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import sql
from tests.console.browsing import axe_violations, chromium_page, fits, shot, sign_in
from tests.console.conftest import Served
from tests.data import apply, people, second_users_connection
from tests.historystore import dead_lettered
from tests.stubpipeline import Pipeline

USERS = "import/user/internal/"
WIDTH = 1280

pytestmark = pytest.mark.slow


@pytest.fixture
def page(served: Served) -> Iterator[Any]:
    with chromium_page(served.url, width=WIDTH) as p:
        yield p


def checked(page: Any, path: str | None = None) -> None:
    """The page (opened at ``path`` if given) passes axe-core and never scrolls sideways at 1280 px."""
    if path is not None:
        page.goto(path)
    assert axe_violations(page) == [], page.url
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH, page.url


def test_the_admins_day_attention_then_approve_with_a_comment_then_replay(
    console: Any, pipeline: Pipeline, page: Any
) -> None:
    # The dead letter on a second connection: a run replays only while no newer run of its
    # connection has started (dlq.replay refuses to lay older files over newer ones).
    dead = dead_lettered(pipeline, second_users_connection() + "crash.csv", people(3, start=100))
    apply("full_feed = true\n")
    pipeline.import_files((USERS + "day1.csv", people(20)))
    held = pipeline.import_files((USERS + "day2.csv", people(10)))

    sign_in(page)
    strip = page.locator(".attention")
    assert "Needs attention (2)" in strip.inner_text()
    assert page.locator("nav a[href='/connections'] .badge").get_attribute("title") == "2 need attention"
    assert page.locator(".tile.health-wait h2", has_text="hr-users").is_visible()  # held: waits for you
    assert page.locator(".tile.health-bad h2", has_text="crm-users").is_visible()  # dead-lettered
    checked(page)
    shot(page, "attention")

    # The held run: what it read and would do, the people as CSV, then Approve after a confirm.
    page.click(f".attention a[href='/runs/{held}']")
    page.wait_for_url(f"**/runs/{held}")
    plan = page.inner_text(".plan")
    assert "Waiting for approval" in plan and "Read 10 rows." in plan
    with page.expect_download() as d:
        page.click("a[href$='plan-people.csv']")
    assert d.value.suggested_filename == f"run-{held}-plan-people.csv"
    checked(page)
    page.fill("#comment", "HR confirmed the leavers")
    asked: list[str] = []

    def dismissed(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismissed)
    page.click("button:has-text('Approve')")
    assert asked == [f"Approve run #{held}? It applies the plan above."]
    assert sql("SELECT status FROM sync.runs WHERE id = %s", (held,)) == [("awaiting_approval",)]  # dismissed
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button:has-text('Approve')")
    page.wait_for_url(f"**/runs/{held}")
    pipeline.drain()
    page.reload()
    page.locator("#live .status", has_text="completed").wait_for(timeout=60_000)
    decided = page.inner_text(".plan")
    assert "Approved by console:ada" in decided and "“HR confirmed the leavers”" in decided
    assert "Waiting for approval" not in decided
    assert "Held for approval" in page.inner_text("dl.times")
    checked(page)
    shot(page, "decision")

    # The dead-lettered run: ⚠, what happened and what to do, Replay (shown first, then confirmed).
    page.goto("/connections")
    page.click(f".attention a[href='/runs/{dead}']")
    page.wait_for_url(f"**/runs/{dead}")
    assert "What happened and what to do" in page.inner_text(".report")
    assert page.locator("#live .warn[aria-label='dead-lettered']").is_visible()
    checked(page)
    shot(page, "dead-lettered")
    page.click("button:has-text('Replay')")
    assert "would replay" in page.inner_text("main")
    page.click("button:has-text('Confirm replay')")
    assert "replayed" in page.inner_text("main")
    pipeline.drain()
    page.goto(f"/runs/{dead}")
    page.locator("#live .status", has_text="completed").wait_for(timeout=60_000)
    page.goto("/connections")
    assert "Nothing needs attention" in page.inner_text(".attention")
    assert page.locator(".tile.health-ok h2", has_text="hr-users").is_visible()
    assert page.locator(".tile.health-ok h2", has_text="crm-users").is_visible()
    shot(page, "connections")


def test_every_page_passes_axe_and_fits_1280px_with_status_and_warning_in_view(
    console: Any, pipeline: Pipeline, page: Any
) -> None:
    dead = dead_lettered(pipeline, USERS + "crash.csv", people(3, start=100))
    for day in range(3):  # a few runs with long counts, so the table is as wide as it gets
        pipeline.import_files((USERS + f"d{day}.csv", people(5 + day) + "not-an-email,X,Y,,S\n"))
    sign_in(page)
    for path in ("/connections", "/runs", "/connections/hr-users", f"/runs/{dead}", "/dead-letters", "/alerts"):
        checked(page, path)
    checked(page, "/audit")
    page.goto("/runs")
    row = page.locator(f"table.runs tr:has(a[href='/runs/{dead}'])")
    for cell in (row.locator(".status"), row.locator(".warn")):
        box = cell.bounding_box()
        assert box is not None and box["x"] + box["width"] <= WIDTH, "status and ⚠ stay in view"
    # At 1280 px the whole table fits: its box has nothing to scroll.
    assert page.evaluate("(b => b.scrollWidth <= b.clientWidth)(document.querySelector('.scroll'))")
    shot(page, "execution-status")
    page.goto("/connections/hr-users")
    # No schedule: "Enable schedule" is not ticked, and the schedule's fields fit their card.
    assert not page.locator("input[name=schedule_enabled]").is_checked()
    assert fits(page, "select[name=access]", "form[action$='/schedule']")
    assert fits(page, "select[name=every_unit]", "form[action$='/schedule']")
    shot(page, "connection")
