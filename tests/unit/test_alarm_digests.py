"""Alarms leave the scheduler's thread: a webhook that never answers (a real local server that
accepts and stays silent) delays no schedule slot; the notifier's rounds keep to their budget; a
flood of alerts is one digest per destination and round. On the database clock where it can be;
the scheduler loop test waits on conditions, never a fixed time."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from producers import alarms, notifier, scheduler
from schemas.settings import get_settings
from tests.alarmdata import connections, failed
from tests.conftest import sql
from tests.notifying import Inbox
from tests.unit.alarmhelp import utc
from tests.waiting import poll_until

T0 = utc(2026, 11, 1, 12, 0)


class Tarpit:
    """A local HTTP server that accepts every connection and never answers (nor closes)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.accepted = threading.Event()
        self.held: list[socket.socket] = []
        self.hanging = 0  # requests whose client has not given up yet
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                self.held.append(conn)
                self.hanging += 1
            self.accepted.set()
            threading.Thread(target=self._drain, args=(conn,), daemon=True).start()

    def _drain(self, conn: socket.socket) -> None:
        try:
            while conn.recv(4096):
                pass  # read the request, answer nothing
        except OSError:
            pass
        with self._lock:
            self.hanging -= 1

    def close(self) -> None:
        self.listener.close()
        with self._lock:
            for conn in self.held:
                # The hanging requests end at once (a close alone would wait for the draining
                # thread's recv): no test waits out a timeout.
                with contextlib.suppress(OSError):  # the client is gone already
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()


@pytest.fixture
def tarpit(allow_private: None) -> Iterator[Tarpit]:
    server = Tarpit()
    try:
        yield server
    finally:
        server.close()


def wait_for(condition: Any, seconds: float, what: str) -> None:
    poll_until(condition, timeout=seconds, message=what)


def test_a_schedule_slot_fires_on_time_while_an_alarm_webhook_never_answers(
    settings: object, tarpit: Tarpit, monkeypatch: pytest.MonkeyPatch
) -> None:
    schedule = f'\n[connections.schedule]\nstart = "{T0.isoformat()}"\nevery_days = 1\n'
    connections(["hr-users"], f'\n[connections.notify]\nwebhook = "{tarpit.url()}"\n')
    connections(["nightly"], schedule, expect="")
    failed("hr-users", sql("SELECT now()")[0][0])
    sql("UPDATE sync.schedules SET armed_at = now() + interval '10 days'")  # no slot due yet
    # Long enough that a scheduler waiting on the webhook could not fire the slot in time.
    monkeypatch.setenv("FEEDSYNC_NOTIFY_TIMEOUT_S", "60")
    monkeypatch.setenv("FEEDSYNC_OUTBOX_SWEEP_INTERVAL_S", "0.05")
    get_settings.cache_clear()
    stopping = threading.Event()
    loop = threading.Thread(target=scheduler.run, args=(get_settings(), stopping))
    loop.start()
    try:
        assert tarpit.accepted.wait(60), "the alarm was never sent"
        sql("UPDATE sync.schedules SET armed_at = now() - interval '2 days'")  # the slot is due now
        scheduled = "SELECT count(*) FROM sync.runs WHERE trigger = 'scheduled' AND connection_name = 'nightly'"
        wait_for(lambda: sql(scheduled)[0][0] == 1, 30, "the slot did not fire while the webhook hung")
        assert tarpit.hanging == 1, "the webhook's request was still waiting when the slot fired"
    finally:
        stopping.set()
        tarpit.close()
        loop.join()
    assert not loop.is_alive()


