"""The run has one owner: the stage graph is declared in one table, every stage sends the next only
along it, and only the run package writes a run's row."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from schemas.messages import MESSAGE_TYPES
from workers.runs import route
from workers.runs.outbox import OutboxBatch

ROOT = Path(__file__).resolve().parents[2]


def test_every_stage_message_is_a_node_of_the_declared_graph() -> None:
    stages = {m.STAGE for m in MESSAGE_TYPES.values() if m.STAGE}
    assert stages == set(route.NEXT), "a stage message without a place in route.NEXT, or a node without a message"
    targets = set().union(*route.NEXT.values())
    assert targets <= set(route.MESSAGES), "an edge leads to a stage no message runs"


def test_every_stage_reaches_finalize_and_the_graph_has_no_cycle() -> None:
    def paths_end(stage: str, seen: tuple[str, ...]) -> set[str]:
        assert stage not in seen, f"a cycle through {stage}: {' -> '.join((*seen, stage))}"
        nexts = route.NEXT[stage]
        return {stage} if not nexts else set().union(*(paths_end(n, (*seen, stage)) for n in nexts))

    for stage in route.NEXT:
        assert paths_end(stage, ()) == {"finalize"}, f"{stage} can end somewhere other than finalize"


def test_a_stage_cannot_send_one_the_graph_does_not_name() -> None:
    with pytest.raises(ValueError, match="no edge parse -> finalize"):
        route.send(None, OutboxBatch(), "parse", "finalize", 1)  # type: ignore[arg-type]  # refused before any SQL


_WRITE = re.compile(r"(UPDATE|INSERT INTO|DELETE FROM)\s+sync\.runs\b", re.I)


def test_only_the_run_package_writes_a_runs_row() -> None:
    writers = sorted(
        str(p.relative_to(ROOT))
        for top in ("workers", "producers", "schemas")
        for p in (ROOT / top).rglob("*.py")
        if _WRITE.search(p.read_text()) and "workers/runs/" not in p.as_posix()
    )
    assert writers == [], f"these write sync.runs outside workers/runs/: {writers}"
