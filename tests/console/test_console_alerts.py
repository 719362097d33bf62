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
