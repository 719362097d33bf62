"""Alerts: the open ones (or all) and Acknowledge, on the same functions as `feedsync alerts`
(producers/alerts.py). An acknowledgement is recorded as ``console:NAME`` and audited."""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from producers import alerts as store_alerts
from producers.console import accounts
from producers.console.auth import action, blocking, client, page
from producers.console.views import render


@page
async def alerts(request: Request, s: accounts.Session) -> Response:
    everything = request.query_params.get("all") == "1"
    rows = await blocking(s, store_alerts.list_alerts, everything)
    return render(request, "alerts.html", title="Alerts", rows=rows, everything=everything)


@action("alert_ack")
async def acknowledge(request: Request, s: accounts.Session, form: FormData) -> Response:
    alert_id = request.path_params["alert_id"]
    target = f"alert {alert_id}"
    try:
        await blocking(s, store_alerts.acknowledge, alert_id, f"console:{s.admin.name}")
    except store_alerts.NotAcknowledged as exc:
        await blocking(
            s, accounts.record, s.admin.name, "alert_ack", target, outcome=f"refused: {exc}", client=client(request)
        )
        rows = await blocking(s, store_alerts.list_alerts, True)
        return render(request, "alerts.html", 400, title="Alerts", rows=rows, everything=True, error=str(exc))
    await blocking(s, accounts.record, s.admin.name, "alert_ack", target, client=client(request))
    return RedirectResponse("/alerts", status_code=303)


routes = [
    Route("/alerts", alerts),
    Route("/alerts/{alert_id:int}/ack", acknowledge, methods=["POST"]),
]
