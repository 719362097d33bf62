"""The browser tier's shared parts: Debian's chromium driven by Playwright (never a downloaded
browser), signing in, screenshots for docs/, and axe-core's accessibility checks (axe.min.js as
the axe-playwright-python package ships it, injected into the page)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.console.conftest import PASSWORD, Served

CHROMIUM = os.environ.get("FEEDSYNC_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# The README's screenshots: written into docs/ only when asked (FEEDSYNC_CONSOLE_SCREENSHOTS=1), so a
# test run does not rewrite tracked files; otherwise into a temporary folder, still taken.
DOCS = (
    Path(__file__).resolve().parents[2] / "docs"
    if os.environ.get("FEEDSYNC_CONSOLE_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "feedsync-console-screenshots"
)
#: axe-core's impacts that fail a page (minor and moderate ones are reported by axe, not failed here).
FAILING_IMPACTS = ("serious", "critical")


@contextmanager
def chromium_page(base_url: str, width: int = 1280, height: int = 860) -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no chromium at {CHROMIUM}: `apt-get install -y chromium` (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        context = browser.new_context(
            base_url=base_url, viewport={"width": width, "height": height}, accept_downloads=True
        )
        page = context.new_page()
        page.set_default_timeout(30_000)
        try:
            yield page
        finally:
            context.close()
            browser.close()


@pytest.fixture
def browser_page(served: Served) -> Iterator[Any]:
    """A signed-out page on the console served for the test, 1280 px wide."""
    with chromium_page(served.url) as page:
        yield page


def sign_in(page: Any, name: str = "ada") -> None:
    page.goto("/connections")
    assert "/sign-in" in page.url  # signed out: sent to sign in, and back afterwards
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/connections")


def shot(page: Any, name: str) -> None:
    DOCS.mkdir(exist_ok=True)
    page.screenshot(path=str(DOCS / f"console-{name}.png"), full_page=True)


def axe_violations(page: Any) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now: rule, impact, where."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in FAILING_IMPACTS
    ]


def fits(page: Any, selector: str, inside: str) -> bool:
    """The element's box lies within its container's box (nothing sticks out of a card)."""
    box, outer = page.locator(selector).first.bounding_box(), page.locator(inside).first.bounding_box()
    if box is None or outer is None:
        return False
    return bool(box["x"] >= outer["x"] and box["x"] + box["width"] <= outer["x"] + outer["width"] + 0.5)
