"""Alerts: the open ones (or all), Acknowledge one, and acknowledge many (the ticked ones, or every
NEW one of a kind or connection), on the same functions as `feedsync alerts` (producers/alerts.py).
An acknowledgement is recorded as ``console:NAME`` and audited."""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from producers import alerts as store_alerts
from producers.console import accounts
from producers.console.auth import action, blocking, client, page
from producers.console.views import render
from schemas.states import AlertKind


@page
async def alerts(request: Request, s: accounts.Session) -> Response:
    everything = request.query_params.get("all") == "1"
    rows = await blocking(s, store_alerts.list_alerts, everything)
    return render(request, "alerts.html", title="Alerts", rows=rows, everything=everything, kinds=_KINDS)


_KINDS = sorted(k.value for k in AlertKind)


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
        return render(
            request, "alerts.html", 400, title="Alerts", rows=rows, everything=True, kinds=_KINDS, error=str(exc)
        )
    await blocking(s, accounts.record, s.admin.name, "alert_ack", target, client=client(request))
    return RedirectResponse("/alerts", status_code=303)


@action("alerts_ack")
async def acknowledge_many(request: Request, s: accounts.Session, form: FormData) -> Response:
    """The ticked alerts, or every NEW alert of the kind and connection chosen (both must hold)."""
    try:
        ids = [int(str(v)) for v in form.getlist("id")]
    except ValueError:
        ids = [-1]  # not an alert id: matches nothing, and is refused like any unknown one
    kind, connection = str(form.get("kind") or ""), str(form.get("connection") or "").strip()
    try:
        await blocking(
            s,
            store_alerts.acknowledge_matching,
            f"console:{s.admin.name}",
            ids=ids,
            kinds=[kind] if kind else [],
            connections=[connection] if connection else [],
            admin=s.admin.name,
            client=client(request),
        )
    except store_alerts.NotAcknowledged as exc:
        rows = await blocking(s, store_alerts.list_alerts, False)
        return render(
            request, "alerts.html", 400, title="Alerts", rows=rows, everything=False, kinds=_KINDS, error=str(exc)
        )
    return RedirectResponse("/alerts", status_code=303)


routes = [
    Route("/alerts", alerts),
    Route("/alerts/ack", acknowledge_many, methods=["POST"]),
    Route("/alerts/{alert_id:int}/ack", acknowledge, methods=["POST"]),
]
