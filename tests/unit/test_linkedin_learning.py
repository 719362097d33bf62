"""Kind ``linkedin_learning``: a LinkedIn-shaped server of ours (tests/api_linkedin.py) pages its
catalog and activity, filters by the locales it is sent and checks the bearer token; the stub-broker
pipeline (real PostgreSQL) imports what the fetch wrote: courses into lms.courses, retired when
they leave the catalog, activity into lms.learner_progress and lms.user_skills, and a daily-quota
429 parks the connection until 00:00 UTC."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from producers import alarms, queries, scheduler
from producers.cli import cli
from producers.commands import apply_connections, start_sync
from schemas.connections import ConfigError, load_connections_toml
from schemas.kinds.linkedin_learning import LinkedInLearningConnection
from tests.api_linkedin import SECRET_ENV, LinkedInVendor, activity, course, linkedin_toml, people_csv, renamed
from tests.apiservers import CLIENT_SECRET, Served
from tests.conftest import sql
from tests.stubpipeline import Pipeline
from workers.sources import linkedin as linkedin_source

LEARNERS = [f"learner{i}@example.com" for i in range(20)]


def catalog() -> list[dict[str, Any]]:
    """250 courses in en_US and fr_FR (the filter), 40 in de_DE (outside it); every fifth teaches a skill."""
    found = [course(n, "en_US" if n % 2 else "fr_FR", skills=("Python",) if n % 5 == 0 else ()) for n in range(250)]
    return found + [course(1000 + n, "de_DE") for n in range(40)]


@pytest.fixture
def linkedin(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)
    vendor = LinkedInVendor(courses=catalog())
    with Served(vendor) as served:
        apply_connections(load_connections_toml(linkedin_toml(served.url)))
        yield served


def sync(pipeline: Pipeline) -> dict[str, Any]:
    run_id = start_sync(pipeline.settings, "linkedin")
    pipeline.drain(expect_failures=True)
    run = queries.run_detail(run_id)
    assert run is not None
    return run


def courses() -> dict[str, tuple[Any, ...]]:
    rows = sql(
        """SELECT external_id, status, title, language, duration_minutes, launch_url, collection, tags
           FROM lms.courses WHERE provider = 'linkedin_learning'"""
    )
    return {r[0]: r[1:] for r in rows}


def test_a_catalog_of_250_courses_in_three_pages_lands_and_a_second_pull_without_ten_retires_them(
    pipeline: Pipeline, linkedin: Served
) -> None:
    vendor = linkedin.vendor
    assert isinstance(vendor, LinkedInVendor)

    run = sync(pipeline)

    assert run["status"] == "completed", run.get("error")
    assert (run["details"]["fetched_records"], run["details"]["fetch_requests"]) == (250, 4)  # 3 + activity
    assets = [s for s in vendor.api_requests() if s.path == "/v2/learningAssets"]
    assert [s.query["start"] for s in assets] == [["0"], ["100"], ["200"]]
    first = assets[0]
    assert first.query["assetFilteringCriteria.locales[0].language"] == ["en"]
    assert first.query["assetFilteringCriteria.locales[0].country"] == ["US"]
    assert first.query["assetFilteringCriteria.locales[1].language"] == ["fr"]
    assert first.query["assetFilteringCriteria.assetTypes[0]"] == ["COURSE"]
    assert all(s.headers["Authorization"].startswith("Bearer tok-") for s in vendor.api_requests())
    (token,) = vendor.token_requests()
    assert token.form["grant_type"] == ["client_credentials"]
    found = courses()
    assert len(found) == 250 and {s for s, *_ in found.values()} == {"active"}
    assert found["urn:li:lyndaCourse:7"] == (
        "active",
        "Course 7",
        "en_US",
        67,  # 3,600 + 420 seconds
        "https://www.linkedin.com/learning/course-7",
        "Technology",
        ["linkedin", "self-paced"],
    )
    assert sql("SELECT count(*) FROM lms.course_skills") == [(50,)]
    assert run["content"]["courses_created"] == 250

    vendor.courses = [c for c in vendor.courses if c["urn"] not in {f"urn:li:lyndaCourse:{n}" for n in range(10)}]
    again = sync(pipeline)

    assert again["status"] == "completed", again.get("error")
    assert (again["content"]["courses_retired"], again["content"]["courses_created"]) == (10, 0)
    retired = sorted(k for k, (s, *_) in courses().items() if s == "retired")
    assert retired == sorted(f"urn:li:lyndaCourse:{n}" for n in range(10))
    assert len(courses()) == 250  # retired, never deleted


def test_activity_for_twenty_learners_lands_in_progress_and_an_unknown_email_is_a_row_error(
    pipeline: Pipeline, linkedin: Served
) -> None:
    vendor = linkedin.vendor
    assert isinstance(vendor, LinkedInVendor)
    pipeline.import_files(("import/user/internal/learners.csv", people_csv(LEARNERS)))
    # Learner i: course 5 * i; the even ones completed it (course 0, 10, … teach Python).
    vendor.reports = [
        activity(e, 5 * i, seconds=600 + 60 * i, progress=100 if i % 2 == 0 else 40, completions=int(i % 2 == 0))
        for i, e in enumerate(LEARNERS)
    ] + [activity("stranger@example.com", 1, seconds=60, progress=5)]

    run = sync(pipeline)

    assert run["status"] == "completed_with_errors", run.get("error")
    reports = [s for s in vendor.api_requests() if s.path == "/v2/learningActivityReports"]
    assert reports and reports[0].query["aggregationCriteria.primary"] == ["INDIVIDUAL"]
    rows = sql(
        """SELECT u.email, c.external_id, p.status, p.time_spent_minutes, p.progress_percent, p.completed_on
           FROM lms.learner_progress p JOIN lms.users u ON u.id = p.user_id JOIN lms.courses c ON c.id = p.course_id
           ORDER BY u.email"""
    )
    assert len(rows) == 20
    by_email = {r[0]: r[1:] for r in rows}
    assert by_email["learner3@example.com"] == ("urn:li:lyndaCourse:15", "in_progress", 13, 40, None)
    status, _, _, completed_on = by_email["learner2@example.com"][1:]
    assert (status, str(completed_on)) == ("completed", "2026-11-05")
    assert run["content"]["progress_written"] == 20
    (error,) = queries.errors(run["run_id"])
    # The 21st activity record, after the header and 250 courses: line 272 of the fetched file.
    assert (error["line"], error["column_name"], error["code"]) == (272, "email", "unknown_learner")
    assert "stranger" not in error["message"]
    # The ten who completed a course that teaches Python achieved the skill.
    assert sql("SELECT count(*) FROM lms.user_skills") == [(10,)]


def test_a_daily_quota_429_parks_the_connection_until_midnight_utc_and_schedules_skip_it(
    pipeline: Pipeline, linkedin: Served
) -> None:
    vendor = linkedin.vendor
    vendor.fail("/v2/learningAssets", 429)  # once: a retry would succeed
    now = datetime.now(UTC)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)

    run = sync(pipeline)

    assert run["status"] == "failed"
    assert "daily API quota is used up" in run["error"] and "00:00 UTC" in run["error"]
    assert len(vendor.api_requests()) == 1  # never retried
    ((until, reason),) = sql("SELECT parked_until, parked_reason FROM sync.connections WHERE name = 'linkedin'")
    assert until == midnight and "/v2/learningAssets" in reason
    found = alarms.evaluate()
    assert found is not None
    (alert,) = sql("SELECT message FROM sync.alerts WHERE kind = 'parked' AND connection = 'linkedin'")
    assert f"parked until {midnight:%Y-%m-%d} 00:00Z" in alert[0]
    listed = CliRunner().invoke(cli, ["connections", "list"]).output
    assert f"linkedin: parked until {midnight:%Y-%m-%d} 00:00Z: GET /v2/learningAssets answered HTTP 429" in listed

    schedule = (
        f"[connections.schedule]\nstart = {(now - timedelta(days=3)).strftime('%Y-%m-%dT%H:%M:%SZ')}\nevery_hours = 1\n"
    )
    apply_connections(load_connections_toml(linkedin_toml(linkedin.url, schedule)))
    if now.hour < 23:  # a slot falls due before midnight: parked, it waits
        assert scheduler.tick(at=midnight - timedelta(seconds=1)) == []
    after = scheduler.tick(at=midnight + timedelta(minutes=5))
    assert len(after) == 1
    pipeline.drain(expect_failures=True)  # the first run's failed message is still the broker's
    assert queries.run_detail(after[0])["status"] == "completed"  # type: ignore[index]
    assert sql("SELECT parked_until FROM sync.connections WHERE name = 'linkedin'") == [(None,)]
    alarms.evaluate(at=midnight + timedelta(minutes=6))
    assert sql("SELECT state FROM sync.alerts WHERE kind = 'parked'") == [("RESOLVED",)]


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        ('locales = ["english"]', "locale 'english' is not a language"),
        ('asset_types = ["PODCAST"]', "asset type 'PODCAST' is not one of"),
    ],
)
def test_a_bad_filter_is_refused_on_its_key(extra: str, said: str) -> None:
    text = linkedin_toml("https://api.example.test").replace('locales = ["en_US", "fr_FR"]', extra)
    with pytest.raises(ConfigError) as caught:
        load_connections_toml(text)
    assert said in str(caught.value)


def test_keywords_go_to_linkedin_and_libraries_keep_only_their_courses(
    pipeline: Pipeline, linkedin: Served, tmp_path: Path
) -> None:
    vendor = linkedin.vendor
    assert isinstance(vendor, LinkedInVendor)
    vendor.courses = [course(n, library="Business" if n % 3 == 0 else "Technology") for n in range(30)]
    vendor.courses[4] = renamed(vendor.courses[4], "Python for everyone")
    vendor.courses[6] = renamed(vendor.courses[6], "Advanced Python")
    text = linkedin_toml(linkedin.url, 'keywords = "python"\nlibraries = ["business"]\nactivity_days = 0\n')
    (config,) = load_connections_toml(text)
    assert isinstance(config, LinkedInLearningConnection)

    result = linkedin_source.pull("linkedin", config, pipeline.settings, tmp_path / "feed.csv")

    (sent,) = vendor.api_requests()  # the catalog only: activity_days = 0
    assert sent.query["assetFilteringCriteria.keyword"] == ["python"]
    with result.path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    # Both match the keyword; only course 6 is in the Business library (case does not matter).
    assert [(r["urn"], r["title"], r["library"]) for r in rows] == [
        ("urn:li:lyndaCourse:6", "Advanced Python", "Business")
    ]
    assert list(rows[0]) == list(linkedin_source.COLUMNS)


def test_api_check_shows_how_many_courses_the_filters_find_and_writes_nothing(linkedin: Served) -> None:
    result = CliRunner().invoke(cli, ["api", "check", "linkedin"])

    assert result.exit_code == 0, result.output
    assert "LinkedIn has 250 courses for the connection's filters (locales en_US, fr_FR" in result.output
    assert "urn:li:lyndaCourse:0  Course 0 (fr_FR, Technology)" in result.output
    assert sql("SELECT count(*) FROM lms.courses") == [(0,)]
    assert CLIENT_SECRET not in result.output


def test_api_check_on_a_used_up_quota_says_so_and_parks_nothing(linkedin: Served) -> None:
    linkedin.vendor.fail("/v2/learningAssets", 429)

    result = CliRunner().invoke(cli, ["api", "check", "linkedin"])

    assert result.exit_code != 0
    assert "daily API quota is used up; check again after 00:00 UTC" in result.output
    assert sql("SELECT parked_until FROM sync.connections WHERE name = 'linkedin'") == [(None,)]


def test_a_pull_cut_off_mid_catalog_retires_nothing(pipeline: Pipeline, linkedin: Served) -> None:
    vendor = linkedin.vendor
    assert isinstance(vendor, LinkedInVendor)
    assert sync(pipeline)["status"] == "completed"
    vendor.courses = vendor.courses[:150]  # a catalog that would retire 100 courses ...
    vendor.fail("start=100&count=100", 500, times=50)  # ... but its second page never comes

    run = sync(pipeline)

    assert run["status"] == "failed" and "HTTP 500" in run["error"], run.get("error")
    assert [s.query["start"] for s in vendor.api_requests()][-7:-5] == [["0"], ["100"]]  # page 1 came
    assert sql("SELECT count(*) FROM lms.courses WHERE status = 'active'") == [(250,)]
