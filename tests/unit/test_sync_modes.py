"""On demand from a start date, rerun, one run at a time, full feeds with approval, dry runs,
access modes, triggers and schedules. The schedule clock is the database's, moved by setting it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from producers import queries, registry, scheduler
from producers.commands import CommandError, approve, reject, rerun, start_sync
from schemas.states import AccessMode
from tests.conftest import sql
from tests.data import active, apply, people
from tests.gates import Gate
from tests.stubpipeline import HEADER, Pipeline


def test_since_picks_exactly_the_dated_files_in_the_window_oldest_first(pipeline: Pipeline) -> None:
    apply("retention_days = 30\n")  # user feeds are kept, so a later window can read them again
    today = datetime.now(UTC).date()
    days = {d: today - timedelta(days=d) for d in (10, 6, 3, 1)}
    for d, day in days.items():
        pipeline.drop(f"import/user/internal/users-{day:%Y%m%d}.csv", people(2, start=d * 10))
    tomorrow = today + timedelta(days=1)
    pipeline.drop(f"import/user/internal/users-{tomorrow:%Y%m%d}.csv", people(2, start=500))
    registry.scan(pipeline.settings, announce=False)  # registered, waiting
    run_id = start_sync(pipeline.settings, "hr-users", since=days[6])
    pipeline.drain()
    files = sql(
        """SELECT f.original_path FROM sync.run_files rf JOIN sync.feed_files f ON f.id = rf.file_id
                   WHERE rf.run_id = %s ORDER BY rf.ordinal""",
        (run_id,),
    )
    assert [p for (p,) in files] == [f"import/user/internal/users-{days[d]:%Y%m%d}.csv" for d in (6, 3, 1)]
    run = queries.history()[0]
    assert (run["type"], run["start_date"], run["since"]) == ("on_demand", days[6].isoformat(), days[6].isoformat())
    # A window reaching back over imported files imports them again, oldest first.
    again = start_sync(pipeline.settings, "hr-users", since=days[3])
    pipeline.drain()
    assert sql("SELECT count(*) FROM sync.run_files WHERE run_id = %s", (again,))[0][0] == 2


def test_rerun_of_the_latest_run_reads_the_fixed_file_and_an_older_run_is_refused(pipeline: Pipeline) -> None:
    first = pipeline.import_files(("import/user/internal/a.csv", HEADER + "a@x.com,A,A,,S\nbroken,B,B,,S\n"))
    assert queries.history()[0]["status"] == "completed_with_errors"
    stored = pipeline.settings.stored_file(sql("SELECT stored_path FROM sync.feed_files")[0][0])
    assert not stored.exists(), "a user feed is removed once its run has ended"
    pipeline.drop("import/user/internal/a.csv", HEADER + "a@x.com,A,A,,S\nb@x.com,B,B,,S\n")  # the fixed file
    second = rerun(pipeline.settings, "hr-users")
    pipeline.drain()
    run = queries.history()[0]
    assert (run["run_id"], run["type"], run["status"], run["counts"]["created"]) == (second, "rerun", "completed", 1)
    assert queries.run_detail(second)["rerun_of"] == first  # type: ignore[index]
    with pytest.raises(CommandError, match=rf"run {first} is not the latest run of hr-users \(run {second} is\)"):
        rerun(pipeline.settings, "hr-users", run_id=first)


def test_a_second_trigger_waits_for_the_first_run_to_finish(pipeline: Pipeline, monkeypatch: Any, gate: Gate) -> None:
    monkeypatch.setenv("FEEDSYNC_FAILPOINTS", gate.at("load.merged"))
    pipeline.drop("import/user/internal/a.csv", people(50))
    registry.scan(pipeline.settings)  # file drop: a run starts
    gate.wait_reached()  # ... and is held inside its load
    pipeline.drop("import/user/internal/b.csv", people(50, start=100))
    second = start_sync(pipeline.settings, "hr-users")  # on demand while the first is going
    assert sql("SELECT trigger, status FROM sync.runs ORDER BY id") == [
        ("file_drop", "in_progress"),
        ("on_demand", "queued"),
    ]
    gate.open()
    pipeline.drain()
    runs = sql("SELECT id, trigger, started_at, finished_at, status, counts->>'read' FROM sync.runs ORDER BY id")
    assert [(r[1], r[4], r[5]) for r in runs] == [("file_drop", "completed", "50"), ("on_demand", "completed", "50")]
    assert runs[1][0] == second and runs[1][2] >= runs[0][3], "the second run started before the first finished"
    assert active() == 100


def test_a_full_feed_missing_thirty_percent_waits_for_approval_and_changes_nothing_until_approved(
    pipeline: Pipeline,
) -> None:
    apply('full_feed = true\nmax_deactivate = "10%"\n')
    pipeline.import_files(("import/user/internal/day1.csv", people(100)))
    assert active() == 100
    before = sql("SELECT email, active, updated_at FROM lms.users ORDER BY email")
    held = pipeline.import_files(("import/user/internal/day2.csv", people(70, tag="Ops")))
    run = queries.run_detail(held)
    assert run is not None and run["status"] == "awaiting_approval"
    assert run["plan"]["deactivations"] == 30 and run["plan"]["updates"] == 70 and run["plan"]["population"] == 100
    assert "deactivate 30 of 100 people (max_deactivate = 10%)" in run["plan"]["held_because"][0]
    assert len(run["plan"]["deactivations_sample"]) == 5
    assert sql("SELECT email, active, updated_at FROM lms.users ORDER BY email") == before
    # Another trigger meanwhile waits behind the held run.
    queued = start_sync(pipeline.settings, "hr-users")
    pipeline.drain()
    assert queries.run_detail(queued)["status"] == "queued"  # type: ignore[index]

    approve(held)
    pipeline.drain()
    run = queries.run_detail(held)
    assert run is not None and run["status"] == "completed" and run["approved_by"]
    assert run["counts"]["deactivated"] == 30 and active() == 70
    assert sql("SELECT count(*) FROM lms.users")[0][0] == 100  # deactivated, never deleted
    assert queries.run_detail(queued)["status"] == "completed"  # type: ignore[index]


def test_a_rejected_run_applies_nothing(pipeline: Pipeline) -> None:
    apply("full_feed = true\nmax_change = 5\n")
    pipeline.import_files(("import/user/internal/day1.csv", people(20)))
    held = pipeline.import_files(("import/user/internal/day2.csv", people(20, tag="Changed")))
    assert queries.run_detail(held)["status"] == "awaiting_approval"  # type: ignore[index]
    reject(held)
    pipeline.drain()
    assert queries.run_detail(held)["status"] == "rejected"  # type: ignore[index]
    assert {a for (a,) in sql("SELECT attributes->>'department' FROM lms.users")} == {"S"}
    with pytest.raises(CommandError, match="is rejected, not awaiting approval"):
        approve(held)


def test_dry_run_computes_the_plan_and_writes_nothing(pipeline: Pipeline) -> None:
    apply("full_feed = true\n")
    pipeline.import_files(("import/user/internal/day1.csv", people(10)))
    before = sql("SELECT email, active, first_name, manager_id, updated_at FROM lms.users ORDER BY email")
    pipeline.drop("import/user/internal/day2.csv", people(6, start=2) + "new@x.com,N,N,p2@x.com,S\n")
    run_id = start_sync(pipeline.settings, "hr-users", dry_run=True)
    pipeline.drain()
    run = queries.run_detail(run_id)
    assert run is not None and run["status"] == "completed" and run["dry_run"]
    plan = run["plan"]
    # new@x.com is created with p2 as manager: no manager move (nobody's manager changed).
    assert (plan["creates"], plan["deactivations"], plan["manager_moves"]) == (1, 4, 0)
    assert plan["creates_sample"] == ["new@x.com"]
    assert sql("SELECT email, active, first_name, manager_id, updated_at FROM lms.users ORDER BY email") == before
    assert "nothing was written" in run["note"]


@pytest.mark.parametrize("access", [AccessMode.ONLINE, AccessMode.EXCLUSIVE])
def test_online_and_exclusive_loads_give_the_same_store(pipeline: Pipeline, access: AccessMode) -> None:
    pipeline.settings.load_batch_rows = pipeline.settings.load_insert_rows = 40
    feed = HEADER + "".join(f"p{i}@x.com,P{i},L,{f'p{(i - 1) // 3}@x.com' if i else ''},S\n" for i in range(300))
    pipeline.drop("import/user/internal/a.csv", feed)
    run_id = start_sync(pipeline.settings, "hr-users", access=access)
    pipeline.drain()
    batches = sql("SELECT count(*) FROM sync.load_batches WHERE run_id = %s", (run_id,))[0][0]
    # online, 300 new people / 40: 8 insert ranges, no update range (nobody to update), the people the
    # feed says are DELETED marked apart, deactivation, assign (the group rules)
    assert batches == (0 if access is AccessMode.EXCLUSIVE else 8 + 1 + 1 + 1)
    store = sql("""SELECT u.email, m.email FROM lms.users u LEFT JOIN lms.users m ON m.id = u.manager_id
                   ORDER BY u.email""")
    assert len(store) == 300
    assert dict(store) == {f"p{i}@x.com": (f"p{(i - 1) // 3}@x.com" if i else None) for i in range(300)}
    assert queries.history()[0]["counts"]["created"] == 300


def test_a_disabled_connection_starts_no_run_and_imports_its_files_once_enabled(pipeline: Pipeline) -> None:
    apply("enabled = false\n")
    pipeline.import_files(("import/user/internal/a.csv", people(5)))
    assert sql("SELECT count(*) FROM sync.runs")[0][0] == 0
    assert sql("SELECT status FROM sync.feed_files") == [("registered",)]
    with pytest.raises(CommandError, match="disabled"):
        start_sync(pipeline.settings, "hr-users")
    apply("enabled = true\n")
    pipeline.drain()
    assert queries.history()[0]["status"] == "completed" and active() == 5


def test_on_schedule_files_wait_and_are_merged_into_the_next_scheduled_run(pipeline: Pipeline) -> None:
    start = datetime.now(UTC) - timedelta(hours=1)
    apply(f'trigger = "on_schedule"\n[connections.schedule]\nstart = "{start.isoformat()}"\nevery_days = 1\n')
    pipeline.import_files(("import/user/internal/a.csv", people(3)), ("import/user/internal/b.csv", people(3, 10)))
    assert sql("SELECT count(*) FROM sync.runs")[0][0] == 0
    (run_id,) = scheduler.tick(at=start + timedelta(days=1, minutes=1))
    pipeline.drain()
    run = queries.history()[0]
    assert (run["run_id"], run["type"], run["status"], run["counts"]["read"]) == (run_id, "scheduled", "completed", 6)


def test_each_slot_fires_once_and_a_long_gap_gives_one_catch_up_run(pipeline: Pipeline) -> None:
    start = datetime(2026, 1, 1, 2, 0, tzinfo=UTC)
    apply(f'[connections.schedule]\nstart = "{start.isoformat()}"\nevery_days = 2\n')
    sql("UPDATE sync.schedules SET armed_at = %s", (start - timedelta(days=1),))  # the schedule existed then
    assert scheduler.tick(at=start - timedelta(minutes=1)) == []
    first = scheduler.tick(at=start + timedelta(minutes=1))
    assert len(first) == 1 and scheduler.tick(at=start + timedelta(hours=1)) == []
    pipeline.drain()
    assert scheduler.tick(at=start + timedelta(days=1, hours=23)) == []  # the next slot is on day 2
    assert len(scheduler.tick(at=start + timedelta(days=2, seconds=1))) == 1
    pipeline.drain()
    catch_up = scheduler.tick(at=start + timedelta(days=30))  # 14 slots were due while no scheduler ran
    assert len(catch_up) == 1
    note = sql("SELECT note FROM sync.runs WHERE id = %s", (catch_up[0],))[0][0]
    assert note.startswith("catch-up run: 14 slots were due while no scheduler ran, one run for all")
    assert scheduler.tick(at=start + timedelta(days=30, hours=1)) == []
    pipeline.drain()
    assert [h["type"] for h in queries.history()] == ["scheduled"] * 3


def test_schedules_use_the_database_clock_not_the_hosts(pipeline: Pipeline) -> None:
    import time_machine

    start = datetime.now(UTC) + timedelta(days=3)
    apply(f'[connections.schedule]\nstart = "{start.isoformat()}"\nevery_days = 1\n')
    with time_machine.travel(start + timedelta(days=5)):  # the host clock jumps ahead; the database's does not
        assert datetime.now(UTC) > start, "the host's clock says the first slot is due"
        assert sql("SELECT now() < %s", (start,))[0][0], "the database's clock says it is not"
        assert scheduler.tick() == []


def test_a_full_feed_run_that_read_no_file_deactivates_nobody(pipeline: Pipeline) -> None:
    apply("full_feed = true\n")
    pipeline.import_files(("import/user/internal/day1.csv", people(10)))
    run_id = start_sync(pipeline.settings, "hr-users")  # nothing new in the drop dir
    pipeline.drain()
    run = queries.run_detail(run_id)
    assert run is not None and run["status"] == "completed" and run["plan"]["deactivation_skipped"]
    assert run["counts"]["deactivated"] == 0 and active() == 10


def test_a_full_feed_run_with_an_unreadable_file_deactivates_nobody(pipeline: Pipeline) -> None:
    apply("full_feed = true\n")
    pipeline.import_files(("import/user/internal/day1.csv", people(10)))
    pipeline.drop("import/user/internal/part1.csv", people(5))
    pipeline.drop("import/user/internal/part2.csv", "Mail\nx@x.com\n")  # lacks the mapped columns
    start_sync(pipeline.settings, "hr-users")
    pipeline.drain()
    assert queries.history()[0]["counts"]["deactivated"] == 0 and active() == 10
