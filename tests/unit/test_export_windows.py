"""Export windows run by change time, half-open [start, end), contiguous across scheduled slots; a
rerun rewrites the same file; a file that cannot be written fails the run with one sentence."""

from __future__ import annotations

import contextlib
import resource
import signal
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from producers import queries, scheduler
from producers.commands import apply_connections, rerun
from schemas.connections import load_connections_toml
from tests.conftest import db_today, sql
from tests.contentdata import HMM_TOML, META_HEADER, PROGRESS_HEADER, course, progress
from tests.stubpipeline import Pipeline
from tests.unit.exportdata import export_connections, exported, learning, people, read_rows, sync_failing


def emails(run: dict[str, Any], pipeline: Pipeline) -> list[tuple[str, str]]:
    return [(r["email"], r["LO Unique ID"]) for r in read_rows(exported(pipeline, run))]


def test_a_record_changed_exactly_at_the_window_start_is_in_and_one_just_before_is_not(pipeline: Pipeline) -> None:
    export_connections()
    people(pipeline)
    learning()
    start = "2026-11-01T00:00:00Z"
    sql(
        "UPDATE lms.learner_progress SET updated_at = %s "
        "WHERE course_id = (SELECT id FROM lms.courses WHERE external_id = 'P1')",
        (start,),
    )
    sql(
        "UPDATE lms.learner_progress SET updated_at = %s::timestamptz - interval '1 microsecond' "
        "WHERE course_id = (SELECT id FROM lms.courses WHERE external_id = 'P2')",
        (start,),
    )
    run = pipeline.sync("transcripts", date(2026, 11, 1))
    assert emails(run, pipeline) == [("zoe@x.com", "P1")]


def test_the_window_end_is_exclusive_and_a_rerun_rewrites_the_same_file_with_the_same_window(
    pipeline: Pipeline,
) -> None:
    export_connections()
    people(pipeline)
    learning()
    first = pipeline.sync("transcripts", date(2026, 11, 1))
    path = exported(pipeline, first)
    end = first["export"]["window_to"]
    # Ann's record changed exactly at the end, Zoë's just before it: only Zoë's belongs to this window.
    sql(
        """UPDATE lms.learner_progress p SET updated_at = CASE u.email WHEN 'ann@x.com' THEN %(end)s::timestamptz
                                                  ELSE %(end)s::timestamptz - interval '1 microsecond' END
           FROM lms.users u WHERE u.id = p.user_id""",
        {"end": end},
    )
    path.write_text("stale")
    # The rerun goes through the admin command, as `feedsync rerun` does.
    again_id = rerun(pipeline.settings, "transcripts")
    pipeline.drain()
    again = queries.run_detail(again_id)
    assert again is not None and again["status"] == "completed", again
    assert again["type"] == "rerun"
    assert exported(pipeline, again) == path, "the same file, rewritten"
    assert (again["export"]["window_from"], again["export"]["window_to"]) == (
        first["export"]["window_from"],
        end,
    )
    assert emails(again, pipeline) == [("zoe@x.com", "P1")]
    # The next export starts where that window ended: Ann's change is there.
    nxt = pipeline.sync("transcripts")
    assert nxt["export"]["window_from"] == end
    assert ("ann@x.com", "P2") in emails(nxt, pipeline)


def test_a_late_completion_marked_today_is_in_todays_export(pipeline: Pipeline) -> None:
    """Completed last month, reported today: the export selects by change time, not by completion date."""
    today = db_today()  # before the import, so the windows below from today's start hold its changes
    export_connections()
    apply_connections(load_connections_toml(HMM_TOML.format(extra="")))
    people(pipeline)
    pipeline.drop("import/hmm/hmm12_metadata.csv", META_HEADER + course("P1", "Time Management"))
    last_month = today - timedelta(days=31)
    pipeline.drop(
        f"import/hmm/client_hmm12_{today:%Y%m%d}.csv",
        PROGRESS_HEADER + progress("ann@x.com", "P1", f"{last_month:%m/%d/%Y}", first=f"{last_month:%m/%d/%Y}"),
    )
    assert pipeline.sync("hmm")["status"] == "completed"
    run = pipeline.sync("transcripts", today)
    (row,) = read_rows(exported(pipeline, run))
    assert (row["email"], row["Status"], row["Completion Date (UTC TimeZone)"]) == (
        "ann@x.com",
        "Completed",
        last_month.isoformat(),
    )
    # ... and completing a course achieved its skills, which the skills export reads.
    skills = pipeline.sync("skills", today)
    (skill,) = read_rows(exported(pipeline, skills))
    assert (skill["email"], skill["Skill"], skill["Date Achieved (UTC TimeZone)"]) == (
        "ann@x.com",
        "Coaching",
        last_month.isoformat(),
    )


def test_a_skill_a_course_gains_after_its_completion_is_achieved_by_who_completed_it(pipeline: Pipeline) -> None:
    apply_connections(load_connections_toml(HMM_TOML.format(extra="")))
    people(pipeline)
    pipeline.drop("import/hmm/hmm12_metadata.csv", META_HEADER + course("P1", "Time Management", skills=""))
    pipeline.drop("import/hmm/client_hmm12_20261101.csv", PROGRESS_HEADER + progress("ann@x.com", "P1", "11/1/2026"))
    assert pipeline.sync("hmm")["status"] == "completed"
    assert sql("SELECT count(*) FROM lms.user_skills") == [(0,)]
    pipeline.drop(
        "import/hmm/hmm12_metadata.csv",
        META_HEADER + course("P1", "Time Management", skills="Coaching; Feedback") + course("P9", "Other"),
    )
    assert pipeline.sync("hmm")["status"] == "completed"
    assert sql(
        "SELECT u.email, s.name, us.achieved_on FROM lms.user_skills us JOIN lms.users u ON u.id = us.user_id "
        "JOIN lms.skills s ON s.id = us.skill_id ORDER BY s.name"
    ) == [("ann@x.com", "Coaching", date(2026, 11, 1)), ("ann@x.com", "Feedback", date(2026, 11, 1))]


