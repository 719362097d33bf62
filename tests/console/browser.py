"""Browser-tier helpers for console tests: Debian's headless Chromium driven by Playwright (never
`playwright install`), signing in, and the README's screenshots (into docs/ only when
FEEDSYNC_CONSOLE_SCREENSHOTS=1). The same setup as test_console_browser.py's, shared from here."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.console.conftest import PASSWORD, Served

CHROMIUM = os.environ.get("FEEDSYNC_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
DOCS = (
    Path(__file__).resolve().parents[2] / "docs"
    if os.environ.get("FEEDSYNC_CONSOLE_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "feedsync-console-screenshots"
)


@pytest.fixture
def browser_page(served: Served) -> Iterator[Any]:
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
        context = browser.new_context(base_url=served.url, viewport={"width": 1280, "height": 860})
        page = context.new_page()
        page.set_default_timeout(30_000)
        try:
            yield page
        finally:
            context.close()
            browser.close()


def sign_in(page: Any, name: str = "ada") -> None:
    page.goto("/connections")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/connections")


def shot(page: Any, name: str) -> None:
    DOCS.mkdir(exist_ok=True)
    page.screenshot(path=str(DOCS / f"console-{name}.png"), full_page=True)
