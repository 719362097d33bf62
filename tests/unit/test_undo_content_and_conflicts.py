"""Undo of content runs and of runs that later work touched: progress records and new courses
taken back, a load with the journal off that cannot be undone, and rows changed while an undo is
queued or waits for approval (conflicts, never overwritten)."""

from __future__ import annotations

from typing import Any

import pytest

from producers import queries
from producers.commands import CommandError, approve
from producers.undo import start_undo
from tests.conftest import sql
from tests.data import apply, people
from tests.stubpipeline import HEADER, Pipeline
from tests.undoing import FEED, snapshot, undo, user


def test_undo_of_a_content_run_removes_its_progress_records_and_retires_its_new_courses(pipeline: Pipeline) -> None:
    from tests.contentdata import META_HEADER, PROGRESS_HEADER, course, progress, setup

    setup(pipeline)
    pipeline.drop("import/hmm/hmm12_metadata.csv", META_HEADER + course("P1", "Time Management"))
    pipeline.drop("import/hmm/client_hmm12_20240501.csv", PROGRESS_HEADER + progress("bob@x.com", "P1", "", "5/1/2024"))
    assert pipeline.sync("hmm")["status"] == "completed"
    before = {t: snapshot(t) for t in ("courses", "learner_progress", "user_skills", "course_skills")}
    # Run A: P1 renamed, P3 new; Ann completes P1 (a new record, a skill), Bob's record moves on.
    pipeline.drop(
        "import/hmm/hmm12_metadata.csv", META_HEADER + course("P1", "Time Mastery") + course("P3", "Negotiation")
    )
    pipeline.drop(
        "import/hmm/client_hmm12_20240601.csv",
        PROGRESS_HEADER
        + progress("ann@x.com", "P1", "6/1/2024")
        + progress("bob@x.com", "P1", "", "5/1/2024", "6/1/2024"),
    )
    a = pipeline.sync("hmm")
    assert a["content"]["progress_written"] == 2 and sql("SELECT count(*) FROM lms.user_skills") == [(1,)]

    u = undo(pipeline, a["run_id"])
    assert u["status"] == "completed", u

    def but_updated_at(rows: dict[Any, tuple[Any, ...]]) -> dict[Any, list[Any]]:
        # A record given back is stamped as changed by the undo (a delta export must send it).
        return {k: [kv for kv in row if kv[0] != "updated_at"] for k, row in rows.items()}

    for t, rows in before.items():
        now = snapshot(t)
        assert but_updated_at({k: v for k, v in now.items() if k in rows}) == but_updated_at(rows), (
            f"lms.{t} is not as before the run"
        )
    assert sql("SELECT count(*) FROM lms.learner_progress") == [(1,)], "Ann's record the run wrote is gone"
    assert sql("SELECT count(*) FROM lms.user_skills") == [(0,)]
    assert sql("SELECT status FROM lms.courses WHERE external_id = 'P3'") == [("retired",)]


