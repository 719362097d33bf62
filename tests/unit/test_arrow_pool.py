"""FEEDSYNC_ARROW_MEMORY_POOL: the pool pyarrow allocates a worker's blocks from (issue #32)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from schemas.settings import Settings
from workers.connectors import arrowblock


def test_blocks_are_allocated_from_the_configured_pool() -> None:
    wanted = arrowblock._memory_pool(Settings().arrow_memory_pool).backend_name
    assert pa.default_memory_pool().backend_name == wanted
    assert wanted in ("jemalloc", "system")  # never mimalloc unless asked: it keeps what a block freed


@pytest.mark.parametrize("name", ["mimalloc", "system"])
def test_each_pool_can_be_asked_for(name: str) -> None:
    assert arrowblock._memory_pool(name).backend_name == name
