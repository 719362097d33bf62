"""One module owns a run's status: every transition is in workers/runs/lifecycle.py, guarded in SQL, so
a transition asked of a run in another status changes nothing."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg

from schemas.states import RunStatus
from tests.conftest import DATABASE_URL, sql
from tests.stubpipeline import HEADER, Pipeline
from workers.runs import lifecycle

ROOT = Path(__file__).resolve().parents[2]
SETS_STATUS = re.compile(r"UPDATE\s+sync\.runs\b(?:(?!\"\"\"|\)\s*$).)*?\bSET\b(?:(?!WHERE).)*?\bstatus\s*=", re.S)


def test_only_the_lifecycle_module_changes_a_runs_status() -> None:
    owners = {
        str(path.relative_to(ROOT))
        for package in ("schemas", "workers", "producers")
        for path in (ROOT / package).rglob("*.py")
        if SETS_STATUS.search(path.read_text())
    }
    assert owners == {"workers/runs/lifecycle.py"}


def test_a_transition_asked_of_a_finished_run_changes_nothing(pipeline: Pipeline) -> None:
    run_id = pipeline.import_files(("import/user/internal/a.csv", HEADER + "a@x.com,A,One,,x\n"))
    assert sql("SELECT status FROM sync.runs WHERE id = %s", (run_id,)) == [(RunStatus.COMPLETED.value,)]
    with psycopg.connect(DATABASE_URL) as conn:
        assert not lifecycle.start(conn, run_id)
        assert not lifecycle.hold(conn, run_id)
        assert not lifecycle.finish(conn, run_id, RunStatus.FAILED, {}, "late", None)
        assert lifecycle.fail(conn, run_id, "late") is None
        assert lifecycle.cancel(conn, run_id, "late") is None
        assert lifecycle.decide(conn, run_id, approved=True, who="admin") is None
        assert not lifecycle.reopen_for_replay(conn, run_id)
    assert sql("SELECT status, error FROM sync.runs WHERE id = %s", (run_id,)) == [(RunStatus.COMPLETED.value, None)]