def test_with_feedsync_journal_off_a_load_writes_no_journal_and_its_run_cannot_be_undone(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    from schemas.settings import get_settings

    apply()
    monkeypatch.setenv("FEEDSYNC_JOURNAL", "false")
    get_settings.cache_clear()
    a = pipeline.import_files((FEED + "day1.csv", people(3)))
    assert sql("SELECT count(*) FROM sync.journal") == [(0,)]
    assert sql("SELECT journaled FROM sync.runs WHERE id = %s", (a,)) == [(False,)]
    with pytest.raises(CommandError, match="without the run journal"):
        start_undo(a)
    monkeypatch.delenv("FEEDSYNC_JOURNAL")
    get_settings.cache_clear()
    b = pipeline.import_files((FEED + "day2.csv", people(4)))
    assert sql("SELECT DISTINCT run_id, op FROM sync.journal_rows") == [(b, "I")]


def test_an_undo_queued_before_a_conflict_fails_at_its_load_naming_the_row(pipeline: Pipeline) -> None:
    from schemas.states import TriggerType
    from workers import store
    from workers.rows import ConnectionRow
    from workers.runs.create import create_run, live_connection
    from workers.runs.outbox import OutboxBatch

    apply()
    pipeline.import_files((FEED + "day1.csv", people(2)))
    a = pipeline.import_files((FEED + "day2.csv", people(2, tag="A")))
    b = pipeline.import_files((FEED + "day3.csv", HEADER + "p1@x.com,P1,L,,B\n"))
    # As if `feedsync undo` had queued it (its own check passed) just before run b changed p1.
    outbox = OutboxBatch()
    with store.connect() as conn:
        c = live_connection(conn, "hr-users")
        assert c is not None
        u, _ = create_run(conn, ConnectionRow.of(c), TriggerType.UNDO, outbox, undo_of=a, coalesce=False)
    outbox.flush()
    pipeline.drain(expect_failures=True)
    failed = queries.run_detail(u)
    assert failed is not None and failed["status"] == "failed"
    assert f"person p1@x.com (changed by run {b})" in failed["error"]
    assert user("p0@x.com")["attributes"] == {"department": "A"}, "nothing of a refused undo is applied"
    assert sql("SELECT undone_by FROM sync.runs WHERE id = %s", (a,)) == [(None,)]


def test_a_row_changed_while_the_undo_waits_for_approval_is_not_overwritten_when_it_is_approved(
    pipeline: Pipeline,
) -> None:
    apply()
    pipeline.import_files((FEED + "day1.csv", people(3)))
    a = pipeline.import_files((FEED + "day2.csv", people(3, tag="A")))  # three people's department -> A
    apply("max_change = 2\n")
    u_id = start_undo(a)  # restores three people: over max_change = 2, held
    pipeline.drain()
    held = queries.run_detail(u_id)
    assert held is not None and held["status"] == "awaiting_approval"
    # While it waits (hours, maybe), someone changes p0 outside any run.
    sql("UPDATE lms.users SET first_name = 'Changed meanwhile' WHERE email = 'p0@x.com'")
    approve(u_id)
    pipeline.drain(expect_failures=True)
    assert user("p0@x.com")["first_name"] == "Changed meanwhile", "the approved undo overwrote a later change"
    failed = queries.run_detail(u_id)
    assert failed is not None and failed["status"] == "failed"
    assert "person p0@x.com (changed outside feedsync's runs)" in failed["error"]
    assert user("p1@x.com")["attributes"] == {"department": "A"}, "nothing of a refused undo is applied"


def test_a_person_the_run_created_and_a_later_unjournaled_run_changed_is_a_conflict(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    from schemas.settings import get_settings

    apply()
    pipeline.import_files((FEED + "day1.csv", people(2)))
    a = pipeline.import_files((FEED + "day2.csv", people(3)))  # creates p2
    monkeypatch.setenv("FEEDSYNC_JOURNAL", "false")
    get_settings.cache_clear()
    b = pipeline.import_files((FEED + "day3.csv", HEADER + "p2@x.com,P2,L,,B\n"))  # p2 -> B, not journaled
    monkeypatch.delenv("FEEDSYNC_JOURNAL")
    get_settings.cache_clear()
    with pytest.raises(CommandError, match=f"run {b}.*without the run journal"):
        start_undo(a)
    assert user("p2@x.com")["active"] is True


def test_a_progress_record_the_undo_restores_counts_as_changed_by_the_undo_so_a_delta_export_sends_it(
    pipeline: Pipeline,
) -> None:
    """Transcript and skills exports send the records changed in their window (by updated_at): a
    record given back its old updated_at would never reach the destination that got run A's value."""
    from tests.contentdata import META_HEADER, PROGRESS_HEADER, course, progress, setup

    setup(pipeline)
    pipeline.drop("import/hmm/hmm12_metadata.csv", META_HEADER + course("P1", "Time Management"))
    pipeline.drop("import/hmm/client_hmm12_20240501.csv", PROGRESS_HEADER + progress("bob@x.com", "P1", "", "5/1/2024"))
    assert pipeline.sync("hmm")["status"] == "completed"
    pipeline.drop(
        "import/hmm/client_hmm12_20240601.csv",
        PROGRESS_HEADER + progress("bob@x.com", "P1", "", "5/1/2024", "6/1/2024"),
    )
    a = pipeline.sync("hmm")
    assert a["status"] == "completed"
    u = undo(pipeline, a["run_id"])
    assert u["status"] == "completed", u
    ((changed, undo_started),) = sql(
        "SELECT p.updated_at, r.started_at FROM lms.learner_progress p, sync.runs r WHERE r.id = %s", (u["run_id"],)
    )
    assert changed >= undo_started, "the restored record keeps the time it changed before run A"
