"""Alarms other than deadlines (row drift, failed runs in a row, a held run, a dead letter), how an
alert is sent (once, again only after an hour, never once acknowledged), `feedsync alerts`, and
two schedulers evaluating at once. On the database clock, never sleeps."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from typing import Any

import pytest
from click.testing import CliRunner

from producers import alarms, alerts, notifier
from producers.cli import cli
from producers.commands import reject
from tests.conftest import sql
from tests.data import people
from tests.gates import Gate
from tests.notifying import Inbox
from tests.stubpipeline import Pipeline
from tests.unit.alarmhelp import NAME, connect, evaluate, every_alert, open_alerts, run, utc
from tests.waiting import poll_until
from workers import store

T0 = utc(2026, 11, 1, 12, 0)


def history(reads: list[int]) -> None:
    """Successful runs a day apart, oldest first, reading these many rows."""
    for day, read in enumerate(reads):
        run(T0 + timedelta(days=day), read=read)


def test_row_drift_waits_for_enough_history_then_compares_with_the_median(settings: object) -> None:
    connect('max_row_drift = "20%"\n')  # against the 14 successful runs before the latest (the default)
    history([1000, 990, 1010] * 4 + [1000, 500])  # 13 runs before the latest: too little history
    evaluate(T0 + timedelta(days=20))
    assert open_alerts() == []

    sql("DELETE FROM sync.runs")
    history([1000, 990, 1010] * 4 + [1000, 1005, 500])  # 14 before it
    evaluate(T0 + timedelta(days=20))
    assert open_alerts() == [("row_drift", "NEW")]
    assert every_alert()[0]["message"] == (
        "hr-users: run 29 read 500 rows, 50% below the median 1000 of the 14 successful runs before it "
        "(max_row_drift 20%)"
    )
    run(T0 + timedelta(days=21), read=1150)  # 15% above: within the limit
    evaluate(T0 + timedelta(days=22))
    assert open_alerts() == []


def test_row_drift_counts_only_successful_imports_and_takes_a_configured_n(settings: object) -> None:
    connect('max_row_drift = "10%"\ndrift_runs = 3\n')
    history([100, 100, 100])
    run(T0 + timedelta(days=3), "failed", read=5)  # failed runs are not what the feed usually holds
    evaluate(T0 + timedelta(days=4))
    assert open_alerts() == []  # 2 successful runs before the latest successful one: too few
    run(T0 + timedelta(days=5), read=130)
    evaluate(T0 + timedelta(days=6))
    assert open_alerts() == [("row_drift", "NEW")]


def test_three_failed_runs_in_a_row_raise_an_alarm_and_a_success_resolves_it(settings: object) -> None:
    connect("")  # no expect keys: failed runs, held runs and dead letters still raise alarms
    run(T0, "failed")
    run(T0 + timedelta(hours=1), "completed")
    run(T0 + timedelta(hours=2), "failed")
    run(T0 + timedelta(hours=3), "failed")
    evaluate(T0 + timedelta(hours=4))
    assert open_alerts() == []  # two in a row
    last = run(T0 + timedelta(hours=4), "failed")
    evaluate(T0 + timedelta(hours=5))
    assert open_alerts() == [("failed_runs", "NEW")]
    assert (
        every_alert()[0]["message"] == f"hr-users: the last 3 runs failed (runs 3, 4, {last}); see feedsync run {last}"
    )
    run(T0 + timedelta(hours=6), "completed_with_errors")
    evaluate(T0 + timedelta(hours=7))
    assert open_alerts() == []


def test_max_failed_runs_0_switches_the_alarm_off(settings: object) -> None:
    connect("max_failed_runs = 0\n")
    for h in range(5):
        run(T0 + timedelta(hours=h), "failed")
    evaluate(T0 + timedelta(hours=6))
    assert open_alerts() == []


def test_a_run_held_for_approval_raises_an_alarm_resolved_when_decided(pipeline: Pipeline) -> None:
    connect("", extra="full_feed = true\n")
    pipeline.import_files(("import/user/internal/day1.csv", people(100)))
    held = pipeline.import_files(("import/user/internal/day2.csv", people(50)))
    assert sql("SELECT status FROM sync.runs WHERE id = %s", (held,)) == [("awaiting_approval",)]
    now = sql("SELECT now()")[0][0]
    evaluate(now)
    assert open_alerts() == [("held", "NEW")]
    assert every_alert()[0]["message"] == (
        f"hr-users: run {held} waits for approval: see its plan with feedsync run {held}, then approve or reject"
    )
    reject(held)
    evaluate(now + timedelta(minutes=1))
    assert open_alerts() == []


def test_held_false_switches_the_held_alarm_off(settings: object) -> None:
    connect("held = false\n")
    run(None, "awaiting_approval", started=T0)
    evaluate(T0 + timedelta(hours=1))
    assert open_alerts() == []


def dead_letter(run_id: int, message_id: str = "m-1") -> int:
    (row,) = sql(
        """INSERT INTO sync.dead_letters (message_id, queue_name, actor_name, run_id, message, error, attempts)
           VALUES (%s, 'load', 'load_run', %s, '{}', 'stage failed', 5) RETURNING id""",
        (message_id, run_id),
    )
    return int(row[0])


def test_a_dead_letter_raises_an_alarm_until_it_is_replayed(settings: object) -> None:
    connect("")
    dead = dead_letter(run(T0, "failed"))
    evaluate(T0 + timedelta(minutes=5))
    assert open_alerts() == [("dead_letter", "NEW")]
    assert every_alert()[0]["message"] == (
        f"hr-users: 1 dead letter(s) not replayed, the latest {dead}: "
        f"see feedsync dlq show {dead}, then feedsync dlq replay"
    )
    sql("UPDATE sync.dead_letters SET replayed_at = now()")
    evaluate(T0 + timedelta(minutes=10))
    assert open_alerts() == []


def test_dead_letters_false_switches_the_dead_letter_alarm_off(settings: object) -> None:
    connect("dead_letters = false\n")
    dead_letter(run(T0, "failed"))
    evaluate(T0 + timedelta(minutes=5))
    assert open_alerts() == []


def notify_toml(url: str) -> str:
    return f'[connections.notify]\nwebhook = "{url}"\nemail = ["hr-it@example.com"]\n'


def test_a_repeated_condition_is_one_alert_and_one_message_and_is_sent_again_after_an_hour(
    settings: object,
    smtp: Inbox,
    webhook: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = webhook
    connect('by = "07:30"\ntz = "Europe/Zurich"\n', extra=notify_toml(url))
    run(utc(2026, 11, 29, 6, 0))
    first = utc(2026, 11, 30, 6, 31)
    for minutes in (0, 1, 30, 59):
        evaluate(first + timedelta(minutes=minutes))
    (alert,) = every_alert()
    assert (alert["kind"], alert["state"], alert["first_seen"], alert["last_seen"]) == (
        "missing", "NEW", first, first + timedelta(minutes=59),
    )  # fmt: skip
    assert len(received) == 1 and len(smtp.messages) == 1
    hook = received[0]  # a digest of this round's alerts: here one
    assert (hook["event"], hook["count"], hook["counts"]) == ("alerts", 1, {"missing": 1})
    (listed,) = hook["alerts"]
    assert (listed["alert_id"], listed["kind"], listed["connection"]) == (alert["id"], "missing", NAME)
    assert hook["acknowledge"] == listed["acknowledge"] == f"feedsync alerts ack {alert['id']}"
    recipients, mail = smtp.messages[0]
    assert recipients == ["hr-it@example.com"] and mail["Subject"] == "feedsync alert: missing on hr-users"
    assert "no feed arrived for Mon 2026-11-30 07:30 Europe/Zurich" in mail.get_payload()

    again = evaluate(first + timedelta(minutes=60))
    assert again.notified == [alert["id"]] and len(received) == 2 and len(smtp.messages) == 2
    assert every_alert()[0]["last_notified_at"] == first + timedelta(minutes=60)


def test_an_acknowledged_alert_is_not_sent_again_and_still_resolves(
    settings: object,
    webhook: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = webhook
    connect("max_failed_runs = 1\n", extra=notify_toml(url).replace('email = ["hr-it@example.com"]\n', ""))
    run(T0, "failed")
    evaluate(T0 + timedelta(minutes=1))
    (alert,) = every_alert()

    acked = CliRunner().invoke(cli, ["alerts", "ack", str(alert["id"]), "--by", "alice"])
    assert acked.exit_code == 0, acked.output
    assert acked.output == f"alert {alert['id']} (failed_runs on hr-users) acknowledged by alice\n"
    evaluate(T0 + timedelta(hours=3))
    assert len(received) == 1 and open_alerts() == [("failed_runs", "ACKNOWLEDGED")]
    twice = CliRunner().invoke(cli, ["alerts", "ack", str(alert["id"])])
    assert twice.exit_code == 1 and "already acknowledged by alice" in twice.output

    run(T0 + timedelta(hours=4))
    evaluate(T0 + timedelta(hours=5))
    (done,) = every_alert()
    assert (done["state"], done["acknowledged_by"], done["resolved_at"]) == (
        "RESOLVED",
        "alice",
        T0 + timedelta(hours=5),
    )
    after = CliRunner().invoke(cli, ["alerts", "ack", str(alert["id"])])
    assert after.exit_code == 1 and "was resolved at" in after.output


def test_alerts_lists_open_ones_and_all_with_json_and_ack_records_the_os_user(settings: object) -> None:
    connect("max_failed_runs = 1\n")
    run(T0, "failed")
    evaluate(T0 + timedelta(minutes=1))
    run(T0 + timedelta(minutes=2))
    evaluate(T0 + timedelta(minutes=3))  # resolved
    run(T0 + timedelta(minutes=4), "failed")
    evaluate(T0 + timedelta(minutes=5))  # a new alert of the same kind

    listed = CliRunner().invoke(cli, ["alerts", "--json"])
    assert listed.exit_code == 0, listed.output
    (open_one,) = json.loads(listed.output)
    assert (open_one["id"], open_one["kind"], open_one["state"]) == (2, "failed_runs", "NEW")
    both = json.loads(CliRunner().invoke(cli, ["alerts", "--json", "--all"]).output)
    assert [(a["id"], a["state"]) for a in both] == [(2, "NEW"), (1, "RESOLVED")]
    table = CliRunner().invoke(cli, ["alerts"]).output.splitlines()
    assert table[0].split()[:4] == ["ID", "KIND", "CONNECTION", "STATE"] and table[1].split()[:4] == [
        "2", "failed_runs", "hr-users", "NEW",
    ]  # fmt: skip

    acked = CliRunner().invoke(cli, ["alerts", "ack", "2"])
    assert acked.exit_code == 0, acked.output
    from producers.dlq import admin_identity

    assert every_alert()[1]["acknowledged_by"] == admin_identity()
    missing = CliRunner().invoke(cli, ["alerts", "ack", "99"])
    assert missing.exit_code == 1 and "no alert 99" in missing.output


def test_two_schedulers_evaluating_at_once_give_one_alert_and_one_message(
    settings: object,
    gate: Gate,
    monkeypatch: pytest.MonkeyPatch,
    webhook: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = webhook
    connect("max_failed_runs = 1\n", extra=notify_toml(url).replace('email = ["hr-it@example.com"]\n', ""))
    run(T0, "failed")
    at = T0 + timedelta(minutes=1)
    monkeypatch.setenv("FEEDSYNC_FAILPOINTS", gate.at("alarms.evaluated"))
    first: list[alarms.Evaluation | None] = []
    scheduler_a = threading.Thread(target=lambda: first.append(alarms.evaluate(at=at)))
    scheduler_a.start()
    gate.wait_reached()  # A has written and claimed the alert and holds the lock, not yet committed
    second = alarms.evaluate(at=at)  # scheduler B, at the same moment
    gate.open()
    scheduler_a.join()
    notifier.deliver(60)  # the notifier sends what the evaluation queued
    assert second is None
    assert first[0] is not None and first[0].opened == [1] and first[0].notified == [1]
    assert len(every_alert()) == 1 and len(received) == 1
    monkeypatch.delenv("FEEDSYNC_FAILPOINTS")
    assert evaluate(at).notified == [] and len(received) == 1  # evaluated again: the same alert, not sent again


def test_the_advisory_lock_makes_a_second_evaluation_skip_while_one_runs(settings: object) -> None:
    connect("max_failed_runs = 1\n")
    run(T0, "failed")
    with store.connect() as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (alarms.LOCK_KEY,))  # an evaluation in progress
        assert alarms.evaluate(at=T0 + timedelta(minutes=1)) is None
    assert alerts.list_alerts() == []
    assert evaluate(T0 + timedelta(minutes=2)).opened == [1]


def test_a_deleted_connections_alerts_are_resolved(settings: object) -> None:
    from producers.connection_admin import delete_connection

    connect("max_failed_runs = 1\n")
    run(T0, "failed")
    evaluate(T0 + timedelta(minutes=1))
    delete_connection(NAME)
    assert evaluate(T0 + timedelta(minutes=2)).resolved == 1 and open_alerts() == []


def test_the_scheduler_loop_evaluates_the_alarms(settings: object, monkeypatch: pytest.MonkeyPatch) -> None:

    from producers import scheduler
    from schemas.settings import get_settings

    connect("max_failed_runs = 1\n")
    run(sql("SELECT now()")[0][0], "failed")
    monkeypatch.setenv("FEEDSYNC_OUTBOX_SWEEP_INTERVAL_S", "0.05")
    get_settings.cache_clear()
    stopping = threading.Event()
    loop = threading.Thread(target=scheduler.run, args=(get_settings(), stopping))
    loop.start()
    try:
        poll_until(alerts.list_alerts, timeout=60, message="the scheduler raised no alert")
    finally:
        stopping.set()
        loop.join()
    assert open_alerts() == [("failed_runs", "NEW")]


def test_undo_runs_neither_break_nor_make_a_streak_of_failed_runs(settings: object) -> None:
    """An undo is an admin's action, not the feed's: one that completes does not hide that the feed
    keeps failing, and refused ones do not make a streak of their own."""
    connect("")
    run(T0, "failed")
    run(T0 + timedelta(hours=1), "failed")
    undone = run(T0 + timedelta(hours=2), "completed", files=0)
    sql("UPDATE sync.runs SET trigger = 'undo' WHERE id = %s", (undone,))
    run(T0 + timedelta(hours=3), "failed")
    evaluate(T0 + timedelta(hours=4))
    assert open_alerts() == [("failed_runs", "NEW")]

    sql("DELETE FROM sync.alerts")
    run(T0 + timedelta(hours=5), "completed")
    for h in (6, 7):
        refused = run(T0 + timedelta(hours=h), "failed", files=0)
        sql("UPDATE sync.runs SET trigger = 'undo' WHERE id = %s", (refused,))
    run(T0 + timedelta(hours=8), "failed")
    evaluate(T0 + timedelta(hours=9))
    assert open_alerts() == []
