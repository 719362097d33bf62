"""Nothing wedged (issue 12, cases 5 and 16): a failed run starts the next one, `feedsync cancel`
ends a queued, held or stuck run, and a connection with runs going is deleted only with --force."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from producers import queries, registry
from producers.cli import cli
from producers.commands import CommandError, apply_connections, approve
from producers.connection_admin import delete_connection
from schemas.connections import load_connections_toml
from schemas.states import TriggerType
from tests.conftest import feedsync, sql
from tests.stubpipeline import HEADER, USERS_TOML, Pipeline
from workers import failpoints, store
from workers.rows import read_connection
from workers.runs.create import create_run
from workers.runs.outbox import OutboxBatch
from workers.runs.start import try_start

INBOX = "import/user/internal"


def people(*names: str) -> str:
    return HEADER + "".join(f"{n}@x.com,{n},L,,S\n" for n in names)


def start_run(pipeline: Pipeline, name: str, content: str) -> tuple[int, OutboxBatch]:
    """Drop a file and start a run on it; its messages are in the returned outbox, not yet sent.
    Never flushed, the run is stuck in_progress (its messages were lost)."""
    pipeline.drop(f"{INBOX}/{name}", content)
    registry.scan(pipeline.settings, announce=False)
    batch = OutboxBatch()
    with store.connect() as conn:
        connection = read_connection(conn, "hr-users")
        assert connection is not None
        run_id, _ = create_run(conn, connection, TriggerType.ON_DEMAND, batch)
        assert try_start(conn, run_id, batch) == "started"
    return run_id, batch


def queue_run(pipeline: Pipeline, name: str, content: str, batch: OutboxBatch) -> int:
    """Drop a file and queue a run for it behind the connection's active run."""
    pipeline.drop(f"{INBOX}/{name}", content)
    registry.scan(pipeline.settings, announce=False)
    with store.connect() as conn:
        connection = read_connection(conn, "hr-users")
        assert connection is not None
        run_id, _ = create_run(conn, connection, TriggerType.FILE_DROP, batch, coalesce=False)
    return run_id


def status(run_id: int) -> str:
    return str(sql("SELECT status FROM sync.runs WHERE id = %s", (run_id,))[0][0])


def emails() -> list[str]:
    return sorted(e for (e,) in sql("SELECT email FROM lms.users"))


def cancel(*args: str) -> Any:
    result = CliRunner().invoke(cli, ["cancel", *args])
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def poisoned(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    pipeline.settings.max_attempts = 3
    failpoints.reset()
    monkeypatch.setenv("FEEDSYNC_FAILPOINTS", "transform.start=raise*3")  # the first run's three attempts
    yield pipeline
    failpoints.reset()


def test_a_dead_lettered_run_starts_the_run_queued_behind_it_which_completes(poisoned: Pipeline) -> None:
    first, batch = start_run(poisoned, "a.csv", people("a1", "a2"))
    second = queue_run(poisoned, "b.csv", people("b1"), batch)
    batch.flush()
    poisoned.drain(expect_failures=True)

    assert status(first) == "failed"
    assert sql("SELECT actor_name FROM sync.dead_letters WHERE run_id = %s", (first,)) == [("transform_chunk",)]
    assert status(second) == "completed"
    assert emails() == ["b1@x.com"]


def test_replaying_a_failed_run_after_the_next_one_started_is_refused(poisoned: Pipeline) -> None:
    from producers import dlq

    first, batch = start_run(poisoned, "a.csv", people("a1"))
    queue_run(poisoned, "b.csv", people("b1"), batch)
    batch.flush()
    poisoned.drain(expect_failures=True)
    (refused,) = dlq.replay(poisoned.settings, run_id=first)
    assert refused.outcome == "refused" and refused.reason is not None
    assert "older files over newer" in refused.reason
    assert status(first) == "failed"


def test_cancelling_a_queued_run_records_who_and_why_and_leaves_its_files_waiting(pipeline: Pipeline) -> None:
    first, batch = start_run(pipeline, "a.csv", people("a1"))
    second = queue_run(pipeline, "b.csv", people("b1"), batch)

    out = cancel(str(second), "--reason", "sent twice").output
    assert out.strip().splitlines()[-1] == f"run {second}: cancelled (was queued)"  # after the log lines
    assert status(second) == "cancelled" and status(first) == "in_progress"
    ((action, from_status, reason, by),) = sql("SELECT action, from_status, reason, done_by FROM sync.run_actions")
    assert (action, from_status, reason) == ("cancel", "queued", "sent twice") and "@" in by
    # b.csv was never claimed by the cancelled run: it waits for the connection's next run.
    assert sql("SELECT status FROM sync.feed_files WHERE original_path LIKE %s", ("%b.csv",)) == [("registered",)]
    detail = queries.run_detail(second)
    assert detail is not None and detail["status"] == "cancelled" and detail["actions"][0]["reason"] == "sent twice"
    assert "cancelled by" in (detail["note"] or "")


def test_cancelling_a_stuck_run_starts_the_next_and_its_late_messages_do_nothing(pipeline: Pipeline) -> None:
    stuck, lost = start_run(pipeline, "a.csv", people("a1", "a2"))
    waiting = OutboxBatch()
    queued = queue_run(pipeline, "b.csv", people("b1"), waiting)
    waiting.flush()
    pipeline.drain()
    assert (status(stuck), status(queued)) == ("in_progress", "queued")
    stored = pipeline.settings.stored_file(
        sql("SELECT stored_path FROM sync.feed_files WHERE original_path LIKE %s", ("%a.csv",))[0][0]
    )
    assert stored.exists()

    cancel(str(stuck), "--reason", "worker lost its messages")
    pipeline.drain()
    assert status(stuck) == "cancelled" and status(queued) == "completed"
    # Its file ends as a rejected run's: not imported, and (a user feed) removed at once.
    assert sql(
        "SELECT status, removed_at IS NOT NULL FROM sync.feed_files WHERE original_path LIKE %s", ("%a.csv",)
    ) == [("rejected", True)]
    assert not stored.exists()

    # The lost messages turn up after all (the outbox sweeper): nothing of the cancelled run happens.
    assert lost.flush() == 2
    pipeline.drain()
    assert status(stuck) == "cancelled"
    assert emails() == ["b1@x.com"]
    assert sql("SELECT count(*) FROM sync.stage_runs WHERE run_id = %s AND status = 'succeeded'", (stuck,)) == [(0,)]
    assert sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'stage' AND tablename ~ %s", (f"_{stuck}(_|$)",)) == [
        (0,)
    ]


