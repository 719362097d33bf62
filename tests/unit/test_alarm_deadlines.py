"""Late and missing feeds on the database clock (``alarms.evaluate(at=...)``), never sleeps: a
deadline in the connection's time zone across both DST changes, around midnight ahead of and
behind UTC, days that leave out weekends, continuous feeds (``every``), and the next on-time run
resolving the alert while a late one does not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from producers import registry
from schemas.connections import ConfigError, load_connections_toml
from tests.conftest import sql
from tests.data import people
from tests.stubpipeline import USERS_TOML, Pipeline
from tests.unit.alarmhelp import connect, evaluate, every_alert, file_arrived, open_alerts, run, utc

ZURICH_0730 = 'by = "07:30"\ntz = "Europe/Zurich"\n'


def test_on_the_night_clocks_go_forward_the_deadline_is_0730_summer_time(settings: object) -> None:
    connect(ZURICH_0730)
    run(utc(2026, 3, 28, 6, 20))  # Saturday 07:20 CET: on time for Saturday (06:30Z)
    evaluate(utc(2026, 3, 28, 6, 45))
    assert open_alerts() == []
    # Sunday 29 March: 07:30 CEST is 05:30Z, an hour earlier in UTC than the day before.
    evaluate(utc(2026, 3, 29, 5, 29))
    assert open_alerts() == []
    evaluate(utc(2026, 3, 29, 5, 31))
    assert open_alerts() == [("missing", "NEW")]
    (alert,) = every_alert()
    assert alert["message"] == "hr-users: no feed arrived for Sun 2026-03-29 07:30 Europe/Zurich (2026-03-29 05:30Z)"


def test_on_the_night_clocks_go_back_the_deadline_is_0730_winter_time(settings: object) -> None:
    connect(ZURICH_0730)
    run(utc(2026, 10, 24, 5, 20))  # Saturday 07:20 CEST: on time (05:30Z)
    # Sunday 25 October: 07:30 CET is 06:30Z; at 06:29Z it is 07:29 in Zurich, not late yet.
    evaluate(utc(2026, 10, 25, 6, 29))
    assert open_alerts() == []
    evaluate(utc(2026, 10, 25, 6, 31))
    assert open_alerts() == [("missing", "NEW")]


def test_a_feed_imported_at_0710_local_on_the_night_clocks_go_back_is_on_time(settings: object) -> None:
    connect(ZURICH_0730)
    run(utc(2026, 10, 24, 5, 20))
    run(utc(2026, 10, 25, 6, 10))  # 07:10 CET, though 08:10 on the summer clock of the day before
    evaluate(utc(2026, 10, 25, 7, 0))
    assert open_alerts() == []


def test_a_by_that_the_clocks_skip_falls_an_hour_later(settings: object) -> None:
    connect('by = "02:30"\ntz = "Europe/Zurich"\n')
    run(utc(2026, 3, 28, 1, 0))  # Saturday 02:00 CET
    evaluate(utc(2026, 3, 29, 1, 15))  # 03:15 CEST: 02:30 never happened, it is read as 03:30
    assert open_alerts() == []
    evaluate(utc(2026, 3, 29, 1, 31))
    assert open_alerts() == [("missing", "NEW")]


def test_a_feed_due_just_after_midnight_in_auckland_counts_the_evening_before_and_the_local_weekday(
    settings: object,
) -> None:
    # Monday 30 November 00:10 in Auckland (UTC+13) is Sunday 29 November 11:10Z, a Sunday in UTC.
    connect('by = "00:10"\ntz = "Pacific/Auckland"\ndays = "mon-fri"\n')
    evaluate(utc(2026, 11, 29, 11, 30))
    assert open_alerts() == [("missing", "NEW")], "Monday's deadline holds although UTC says Sunday"
    assert "Mon 2026-11-30 00:10 Pacific/Auckland" in every_alert()[0]["message"]


def test_a_feed_imported_at_2355_for_a_deadline_at_0010_is_on_time(settings: object) -> None:
    connect('by = "00:10"\ntz = "Pacific/Auckland"\ndays = "mon-fri"\n')
    run(utc(2026, 11, 29, 10, 55))  # Sunday 23:55 in Auckland
    evaluate(utc(2026, 11, 29, 11, 30))
    assert open_alerts() == []


def test_behind_utc_a_grace_past_midnight_makes_the_deadline_the_next_utc_day(settings: object) -> None:
    # Monday 30 November 23:50 in New York (UTC-5) + 30 minutes is Tuesday 1 December 05:20Z.
    connect('by = "23:50"\ntz = "America/New_York"\ndays = "mon-fri"\ngrace_min = 30\n')
    run(utc(2026, 11, 28, 5, 0))  # Friday 27th 00:00 local: on time for Friday
    file_arrived(utc(2026, 12, 1, 4, 0))  # Monday 23:00 local: it arrived, and its run failed
    run(utc(2026, 12, 1, 4, 10), "failed", files_rejected=1)
    evaluate(utc(2026, 12, 1, 5, 15))
    assert open_alerts() == []
    evaluate(utc(2026, 12, 1, 5, 25))
    assert open_alerts() == [("late", "NEW")]
    assert every_alert()[0]["message"] == (
        "hr-users: the feed due Mon 2026-11-30 23:50 + 30 min grace America/New_York (2026-12-01 05:20Z) "
        "was not imported by then (1 file(s) arrived and 1 run(s) started)"
    )


def test_days_mon_fri_expect_nothing_at_the_weekend_and_a_saturday_feed_is_not_mondays(settings: object) -> None:
    connect(ZURICH_0730 + 'days = "mon-fri"\n')
    run(utc(2026, 11, 27, 6, 0))  # Friday, on time
    evaluate(utc(2026, 11, 28, 10, 0))  # Saturday
    evaluate(utc(2026, 11, 29, 10, 0))  # Sunday
    assert open_alerts() == []
    run(utc(2026, 11, 28, 6, 0))  # a feed on Saturday morning ...
    evaluate(utc(2026, 11, 30, 6, 31))  # ... is not Monday's (07:30 CET = 06:30Z)
    assert open_alerts() == [("missing", "NEW")]


def test_a_scheduled_run_that_found_no_file_and_a_dry_run_are_not_the_feed(settings: object) -> None:
    connect(ZURICH_0730)
    run(utc(2026, 11, 29, 6, 29))
    run(utc(2026, 11, 30, 6, 0), files=0)
    run(utc(2026, 11, 30, 6, 5), dry_run=True)
    evaluate(utc(2026, 11, 30, 6, 31))
    assert open_alerts() == [("late", "NEW")]  # runs started, nothing imported


def test_no_deadline_before_the_connection_existed(settings: object) -> None:
    connect(ZURICH_0730, armed=utc(2026, 11, 30, 8, 0))  # created after today's deadline
    evaluate(utc(2026, 11, 30, 9, 0))
    assert open_alerts() == []
    evaluate(utc(2026, 12, 1, 6, 31))
    assert open_alerts() == [("missing", "NEW")]


def test_a_late_import_keeps_the_alert_quietly_and_the_next_on_time_run_resolves_it(settings: object) -> None:
    connect(ZURICH_0730)
    run(utc(2026, 11, 29, 6, 0))
    evaluate(utc(2026, 11, 30, 6, 31))
    assert open_alerts() == [("missing", "NEW")]
    run(utc(2026, 11, 30, 8, 0))  # imported at 09:00, late
    late = evaluate(utc(2026, 11, 30, 9, 0))
    assert open_alerts() == [("missing", "NEW")] and late.opened == [] and late.resolved == 0
    run(utc(2026, 12, 1, 5, 0))  # Tuesday 06:00: on time for Tuesday
    done = evaluate(utc(2026, 12, 1, 5, 1))
    assert done.resolved == 1 and open_alerts() == []
    (alert,) = every_alert()
    assert (alert["state"], alert["resolved_at"]) == ("RESOLVED", utc(2026, 12, 1, 5, 1))


def test_a_feed_imported_late_while_no_scheduler_ran_raises_one_late_alert(settings: object) -> None:
    connect(ZURICH_0730)
    run(utc(2026, 11, 29, 6, 0))
    run(utc(2026, 11, 30, 8, 0))
    evaluate(utc(2026, 11, 30, 9, 0))
    assert open_alerts() == [("late", "NEW")]
    assert every_alert()[0]["message"].endswith("was imported late, at 08:00Z")


def test_every_24h_is_missing_a_day_after_the_last_import_and_late_once_a_file_waits(settings: object) -> None:
    connect('every = "24h"\ngrace_min = 60\n')
    last = utc(2026, 11, 30, 12, 0)
    run(last)
    evaluate(last + timedelta(hours=24, minutes=59))
    assert open_alerts() == []
    evaluate(last + timedelta(hours=25, minutes=1))
    assert open_alerts() == [("missing", "NEW")]
    assert every_alert()[0]["message"] == (
        "hr-users: no feed imported since 2026-11-30 12:00Z (expected every 24h + 60 min grace); nothing arrived since"
    )
    run(last + timedelta(hours=26))
    evaluate(last + timedelta(hours=26, minutes=1))
    assert open_alerts() == []


def test_every_measures_from_a_real_import(pipeline: Pipeline) -> None:
    connect('every = "2h"\n')
    run_id = pipeline.import_files(("import/user/internal/day1.csv", people(5)))
    finished = pipeline_finished(run_id)
    evaluate(finished + timedelta(hours=1))
    assert open_alerts() == []
    pipeline.drop("import/user/internal/day2.csv", people(6))
    registry.scan(pipeline.settings, announce=False)  # registered now, on the real clock
    evaluate(finished + timedelta(hours=3))
    assert open_alerts() == [("late", "NEW")]


def pipeline_finished(run_id: int) -> datetime:
    ((finished,),) = sql("SELECT finished_at FROM sync.runs WHERE id = %s AND status = 'completed'", (run_id,))
    assert isinstance(finished, datetime)
    return finished


@pytest.mark.parametrize(
    ("expect", "says"),
    [
        ('tz = "Europe/Zurch"\n', "expect.tz: unknown time zone 'Europe/Zurch'"),
        ('days = "mon-fry"\n', "expect.days: days 'mon-fry' is not a day"),
        ('by = "7.30"\n', "expect.by: by '7.30' is not a time of day"),
        ('by = "07:30"\nevery = "24h"\n', "expect.every: expect takes by"),
        ('max_row_drift = "20"\n', "expect.max_row_drift: max_row_drift '20' is not a share"),
        ("drift_runs = 1\n", "expect.drift_runs: Input should be greater than or equal to 3"),
    ],
)
def test_a_bad_expect_is_refused_on_its_line(expect: str, says: str) -> None:
    top, mapping = USERS_TOML.split("[connections.mapping]")
    text = top + "[connections.expect]\n" + expect + "\n[connections.mapping]" + mapping
    with pytest.raises(ConfigError) as refused:
        load_connections_toml(text)
    expected_line = text.splitlines().index(expect.splitlines()[-1]) + 1
    assert f"connections.toml:{expected_line}: connections[0] {says}" in str(refused.value)


def test_a_connection_disabled_resolves_its_late_and_missing_alerts(settings: object) -> None:
    """Nothing is expected of a disabled connection: its missing-feed alert must not stay open (and
    listed by feedsync alerts) for as long as it stays disabled."""
    connect(ZURICH_0730)
    evaluate(utc(2026, 11, 3, 7, 0))  # Tuesday 08:00 CET, no feed
    assert open_alerts() == [("missing", "NEW")]
    connect(ZURICH_0730, extra="enabled = false\n")
    evaluate(utc(2026, 11, 3, 7, 5))
    assert open_alerts() == []


def test_a_connection_enabled_again_is_not_late_for_the_days_it_was_off(settings: object) -> None:
    """Deadlines count from when it was enabled again (the database clock at the apply), for a daily
    ``by`` and an ``every`` feed alike."""
    for expect in (ZURICH_0730, 'every = "24h"\n'):
        now = datetime.now(UTC)
        connect(expect, armed=now - timedelta(days=20))
        run(now - timedelta(days=19))
        connect(expect, extra="enabled = false\n", armed=now - timedelta(days=20))
        evaluate(now)
        assert open_alerts() == []
        connect(expect, armed=now - timedelta(days=20))  # enabled again, now
        (enabled_at,) = sql("SELECT enabled_at FROM sync.connections WHERE name = 'hr-users'")[0]
        assert enabled_at >= now
        evaluate(enabled_at + timedelta(minutes=1))
        assert open_alerts() == [], expect
        evaluate(enabled_at + timedelta(days=2))  # a deadline has passed since, with no feed
        assert open_alerts() == [("missing", "NEW")], expect
        sql("DELETE FROM sync.alerts")


SCHEDULE = '\n[connections.schedule]\nstart = "2026-01-01T06:00:00Z"\nevery_hours = 24\n'


def test_while_its_schedule_is_paused_nothing_is_due_and_resumed_it_counts_from_then(settings: object) -> None:
    now = datetime.now(UTC)
    connect(ZURICH_0730 + SCHEDULE, armed=now - timedelta(days=20))
    run(now - timedelta(days=19))
    evaluate(now)
    assert open_alerts() == [("missing", "NEW")]
    connect(ZURICH_0730 + SCHEDULE + "enabled = false\n", armed=now - timedelta(days=20))  # paused
    evaluate(now + timedelta(minutes=1))
    assert open_alerts() == []
    evaluate(now + timedelta(days=3))
    assert open_alerts() == []
    connect(ZURICH_0730 + SCHEDULE, armed=now - timedelta(days=20))  # resumed
    (resumed,) = sql("SELECT s.enabled_at FROM sync.schedules s JOIN sync.connections c ON c.id = s.connection_id")[0]
    evaluate(resumed + timedelta(minutes=1))
    assert open_alerts() == []
    evaluate(resumed + timedelta(days=2))
    assert open_alerts() == [("missing", "NEW")]
