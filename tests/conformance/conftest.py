"""The conformance tier reads real feeds from ../shared/samples, beside the repository as in CI.
Without them tests/conftest.py leaves the tier out and says so at the end of the session (or fails the
session under FEEDSYNC_REQUIRE_SAMPLES=1, as CI sets); this fixture is the last guard for a run that
selects a conformance test some other way."""

from __future__ import annotations

import pytest

from tests.conftest import SAMPLES


@pytest.fixture(autouse=True)
def samples_present() -> None:
    if not SAMPLES.is_dir():
        pytest.fail(
            f"sample feeds not found at {SAMPLES}: clone the repository beside shared/ (as CI does), "
            'or leave this tier out with -m "not conformance"'
        )
