"""Execution status: runs with filters and counts, a run's page (files, stages, plan with Approve
and Reject, Undo, live status), its error report as a page and as CSV, an export's file."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Route

from producers import commands, plans, queries
from producers.console import accounts
from producers.console.auth import action, blocking, client, page
from producers.console.views import render
from producers.output import write_csv
from schemas.settings import get_settings
from schemas.states import RunStatus, TriggerType

STATUSES = [s.value for s in RunStatus]
TYPES = [t.value for t in TriggerType]


def _choice(value: str | None, allowed: list[str]) -> str | None:
    return value if value in allowed else None


@page
async def runs(request: Request, s: accounts.Session) -> Response:
    q = request.query_params
    connection = q.get("connection") or None
    status, run_type = _choice(q.get("status"), STATUSES), _choice(q.get("type"), TYPES)
    rows = await blocking(s, queries.history, connection, 200, status=status, run_type=run_type)
    counts = await blocking(s, queries.status_counts, connection)
    return render(
        request,
        "runs.html",
        title="Execution status",
        runs=rows,
        counts=counts,
        statuses=STATUSES,
        types=TYPES,
        selected={"connection": connection or "", "status": status or "", "type": run_type or ""},
    )


async def _run(s: accounts.Session, run_id: int) -> dict[str, Any] | None:
    return await blocking(s, queries.run_detail, run_id)


def _missing(request: Request) -> Response:
    return render(request, "message.html", 404, title="Not found", text="There is no run with that number.")


@page
async def run(request: Request, s: accounts.Session) -> Response:
    r = await _run(s, request.path_params["run_id"])
    if r is None:
        return _missing(request)
    return render(request, "run.html", title=f"Run {r['run_id']}", r=r, error=None)


@page
async def live(request: Request, s: accounts.Session) -> Response:
    """The part of a run's page that changes while it goes (status, stage parts, counts)."""
    r = await _run(s, request.path_params["run_id"])
    if r is None:
        return _missing(request)
    return render(request, "run_live.html", r=r)


@page
async def errors(request: Request, s: accounts.Session) -> Response:
    r = await _run(s, request.path_params["run_id"])
    if r is None:
        return _missing(request)
    rows = await blocking(s, queries.errors, r["run_id"])
    return render(request, "errors.html", title=f"Errors of run {r['run_id']}", r=r, errors=rows)


@page
async def errors_csv(request: Request, s: accounts.Session) -> Response:
    r = await _run(s, request.path_params["run_id"])
    if r is None:
        return _missing(request)
    rows = await blocking(s, queries.errors, r["run_id"])
    out = io.StringIO()
    write_csv(out, queries.ERROR_REPORT_COLUMNS, rows)
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="run-{r["run_id"]}-errors.csv"',
            "Cache-Control": "no-store",
        },
    )


@page
async def export_file(request: Request, s: accounts.Session) -> Response:
    r = await _run(s, request.path_params["run_id"])
    e = r["export"] if r else None
    if e is None or e["rows"] is None:
        return render(request, "message.html", 404, title="Not found", text="This run delivered no export file.")
    if str(e["folder"]).startswith("sftp://"):
        # Pushed to its SFTP destination (workers/files/sftp_destination.py): no copy is kept here.
        where = f"{str(e['folder']).rstrip('/')}/{e['file']}"
        text = f"This export was pushed to its destination: {where}. feedsync keeps no copy; fetch it from there."
        return render(request, "message.html", title=f"Export of run {r['run_id'] if r else ''}", text=text)
    root = get_settings().export_dir.resolve()
    path = (Path(e["folder"]) / e["file"]).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return render(request, "message.html", 404, title="Not found", text="The export file is no longer there.")
    return FileResponse(path, filename=e["file"], headers={"Cache-Control": "no-store"})


async def _decide(request: Request, s: accounts.Session, act: str, *args: Any) -> Response:
    run_id = request.path_params["run_id"]
    try:
        await blocking(s, getattr(commands, act), run_id, *args)
    except commands.CommandError as exc:
        await blocking(
            s, accounts.record, s.admin.name, act, f"run {run_id}", outcome=f"refused: {exc}", client=client(request)
        )
        r = await _run(s, run_id)
        if r is None:
            return _missing(request)
        return render(request, "run.html", 400, title=f"Run {run_id}", r=r, error=str(exc))
    await blocking(s, accounts.record, s.admin.name, act, f"run {run_id}", client=client(request))
    return RedirectResponse(f"/runs/{run_id}", status_code=303)


