"""The three kinds of failure, decided in one place, on the stub broker and the real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from producers import queries
from tests.conftest import sql
from tests.data import FEED
from tests.stubpipeline import Pipeline
from workers import failpoints


@pytest.fixture
def faults(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    pipeline.settings.max_attempts = 3

    def set_points(spec: str) -> None:
        failpoints.reset()
        monkeypatch.setenv("FEEDSYNC_FAILPOINTS", spec)

    yield set_points
    failpoints.reset()


def stage(name: str) -> tuple[Any, ...]:
    return sql("SELECT status, attempts, error FROM sync.stage_runs WHERE stage = %s", (name,))[0]


def test_a_permanent_error_fails_the_run_at_once_with_its_sentence(pipeline: Pipeline, faults: Any) -> None:
    from producers.commands import start_sync
    from schemas.states import AccessMode

    faults("load.merged=terminal")
    pipeline.drop("import/user/internal/a.csv", FEED)
    start_sync(pipeline.settings, "hr-users", access=AccessMode.EXCLUSIVE)  # one transaction: all or nothing
    pipeline.drain(expect_failures=True)
    run = queries.history()[0]
    assert run["status"] == "failed" and run["error"] == "failpoint load.merged: injected permanent failure"
    assert stage("load") == ("failed", 1, "failpoint load.merged: injected permanent failure")
    assert sql("SELECT count(*) FROM lms.users")[0][0] == 0  # the merge rolled back with the stage
    assert sql("SELECT count(*) FROM sync.dead_letters")[0][0] == 0


def test_a_transient_error_is_retried_and_the_run_completes(pipeline: Pipeline, faults: Any) -> None:
    faults("load.merged=transient*2")
    pipeline.import_files(("import/user/internal/a.csv", FEED))
    assert queries.history()[0]["status"] == "completed"
    assert stage("load") == ("succeeded", 3, None)
    assert sql("SELECT count(*) FROM lms.users")[0][0] == 2


def test_a_bug_is_retried_up_to_the_limit_then_dead_lettered_and_archived(pipeline: Pipeline, faults: Any) -> None:
    faults("transform.start=raise")
    pipeline.import_files(("import/user/internal/a.csv", FEED), expect_failures=True)
    run = queries.history()[0]
    assert run["status"] == "failed"
    assert run["error"].startswith("stage transform dead-lettered after 3 attempts: RuntimeError: failpoint")
    status, attempts, _ = stage("transform")
    assert (status, attempts) == ("dead_lettered", 3)
    (dl,) = sql("SELECT actor_name, queue_name, attempts, message->'kwargs'->>'chunk_no' FROM sync.dead_letters")
    assert dl == ("transform_chunk", "feedsync.transform", 3, "0")
    detail = queries.run_detail(run["run_id"])
    assert detail is not None and [s["status"] for s in detail["stages"] if s["stage"] == "transform"] == [
        "dead_lettered"
    ]


def test_replay_after_the_fix_completes_the_run_without_duplicates(pipeline: Pipeline, faults: Any) -> None:
    from producers import dlq

    faults("transform.start=raise")
    run_id = pipeline.import_files(("import/user/internal/a.csv", FEED), expect_failures=True)
    faults("")
    assert [r.outcome for r in dlq.replay(pipeline.settings, run_id=run_id, dry_run=True)] == ["would_replay"]
    assert [r.outcome for r in dlq.replay(pipeline.settings, run_id=run_id)] == ["replayed"]
    pipeline.drain(expect_failures=True)
    run = queries.history()[0]
    assert (run["status"], run["type"], run["counts"]["created"]) == ("completed", "replay", 2)
    assert sql("SELECT count(*) FROM lms.users")[0][0] == 2
    assert [r.outcome for r in dlq.replay(pipeline.settings, run_id=run_id)] == []
    (dl_id,) = sql("SELECT id FROM sync.dead_letters")[0]
    assert [r.outcome for r in dlq.replay(pipeline.settings, ids=[dl_id])] == ["skipped_replayed"]


def test_a_dead_letter_whose_stage_already_succeeded_is_skipped_unless_forced(pipeline: Pipeline, faults: Any) -> None:
    from producers import dlq

    faults("transform.start=raise")
    run_id = pipeline.import_files(("import/user/internal/a.csv", FEED), expect_failures=True)
    faults("")
    # As if another copy of the message had got through meanwhile.
    sql("UPDATE sync.stage_runs SET status = 'succeeded' WHERE stage = 'transform'")
    assert [r.outcome for r in dlq.replay(pipeline.settings, run_id=run_id)] == ["skipped_succeeded"]
    assert queries.history()[0]["status"] == "failed"
    assert [r.outcome for r in dlq.replay(pipeline.settings, run_id=run_id, force=True)] == ["replayed"]
    pipeline.drain(expect_failures=True)
    assert queries.history()[0]["status"] == "completed"
    assert sql("SELECT forced FROM sync.replays") == [(True,)]
