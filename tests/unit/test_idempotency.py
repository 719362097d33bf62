"""At-least-once delivery, exactly-once effects: a stage message delivered again changes nothing."""

from __future__ import annotations

from typing import Any

from schemas.messages import FinalizeRun, LoadRun, ParseFile, SyncDue, TransformChunk
from schemas.states import TriggerType
from tests.conftest import sql
from tests.stubpipeline import HEADER, Pipeline
from tests.waiting import poll_until
from workers.broker import publish

FEED = HEADER + "".join(f"u{i}@x.com,U{i},L{i},{'u0@x.com' if i else ''},S\n" for i in range(250)) + "bad,B,B,,S\n"


def snapshot(run_id: int) -> tuple[Any, ...]:
    return (
        sql("SELECT email, first_name, manager_id, updated_at, source_hash FROM lms.users ORDER BY email"),
        sql(
            "SELECT stage, part, status, attempts FROM sync.stage_runs WHERE run_id = %s ORDER BY stage, part",
            (run_id,),
        ),
        sql("SELECT file_name, line, code FROM sync.row_errors ORDER BY id"),
        sql("SELECT status, counts, finished_at FROM sync.runs ORDER BY id"),
        sql("SELECT count(*) FROM sync.chunks"),
    )


def test_every_stage_message_enqueued_again_after_the_run_changes_nothing(pipeline: Pipeline) -> None:
    pipeline.settings.chunk_rows = 100
    run_id = pipeline.import_files(("import/user/internal/u.csv", FEED))
    file_id = sql("SELECT file_id FROM sync.run_files WHERE run_id = %s", (run_id,))[0][0]
    before = snapshot(run_id)
    assert before[3][0][0] == "completed_with_errors"
    for msg in [
        SyncDue(connection="hr-users", trigger=TriggerType.FILE_DROP, run_id=run_id),
        ParseFile(run_id=run_id, file_id=file_id),
        TransformChunk(run_id=run_id, file_id=file_id, chunk_no=1),
        LoadRun(run_id=run_id),
        FinalizeRun(run_id=run_id),
    ]:
        publish(msg)
    pipeline.drain()
    assert snapshot(run_id) == before


def test_duplicates_delivered_while_the_run_is_going_give_one_effect(pipeline: Pipeline) -> None:
    """Every stage message published twice at once: two worker threads take the copies together."""
    from workers import broker as broker_module

    real_publish = broker_module.current_broker().enqueue
    twice = []

    def enqueue_twice(message, *, delay=None):  # type: ignore[no-untyped-def]
        twice.append(message.actor_name)
        real_publish(message, delay=delay)
        return real_publish(message.copy(), delay=delay)

    pipeline.settings.chunk_rows = 60
    pipeline.broker.enqueue = enqueue_twice  # type: ignore[method-assign]
    try:
        run_id = pipeline.import_files(("import/user/internal/u.csv", FEED))
    finally:
        pipeline.broker.enqueue = real_publish  # type: ignore[method-assign]
    assert {"parse_file", "transform_chunk", "load_run", "finalize_run"} <= set(twice)
    assert sql("SELECT status, counts->>'created', counts->>'rejected' FROM sync.runs WHERE id = %s", (run_id,)) == [
        ("completed_with_errors", "250", "1")
    ]
    assert sql("SELECT count(*) FROM lms.users")[0][0] == 250
    assert sql("SELECT count(*) FROM sync.row_errors")[0][0] == 1
    assert sql("SELECT count(*) FROM sync.chunks WHERE run_id = %s", (run_id,))[0][0] == 5
    assert sql("SELECT count(*) FROM sync.stage_runs WHERE stage = 'transform' AND status = 'succeeded'")[0][0] == 5


def test_two_stages_finishing_together_do_not_deadlock_on_the_run(pipeline: Pipeline) -> None:
    # Each finishing stage has written rows that reference the run (KEY SHARE on its row) before
    # the fan-in locks the run: the fan-in's lock must not wait for the other stage's KEY SHARE
    # (two such waits are a deadlock), only for the other fan-in.
    import threading

    import psycopg

    from tests.conftest import DATABASE_URL
    from workers.runs.outbox import OutboxBatch
    from workers.runs.route import advance_if_ready

    run_id = pipeline.import_files(("import/user/internal/a.csv", HEADER + "a@x.com,A,A,,S\n"))
    # lock_timeout: a wait that never ends fails the test instead of hanging it.
    first, second = (psycopg.connect(DATABASE_URL, options="-c lock_timeout=5000") for _ in range(2))
    errors: list[BaseException] = []

    def finish(conn: psycopg.Connection[Any]) -> None:
        try:
            advance_if_ready(conn, run_id, OutboxBatch())
        except BaseException as exc:  # asserted below
            errors.append(exc)

    def waiting_on_a_lock(conn: psycopg.Connection[Any]) -> bool:
        pid = conn.info.backend_pid
        return bool(sql("SELECT 1 FROM pg_stat_activity WHERE pid = %s AND wait_event_type = 'Lock'", (pid,)))

    try:
        for conn in (first, second):
            conn.execute(
                "INSERT INTO sync.row_errors (run_id, file_name, code, message, rejected) "
                "VALUES (%s, 'x', 'x', 'x', false)",
                (run_id,),
            )
        # The first finisher takes the run's lock although the second holds KEY SHARE on it.
        finish(first)
        assert errors == []
        # The second waits for the first's transaction, and only for it: it goes on once that ends.
        second_thread = threading.Thread(target=finish, args=(second,))
        second_thread.start()
        poll_until(
            lambda: waiting_on_a_lock(second) or not second_thread.is_alive(),
            timeout=30,
            interval=0.02,
            message="the second finisher neither queued behind the first nor ended",
        )
        assert waiting_on_a_lock(second), "the second finisher should queue behind the first"
        first.rollback()
        second_thread.join(timeout=30)
        assert errors == [] and not second_thread.is_alive()
    finally:
        for conn in (first, second):
            conn.rollback()
            conn.close()
