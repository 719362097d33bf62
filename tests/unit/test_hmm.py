"""Harvard ManageMentor: course metadata creates, updates and retires courses; dated user feeds
record progress oldest first within a --since window and never move a record backwards."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from producers import queries
from tests.conftest import db_today, sql
from tests.contentdata import META_HEADER, PROGRESS_HEADER, course, progress, setup
from tests.stubpipeline import Pipeline


def sync(pipeline: Pipeline, since: date | None = None) -> dict[str, Any]:
    return pipeline.sync("hmm", since)


def test_metadata_creates_courses_with_tags_and_skills_and_retires_removed_ones(pipeline: Pipeline) -> None:
    setup(pipeline)
    pipeline.drop(
        "import/hmm/hmm12_metadata.csv",
        META_HEADER + course("P1", "Time Management") + course("P2", "Team Creation", "Removed", skills=""),
    )
    run = sync(pipeline)
    assert run["status"] == "completed", run
    assert run["content"] == {"courses_created": 2, "courses_updated": 0, "courses_retired": 1, "progress_written": 0}
    rows = sql(
        "SELECT external_id, title, description, status, tags, duration_minutes, published_on, source_modified_on"
        " FROM lms.courses ORDER BY external_id"
    )
    assert rows == [
        ("P1", "Time Management", "About Time Management, briefly", "active", ["Teams", "Leading"], 45,
         date(2014, 9, 14), date(2024, 5, 2)),
        ("P2", "Team Creation", "About Team Creation, briefly", "retired", ["Teams", "Leading"], 45,
         date(2014, 9, 14), date(2024, 5, 2)),
    ]  # fmt: skip
    assert sql(
        "SELECT c.external_id, s.name FROM lms.course_skills cs JOIN lms.courses c ON c.id = cs.course_id"
        " JOIN lms.skills s ON s.id = cs.skill_id"
    ) == [("P1", "Coaching")]

    # Ann completes P1; then P1 is removed by the provider: it is retired, her record stays.
    pipeline.drop("import/hmm/client_hmm12_20240601.csv", PROGRESS_HEADER + progress("ann@x.com", "P1", "6/1/2024"))
    assert sync(pipeline)["content"]["progress_written"] == 1
    pipeline.drop(
        "import/hmm/hmm12_metadata.csv",
        META_HEADER + course("P1", "Time Management", "Removed", skills="Coaching; Listening"),
    )
    run = sync(pipeline)
    assert (run["content"]["courses_updated"], run["content"]["courses_retired"]) == (1, 1)
    assert sql("SELECT status FROM lms.courses WHERE external_id = 'P1'") == [("retired",)]
    assert sql("SELECT status, completed_on FROM lms.learner_progress") == [("completed", date(2024, 6, 1))]
    assert sql("SELECT count(*) FROM lms.course_skills")[0][0] == 2


def test_three_dated_feeds_apply_oldest_first_within_the_window_and_never_move_back(pipeline: Pipeline) -> None:
    setup(pipeline)
    today = db_today()
    d1, d2, d3 = (today - timedelta(days=n) for n in (5, 3, 1))
    old = today - timedelta(days=20)
    pipeline.drop("import/hmm/hmm12_metadata.csv", META_HEADER + course("P1", "Time Management"))
    # Dropped newest first: the order of arrival must not matter.
    pipeline.drop(  # day 3: a stale export says Ann is only in progress again
        f"import/hmm/client_hmm12_{d3:%Y%m%d}.csv",
        PROGRESS_HEADER + progress("ann@x.com", "P1", first="1/1/2024", last="1/2/2024", visits="2"),
    )
    pipeline.drop(  # day 2: Ann completes, Bob starts
        f"import/hmm/client_hmm12_{d2:%Y%m%d}.csv",
        PROGRESS_HEADER
        + progress("ann@x.com", "P1", "3/5/2024", "1/1/2024", "3/5/2024", "7")
        + progress("bob@x.com", "P1", first="3/1/2024", last="3/1/2024", visits="1"),
    )
    pipeline.drop(
        f"import/hmm/client_hmm12_{d1:%Y%m%d}.csv",
        PROGRESS_HEADER + progress("ann@x.com", "P1", first="1/1/2024", last="2/1/2024", visits="3"),
    )
    pipeline.drop(  # outside the window: never read
        f"import/hmm/client_hmm12_{old:%Y%m%d}.csv", PROGRESS_HEADER + progress("bob@x.com", "P1", "1/1/2020")
    )
    run = sync(pipeline, since=d1)
    assert run["status"] == "completed", run
    assert [f["file"].rsplit("/", 1)[1] for f in run["files"]] == [
        "hmm12_metadata.csv",
        f"client_hmm12_{d1:%Y%m%d}.csv",
        f"client_hmm12_{d2:%Y%m%d}.csv",
        f"client_hmm12_{d3:%Y%m%d}.csv",
    ]
    assert sql(
        "SELECT u.email, p.status, p.first_accessed_on, p.last_accessed_on, p.completed_on, p.visits"
        " FROM lms.learner_progress p JOIN lms.users u ON u.id = p.user_id ORDER BY u.email"
    ) == [
        ("ann@x.com", "completed", date(2024, 1, 1), date(2024, 3, 5), date(2024, 3, 5), 7),
        ("bob@x.com", "in_progress", date(2024, 3, 1), date(2024, 3, 1), None, 1),
    ]
    # Day 1 wrote Ann, day 2 Ann and Bob, day 3 nothing (it would only have moved Ann back).
    assert run["content"]["progress_written"] == 3
    steps = sql(
        "SELECT counts FROM sync.load_batches WHERE run_id = %s AND phase = 'apply_progress' ORDER BY batch_no",
        (run["run_id"],),
    )
    assert [c["progress_written"] for (c,) in steps] == [1, 2, 0]

    before = sql("SELECT user_id, course_id, updated_at FROM lms.learner_progress ORDER BY user_id")
    again = sync(pipeline, since=d3)  # the same day's feed again
    assert again["status"] == "completed" and again["content"]["progress_written"] == 0
    assert sql("SELECT user_id, course_id, updated_at FROM lms.learner_progress ORDER BY user_id") == before


def test_bad_names_unknown_courses_and_unknown_learners_are_clear_errors(pipeline: Pipeline) -> None:
    setup(pipeline)
    pipeline.drop("import/hmm/hmm12_metadata.csv", META_HEADER + course("P1", "Time Management"))
    pipeline.drop("import/hmm/client_hmm12_20241345.csv", PROGRESS_HEADER + progress("ann@x.com", "P1", "1/1/2024"))
    pipeline.drop(
        "import/hmm/client_hmm12_20240601.csv",
        PROGRESS_HEADER
        + progress("ann@x.com", "NOPE", "1/1/2024")
        + progress("zed@x.com", "P1", "1/1/2024")
        + progress("bob@x.com", "P1", "2/30/2024"),
    )
    run = sync(pipeline)
    assert run["status"] == "completed_with_errors"
    bad = next(f for f in run["files"] if f["file"].endswith("20241345.csv"))
    assert bad["status"] == "rejected"
    assert "the date '20241345' in 'client_hmm12_20241345.csv' is not a date in yyyyMMdd form" in bad["error"]
    errors = {(e["line"], e["column_name"], e["code"], e["value"]) for e in queries.errors(run["run_id"])}
    feed = "import/hmm/client_hmm12_20240601.csv"
    assert {(e[0], e[1], e[2], e[3]) for e in errors if e[0] is not None} == {
        (2, "Topic Code", "unknown_course", "NOPE"),
        (3, "Email Address", "unknown_learner", "zed@x.com"),
        (4, "Completion Date", "invalid_date", "2/30/2024"),
    }
    assert all(e["file"] in (feed, "import/hmm/client_hmm12_20241345.csv") for e in queries.errors(run["run_id"]))
    assert sql("SELECT count(*) FROM lms.learner_progress")[0][0] == 0


def test_create_learners_adds_unknown_people_from_the_feed(pipeline: Pipeline) -> None:
    setup(pipeline, "create_learners = true")
    pipeline.drop("import/hmm/hmm12_metadata.csv", META_HEADER + course("P1", "Time Management"))
    pipeline.drop("import/hmm/client_hmm12_20240601.csv", PROGRESS_HEADER + progress("Zed@X.com", "P1", "1/1/2024"))
    run = sync(pipeline)
    assert run["status"] == "completed" and run["details"]["learners_created"] == 1
    assert sql("SELECT email, first_name FROM lms.users WHERE email_key = 'zed@x.com'") == [("Zed@X.com", "U")]


def test_an_on_demand_sync_without_any_feed_fails_and_says_which_files_it_needs(pipeline: Pipeline) -> None:
    setup(pipeline)
    run = sync(pipeline)
    assert run["status"] == "failed"
    assert "a sync needs hmm12_metadata.csv or a client_hmm12_yyyyMMdd.csv user feed" in run["error"]