FULL_FEED = USERS_TOML.replace(
    "[connections.mapping]", 'full_feed = true\nmax_deactivate = "10%"\n\n[connections.mapping]'
)


def test_cancelling_a_held_run_applies_nothing_and_it_can_no_longer_be_approved(pipeline: Pipeline) -> None:
    from workers.broker import publish

    apply_connections(load_connections_toml(FULL_FEED))
    names = [f"p{i}" for i in range(10)]
    pipeline.import_files((f"{INBOX}/day1.csv", people(*names)))
    held = pipeline.import_files((f"{INBOX}/day2.csv", people(*names[:5])))
    assert status(held) == "awaiting_approval"

    cancel(str(held))
    assert status(held) == "cancelled"
    with pytest.raises(CommandError, match="is cancelled, not awaiting approval"):
        approve(held)
    # An approval sent before the cancel, delivered after it, does nothing.
    from schemas.messages import LoadRun

    publish(LoadRun(run_id=held, approved=True))
    pipeline.drain()
    assert sql("SELECT count(*) FROM lms.users WHERE active") == [(10,)]
    assert status(held) == "cancelled"


def test_cancelling_a_finished_or_missing_run_exits_non_zero_with_one_line(pipeline: Pipeline) -> None:
    done = pipeline.import_files((f"{INBOX}/a.csv", people("a1")))
    assert status(done) == "completed"
    for run_id, says in ((done, f"run {done} is completed: only a queued"), (999, "no run 999")):
        proc = feedsync("cancel", str(run_id), check=False)
        assert proc.returncode == 1 and proc.stdout == ""
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith(f"feedsync: {says}"), proc.stderr
    assert status(done) == "completed" and sql("SELECT count(*) FROM sync.run_actions") == [(0,)]


def test_deleting_a_connection_with_runs_going_is_refused_unless_forced(pipeline: Pipeline) -> None:
    stuck, lost = start_run(pipeline, "a.csv", people("a1"))
    queued = queue_run(pipeline, "b.csv", people("b1"), lost)
    pipeline.drop(f"{INBOX}/c.csv", people("c1"))
    registry.scan(pipeline.settings, announce=False)  # a file waiting for a run
    stored = [pipeline.settings.stored_file(p) for (p,) in sql("SELECT stored_path FROM sync.feed_files")]
    assert len(stored) == 3 and all(p.exists() for p in stored)

    refused = feedsync("connections", "delete", "hr-users", check=False)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert f"run {stuck} is in_progress; run {queued} is queued" in refused.stderr and "--force" in refused.stderr
    with pytest.raises(CommandError, match="is in use"):
        delete_connection("hr-users")
    assert sql("SELECT count(*) FROM sync.connections WHERE deleted_at IS NULL") == [(1,)]

    assert delete_connection("hr-users", force=True) == [stuck, queued]
    assert (status(stuck), status(queued)) == ("cancelled", "cancelled")
    assert sql("SELECT count(*) FROM sync.feed_files WHERE removed_at IS NULL") == [(0,)]
    assert not any(p.exists() for p in stored)
    lost.flush()  # the runs' messages, late: nothing happens
    pipeline.drain()
    assert emails() == [] and (status(stuck), status(queued)) == ("cancelled", "cancelled")