def test_a_notifier_round_keeps_to_its_budget_and_leaves_the_rest_for_the_next(
    settings: object, tarpit: Tarpit, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEEDSYNC_NOTIFY_TIMEOUT_S", "1")
    get_settings.cache_clear()
    names = ["a", "b", "c"]  # three destinations: one digest each
    connections(names, f'\n[connections.notify]\nwebhook = "{tarpit.url("/{name}")}"\n')
    for name in names:
        failed(name, T0)
    assert alarms.evaluate(at=T0 + timedelta(minutes=1)) is not None
    waiting = "SELECT count(*) FROM sync.alert_digests WHERE claimed_at IS NULL"
    assert sql(waiting)[0][0] == 3

    first = notifier.deliver(0.5)  # a budget shorter than one webhook's timeout: one digest goes
    assert len(first.digests) == 1
    (outcome,) = first.digests.values()
    assert "could not be reached" in outcome
    assert sql(waiting)[0][0] == 2

    rest = notifier.deliver(60)
    assert len(rest.digests) == 2 and sql(waiting)[0][0] == 0
    assert sql("SELECT count(*) FROM sync.alerts WHERE notify_error LIKE 'webhook: the webhook could not%'")[0][0] == 3


def test_an_alarm_flood_is_one_message_per_destination_and_round_with_counts(
    settings: object,
    smtp: Inbox,
    webhook: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = webhook
    names = [f"feed-{i:02}" for i in range(12)]
    connections(names, f'\n[connections.notify]\nwebhook = "{url}"\nemail = ["hr-it@example.com"]\n')
    for name in names:
        failed(name, T0)
    evaluated = alarms.evaluate(at=T0 + timedelta(minutes=1))
    assert evaluated is not None and len(evaluated.notified) == 12
    notifier.deliver(60)

    (hook,) = received
    assert (hook["event"], hook["count"], hook["counts"]) == ("alerts", 12, {"failed_runs": 12})
    assert sorted(a["connection"] for a in hook["alerts"]) == names
    assert hook["acknowledge"].startswith("feedsync alerts ack 1 2 3")
    ((recipients, mail),) = smtp.messages
    assert recipients == ["hr-it@example.com"] and mail["Subject"] == "feedsync alerts: 12 (12 failed runs)"
    body = mail.get_payload()
    assert body.startswith("12 alert(s): 12 failed runs.") and "feed-07: the last 1 runs failed" in body

    # Within the hour nothing is sent again; after it, all twelve again in one message.
    for minutes in (2, 30):
        assert alarms.evaluate(at=T0 + timedelta(minutes=minutes)) is not None
        notifier.deliver(60)
    assert len(received) == 1 and len(smtp.messages) == 1
    assert alarms.evaluate(at=T0 + timedelta(minutes=61)) is not None
    notifier.deliver(60)
    assert len(received) == 2 and received[1]["count"] == 12 and len(smtp.messages) == 2


def test_alerts_of_later_rounds_join_the_digest_still_waiting_for_their_destination(
    settings: object,
    webhook: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = webhook
    notify = f'\n[connections.notify]\nwebhook = "{url}"\n'
    connections(["a", "b"], notify)
    failed("a", T0)
    assert alarms.evaluate(at=T0 + timedelta(minutes=1)) is not None  # queued; the notifier is busy elsewhere
    failed("b", T0 + timedelta(minutes=1))
    assert alarms.evaluate(at=T0 + timedelta(minutes=2)) is not None
    assert sql("SELECT alert_ids FROM sync.alert_digests") == [([1, 2],)]
    notifier.deliver(60)
    (hook,) = received
    assert [a["connection"] for a in hook["alerts"]] == ["a", "b"]


def test_an_alert_acknowledged_before_its_digest_goes_is_left_out(
    settings: object,
    webhook: tuple[str, list[dict[str, Any]]],
) -> None:
    from producers.alerts import acknowledge

    url, received = webhook
    connections(["a", "b"], f'\n[connections.notify]\nwebhook = "{url}"\n')
    failed("a", T0)
    failed("b", T0)
    assert alarms.evaluate(at=T0 + timedelta(minutes=1)) is not None
    acknowledge(1, "alice")
    notifier.deliver(60)
    (hook,) = received
    assert [a["alert_id"] for a in hook["alerts"]] == [2]
