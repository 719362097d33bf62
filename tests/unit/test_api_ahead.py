"""Pages read one ahead (workers/sources/ahead.py): in order, an error in its place, and a caller
that stops early stops the pager before it goes on."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from workers.sources.ahead import one_ahead


def test_pages_come_in_order_and_the_pager_runs_beside_the_caller() -> None:
    threads: set[str] = set()

    def pager() -> Iterator[int]:
        for n in range(50):
            threads.add(threading.current_thread().name)
            yield n

    assert list(one_ahead(pager())) == list(range(50))
    assert threads == {"fetch-ahead"}


def test_an_error_of_the_pager_is_raised_in_its_place_among_the_pages() -> None:
    def pager() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("page 3 does not parse")

    seen = []
    with pytest.raises(ValueError, match="page 3 does not parse"):
        for page in one_ahead(pager()):
            seen.append(page)
    assert seen == [1, 2]


def test_a_caller_that_stops_early_stops_the_pager() -> None:
    pulled = []

    def pager() -> Iterator[int]:
        for n in range(1000):
            pulled.append(n)
            yield n

    pages = one_ahead(pager())
    assert next(pages) == 0
    pages.close()  # joins the pager's thread
    assert len(pulled) <= 3, "one page in hand, one handed over, one waiting at most"
    assert not any(t.name == "fetch-ahead" for t in threading.enumerate())


def test_the_page_past_the_limit_is_never_asked_for() -> None:
    pulled = []

    def pager() -> Iterator[int]:
        for n in range(10):
            pulled.append(n)
            yield n

    assert list(one_ahead(pager(), limit=3)) == [0, 1, 2]
    assert pulled == [0, 1, 2]
