"""``FEEDSYNC_BROKER_URL=stub://``: the whole pipeline in one process, for trials and fast tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dramatiq


@contextmanager
def inprocess_worker(threads: int = 2) -> Iterator[dramatiq.Worker]:
    import workers.actors  # registers the actors on the stub broker

    worker = dramatiq.Worker(workers.actors.broker, worker_threads=threads, worker_timeout=50)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