def _comment(form: FormData) -> str | None:
    return str(form.get("comment") or "").strip()[:1000] or None


@action("approve")
async def approve(request: Request, s: accounts.Session, form: FormData) -> Response:
    # The same command as `feedsync approve RUN_ID --comment`: who, when and why kept on the run.
    return await _decide(request, s, "approve", _comment(form))


@action("reject")
async def reject(request: Request, s: accounts.Session, form: FormData) -> Response:
    return await _decide(request, s, "reject", _comment(form))


@page
async def plan_people(request: Request, s: accounts.Session) -> Response:
    """Everyone the held plan would create or deactivate, as CSV: the admin's own data, signed in."""
    run_id = request.path_params["run_id"]
    rows = await blocking(s, plans.people, run_id)
    if rows is None:
        return render(
            request,
            "message.html",
            404,
            title="Not found",
            text="Only a users run waiting for approval has a list of the people its plan would change.",
        )
    out = io.StringIO()
    write_csv(out, plans.COLUMNS, rows)
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="run-{run_id}-plan-people.csv"',
            "Cache-Control": "no-store",
        },
    )


@action("cancel")
async def cancel(request: Request, s: accounts.Session, form: FormData) -> Response:
    # The same command as `feedsync cancel RUN_ID --reason`: recorded in sync.run_actions too.
    reason = str(form.get("reason") or "").strip()[:500] or None
    return await _decide(request, s, "cancel", reason)


@page
async def undo_preview(request: Request, s: accounts.Session) -> Response:
    """What undoing the run would do, in the same words as `feedsync undo RUN_ID --dry-run`, with the
    conflicts' checkbox and the Undo button."""
    from producers.undo import preview, preview_lines

    run_id = request.path_params["run_id"]
    try:
        p = await blocking(s, preview, run_id)
    except commands.CommandError as exc:
        return render(request, "undo.html", 400, title=f"Undo run {run_id}", run_id=run_id, lines=[], error=str(exc))
    lines = preview_lines(p, skip_hint="refused unless you tick 'Leave rows changed since as they are'")
    return render(
        request,
        "undo.html",
        title=f"Undo run {run_id}",
        run_id=run_id,
        lines=lines,
        conflicts=p["conflicts"],
        can_act=s.admin.can_act,
        error=None,
    )


@action("undo")
async def undo(request: Request, s: accounts.Session, form: FormData) -> Response:
    """The same command as `feedsync undo RUN_ID [--skip-conflicts]`: queues a run of type undo."""
    from producers.undo import start_undo
    from workers.runs.undo_preview import CONSOLE_SKIP

    run_id = request.path_params["run_id"]
    skip = form.get("skip_conflicts") == "1"
    try:
        undo_id = await blocking(s, start_undo, run_id, skip_conflicts=skip, skip_how=CONSOLE_SKIP)
    except commands.CommandError as exc:
        await blocking(
            s, accounts.record, s.admin.name, "undo", f"run {run_id}", outcome=f"refused: {exc}", client=client(request)
        )
        r = await _run(s, run_id)
        if r is None:
            return _missing(request)
        return render(request, "run.html", 400, title=f"Run {run_id}", r=r, error=str(exc))
    await blocking(s, accounts.record, s.admin.name, "undo", f"run {run_id}", client=client(request))
    return RedirectResponse(f"/runs/{undo_id}", status_code=303)


routes = [
    Route("/runs", runs),
    Route("/runs/{run_id:int}", run),
    Route("/runs/{run_id:int}/live", live),
    Route("/runs/{run_id:int}/errors", errors),
    Route("/runs/{run_id:int}/errors.csv", errors_csv),
    Route("/runs/{run_id:int}/export", export_file),
    Route("/runs/{run_id:int}/plan-people.csv", plan_people),
    Route("/runs/{run_id:int}/approve", approve, methods=["POST"]),
    Route("/runs/{run_id:int}/reject", reject, methods=["POST"]),
    Route("/runs/{run_id:int}/cancel", cancel, methods=["POST"]),
    Route("/runs/{run_id:int}/undo", undo, methods=["POST"]),
    Route("/runs/{run_id:int}/undo/preview", undo_preview),
]
