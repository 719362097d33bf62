"""The conformance tier reads real feeds from ../shared/samples, beside the repository as in CI.
Without them it fails, saying so, rather than passing with nothing checked; run
`pytest -m "not conformance"` on a machine that does not have them."""

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
