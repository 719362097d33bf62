"""The console's alerts page lists what `feedsync alerts` lists and acknowledges as `alerts ack`
does, recording the console admin and auditing it."""

from __future__ import annotations

from datetime import timedelta

from starlette.testclient import TestClient

from tests.conftest import sql
from tests.console.conftest import form_token
from tests.unit.alarmhelp import connect, evaluate, every_alert, run, utc

T0 = utc(2026, 11, 1, 12, 0)


def test_an_admin_acknowledges_an_alert_from_the_alerts_page(as_admin: TestClient) -> None:
    connect("max_failed_runs = 1\n")
    run(T0, "failed")
    evaluate(T0 + timedelta(minutes=1))
    page = as_admin.get("/alerts")
    assert page.status_code == 200
    assert "the last 1 runs failed" in page.text and 'action="/alerts/1/ack"' in page.text

    r = as_admin.post("/alerts/1/ack", data={"csrf": form_token(as_admin, "/alerts")}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/alerts"
    (alert,) = every_alert()
    assert (alert["state"], alert["acknowledged_by"]) == ("ACKNOWLEDGED", "console:ada")
    assert 'action="/alerts/1/ack"' not in as_admin.get("/alerts").text

    again = as_admin.post("/alerts/1/ack", data={"csrf": form_token(as_admin, "/alerts")})
    assert again.status_code == 400 and "already acknowledged by console:ada" in again.text
    audited = sql("SELECT admin, action, target, outcome FROM sync.audit WHERE action = 'alert_ack' ORDER BY id")
    assert [(a, t, o[:7]) for (a, _, t, o) in audited] == [("ada", "alert 1", "ok"), ("ada", "alert 1", "refused")]


def test_resolved_alerts_show_only_when_asked(as_admin: TestClient) -> None:
    connect("max_failed_runs = 1\n")
    run(T0, "failed")
    evaluate(T0 + timedelta(minutes=1))
    run(T0 + timedelta(minutes=2))
    evaluate(T0 + timedelta(minutes=3))
    assert "No open alerts." in as_admin.get("/alerts").text
    assert "RESOLVED" in as_admin.get("/alerts?all=1").text


def test_an_admin_acknowledges_ticked_alerts_or_every_match_at_once_audited(as_admin: TestClient) -> None:
    from tests.alarmdata import flood, states

    flood()  # 1 failed_runs and 2 dead_letter on hr-a, 3 failed_runs on hr-b, 4 failed_runs on lms-c
    page = as_admin.get("/alerts")
    assert 'action="/alerts/ack"' in page.text and 'name="id" value="3" form="bulk-ack"' in page.text

    ticked = as_admin.post(
        "/alerts/ack", data={"csrf": form_token(as_admin, "/alerts"), "id": ["2", "4"]}, follow_redirects=False
    )
    assert ticked.status_code == 303
    matching = as_admin.post(
        "/alerts/ack",
        data={"csrf": form_token(as_admin, "/alerts"), "kind": "failed_runs", "connection": "hr-*"},
        follow_redirects=False,
    )
    assert matching.status_code == 303
    assert states() == [(i, "ACKNOWLEDGED", "console:ada") for i in (1, 2, 3, 4)]

    none_left = as_admin.post("/alerts/ack", data={"csrf": form_token(as_admin, "/alerts"), "kind": "failed_runs"})
    assert none_left.status_code == 400 and "no NEW alert matches kind failed_runs" in none_left.text
    audited = sql("SELECT admin, target, outcome, detail FROM sync.audit WHERE action = 'alerts_ack' ORDER BY id")
    assert audited == [
        ("ada", "alerts 2, 4", "ok", {"ids": [2, 4]}),
        ("ada", "kind failed_runs; connection hr-*", "ok", {"ids": [1, 3]}),
        ("ada", "kind failed_runs", "refused: no open alert not yet acknowledged matches", {"ids": []}),
    ]
