"""Pages read one ahead: the next page is requested while the current one is written.

An API's pages come one after the other (each page names the next), so the fetch waits for the
server and then for its own CSV writing, in turn. ``one_ahead`` runs the pager in a thread of its own
(with the caller's context, so its log lines keep the run's bound fields) and hands its pages over a
queue of one: the request for page n + 1 is on the wire while page n is written. An error in the
pager is raised in the caller, in its place among the pages; a caller that stops early (a cap
reached) stops the pager before its client is closed.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Generator, Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


def one_ahead(pages: Iterator[T], limit: int | None = None) -> Generator[T, None, None]:
    """``pages``, each requested while the one before is with the caller; at most ``limit`` of them
    (the page cap: the page past it is never asked for)."""
    handover: queue.Queue[object] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                handover.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def pull() -> None:
        try:
            for n, page in enumerate(pages, 1):
                if not put(page) or n == limit:
                    break
            put(_DONE)
        except BaseException as exc:  # handed to the caller, raised there
            put(exc)

    worker = threading.Thread(target=contextvars.copy_context().run, args=(pull,), name="fetch-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item = handover.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        worker.join()