SCHEDULED = """
[[connections]]
name = "nightly"
kind = "transcript_export"
[connections.schedule]
start = {start}
every_days = 1
"""


def test_scheduled_exports_fire_once_per_slot_and_a_missed_slot_leaves_no_gap(pipeline: Pipeline) -> None:
    start = (datetime.now(UTC) - timedelta(days=3)).replace(microsecond=0)
    apply_connections(load_connections_toml(SCHEDULED.format(start=start.isoformat().replace("+00:00", "Z"))))
    sql("UPDATE sync.schedules SET armed_at = start_at")  # armed since its start
    people(pipeline)
    learning(changed_at=(start + timedelta(hours=1)).isoformat())

    (first_id,) = scheduler.tick(at=start + timedelta(days=1, minutes=1))
    assert scheduler.tick(at=start + timedelta(days=1, minutes=2)) == [], "one run per slot"
    pipeline.drain()
    first = queries.run_detail(first_id)
    assert first is not None and first["status"] == "completed", first
    assert datetime.fromisoformat(first["export"]["window_from"]) == start, "the first slot starts at the schedule"
    assert len(read_rows(exported(pipeline, first))) == 2

    # A record changes; the next slot is missed (no scheduler ran); the slot after it catches up.
    sql("UPDATE lms.learner_progress SET updated_at = clock_timestamp(), score = 99 WHERE score = 83")
    (catch_up_id,) = scheduler.tick(at=start + timedelta(days=3, minutes=1))
    pipeline.drain()
    catch_up = queries.run_detail(catch_up_id)
    assert catch_up is not None and catch_up["status"] == "completed", catch_up
    assert catch_up["export"]["window_from"] == first["export"]["window_to"], "contiguous: no gap, no overlap"
    assert "catch-up run" in catch_up["note"]
    assert [(r["email"], r["Quiz Score"]) for r in read_rows(exported(pipeline, catch_up))] == [("zoe@x.com", "99")]
    assert exported(pipeline, catch_up) != exported(pipeline, first)


def test_an_on_demand_export_without_since_and_nothing_before_it_fails_saying_to_give_since(
    pipeline: Pipeline,
) -> None:
    export_connections()
    run = sync_failing(pipeline, "transcripts")
    assert run["status"] == "failed"
    assert run["error"] == "transcripts has no earlier export to continue from: sync it with --since YYYY-MM-DD"


@contextlib.contextmanager
def small_files() -> Iterator[None]:
    """Files of this process may not grow past 4 KiB: a full disk, as the writer sees it (EFBIG).
    Only around the export: the limit is the whole process's, and pytest's own report (a log file
    past 4 KiB in CI) must not meet it."""
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, old_limit[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)


def test_a_full_disk_fails_the_run_with_one_sentence_and_leaves_no_file(pipeline: Pipeline) -> None:
    export_connections()
    people(pipeline)
    learning()
    sql(
        """INSERT INTO lms.courses (provider, external_id, title)
           SELECT 'hmm', 'X' || n, repeat('long title ', 20) FROM generate_series(1, 100) n"""
    )
    sql(
        """INSERT INTO lms.learner_progress (user_id, course_id, status, updated_at)
           SELECT u.id, c.id, 'completed', '2026-11-20' FROM lms.users u, lms.courses c WHERE c.external_id ~ '^X'"""
    )
    with small_files():
        run = sync_failing(pipeline, "transcripts", date(2026, 11, 1))
    assert run["status"] == "failed"
    folder = pipeline.settings.export_dir / "export" / "transcripts"
    assert run["error"].startswith("the export file learner_transcript_2026-11-01_to_")
    assert f"could not be written to {folder} (File too large)" in run["error"]
    assert run["error"].count(". ") == 0, "one sentence"
    assert list(folder.iterdir()) == [], "nothing under the final name, no .part left"
    assert [(e["code"], e["file"]) for e in queries.errors(run["run_id"])] == [
        ("export_not_written", run["export"]["file"])
    ]


def test_an_unwritable_folder_fails_the_run_with_one_sentence(pipeline: Pipeline) -> None:
    export_connections()
    people(pipeline)
    learning()
    blocked = pipeline.settings.export_dir / "export" / "transcripts"
    blocked.parent.mkdir(parents=True)
    blocked.write_text("a file where the folder should be")
    run = sync_failing(pipeline, "transcripts", date(2026, 11, 1))
    assert run["status"] == "failed"
    assert "could not be written to" in run["error"] and "make the folder writable" in run["error"]
    assert blocked.read_text() == "a file where the folder should be"


def test_a_failed_export_sends_its_connections_warning(
    pipeline: Pipeline,
    webhook: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = webhook
    apply_connections(
        load_connections_toml(
            f'[[connections]]\nname = "transcripts"\nkind = "transcript_export"\n'
            f'[connections.notify]\nwebhook = "{url}"\n'
        )
    )
    blocked = pipeline.settings.export_dir / "export" / "transcripts"
    blocked.parent.mkdir(parents=True)
    blocked.write_text("a file where the folder should be")
    run = sync_failing(pipeline, "transcripts", date(2026, 11, 1))
    assert run["status"] == "failed"
    assert [(m["connection"], m["status"]) for m in received] == [("transcripts", "failed")]
    assert sql("SELECT channel, sent_at IS NOT NULL, error FROM sync.notifications") == [("webhook", True, None)]
