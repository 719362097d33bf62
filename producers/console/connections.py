"""Connection tiles and a connection's page: mapping, schedule, enable/disable, on-demand run,
rerun of the latest run, upload. Every change goes through producers.commands, as the CLI's do."""

from __future__ import annotations

from datetime import date
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import anyio
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from producers import commands, console_changes, queries, uploads
from producers.console import accounts, configfile
from producers.console.auth import acting, action, blocking, client, form_of, page
from producers.console.views import render
from schemas.kinds import connection_from_json
from schemas.settings import get_settings
from schemas.states import AccessMode
from workers.connectors import is_export


def effective(config: dict[str, Any]) -> dict[str, Any]:
    """A stored config as it applies: every key of its kind, defaults included."""
    return connection_from_json(dict(config)).model_dump(mode="json")


def _tile(c: dict[str, Any]) -> dict[str, Any]:
    return {**c, "path": c["config"].get("path", ""), "is_export": is_export(c["kind"])}


@page
async def tiles(request: Request, s: accounts.Session) -> Response:
    rows = await blocking(s, queries.connections_overview)
    return render(request, "connections.html", title="Connections", connections=[_tile(c) for c in rows])


def saved_url(saved: configfile.Saved) -> str:
    """The connection's page, showing the change just saved (its diff) or that nothing changed."""
    return f"/connections/{saved.name}?" + (f"change={saved.change_id}" if saved.change_id else "unchanged=1")


def by(s: accounts.Session) -> str:
    """Who made a console change, as the audit and sync.console_changes name them."""
    return f"console:{s.admin.name}"


async def _connection_page(
    request: Request,
    s: accounts.Session,
    name: str,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    rows = [c for c in await blocking(s, queries.connections_overview) if c["name"] == name]
    if not rows:
        return render(request, "message.html", 404, title="Not found", text="There is no connection of that name.")
    runs = await blocking(s, queries.history, name, 20)
    from producers import sftp_view

    changes = await blocking(s, console_changes.history, name, 10)
    shown = request.query_params.get("change", "")
    saved = next((ch for ch in changes if shown.isdigit() and ch["id"] == int(shown)), None)
    return render(
        request,
        "connection.html",
        status_code,
        title=f"Connection {name}",
        c=_tile(rows[0]),
        runs=runs,
        sftp=await blocking(s, sftp_view.summary, rows[0]),
        error=error,
        saved=saved,
        effective=effective(rows[0]["config"]),
        changes=changes,
        today=(await blocking(s, queries.today)).isoformat(),
    )


@page
async def connection(request: Request, s: accounts.Session) -> Response:
    return await _connection_page(request, s, request.path_params["name"])


async def _refusal(request: Request, s: accounts.Session, act: str, exc: commands.CommandError) -> Response:
    name = request.path_params["name"]
    await blocking(s, accounts.record, s.admin.name, act, name, outcome=f"refused: {exc}", client=client(request))
    return await _connection_page(request, s, name, error=str(exc), status_code=400)


@action("sync")
async def sync(request: Request, s: accounts.Session, form: FormData) -> Response:
    name = request.path_params["name"]
    try:
        since = date.fromisoformat(str(form["since"])) if form.get("since") else None
        access = AccessMode(str(form.get("access", "online")))
    except ValueError:
        return await _refusal(
            request, s, "sync", commands.CommandError("give the start date as YYYY-MM-DD and online or exclusive")
        )
    dry_run = form.get("dry_run") == "on"
    try:
        if not dry_run:  # an SFTP pull connection fetches from its server first, as ALM's run now
            from producers.pull_first import pull_first

            await blocking(s, pull_first, get_settings(), name)
        run_id = await blocking(
            s, commands.start_sync, get_settings(), name, access=access, dry_run=dry_run, since=since
        )
    except commands.CommandError as exc:
        return await _refusal(request, s, "sync", exc)
    detail = {"run": run_id, "since": since.isoformat() if since else None, "access": access.value, "dry_run": dry_run}
    await blocking(s, accounts.record, s.admin.name, "sync", name, detail=detail, client=client(request))
    return RedirectResponse(f"/runs/{run_id}", status_code=303)


@action("rerun")
async def rerun(request: Request, s: accounts.Session, form: FormData) -> Response:
    name = request.path_params["name"]
    try:
        run_id = await blocking(s, commands.rerun, get_settings(), name)
    except commands.CommandError as exc:
        return await _refusal(request, s, "rerun", exc)
    await blocking(s, accounts.record, s.admin.name, "rerun", name, detail={"run": run_id}, client=client(request))
    return RedirectResponse(f"/runs/{run_id}", status_code=303)


@action("enable")
async def enable(request: Request, s: accounts.Session, form: FormData) -> Response:
    name = request.path_params["name"]
    enabled = form.get("enabled") == "true"
    act = "enable" if enabled else "disable"
    try:
        saved = await blocking(s, configfile.change, name, {"enabled": None if enabled else False}, by(s))
    except commands.CommandError as exc:
        return await _refusal(request, s, act, exc)
    await blocking(s, accounts.record, s.admin.name, act, name, client=client(request))
    return RedirectResponse(saved_url(saved), status_code=303)


@action("schedule")
async def schedule(request: Request, s: accounts.Session, form: FormData) -> Response:
    name = request.path_params["name"]
    start = f"{form.get('start_date', '')}T{form.get('start_time') or '00:00'}:00+00:00"
    unit, access = str(form.get("every_unit") or "days"), str(form.get("access") or "online")
    try:
        every = int(str(form.get("every", "")))
    except ValueError:
        return await _refusal(request, s, "schedule", commands.CommandError(f"every N {unit}: give a whole number"))
    enabled = form.get("schedule_enabled") == "on"
    try:
        schedule = commands.schedule_of(start, every, unit, access, enabled).model_dump(exclude_defaults=True)
        saved = await blocking(s, configfile.change, name, {"schedule": schedule}, by(s))
    except commands.CommandError as exc:
        return await _refusal(request, s, "schedule", exc)
    detail = {"start": start, f"every_{unit}": every, "access": access, "enabled": enabled}
    await blocking(s, accounts.record, s.admin.name, "schedule", name, detail=detail, client=client(request))
    return RedirectResponse(saved_url(saved), status_code=303)


class _Staging:
    """Where an upload's file parts go as they stream in: the delivery's staged files in the drop
    folder (``uploads.Delivery``), found once the form's token has been accepted."""

    def __init__(self, s: accounts.Session, name: str) -> None:
        self.session = s
        self.name = name
        self.delivery: uploads.Delivery | None = None

    async def open(self, filename: str) -> BinaryIO:
        # The browser's name, without any folder it may carry (an old browser sends the whole path).
        filename = PurePosixPath(filename.replace("\\", "/")).name
        if self.delivery is None:
            self.delivery = await blocking(self.session, commands.receive_upload, get_settings(), self.name)
        try:
            self.delivery.admit(filename)
        except uploads.Refused as exc:
            raise commands.CommandError(str(exc)) from None
        return await anyio.to_thread.run_sync(self.delivery.stage, filename)

    async def finish(self, out: BinaryIO) -> None:
        await anyio.to_thread.run_sync(uploads.Delivery.finish, out)

    async def place(self) -> list[Path]:
        if self.delivery is None or not self.delivery.files:
            raise commands.CommandError("choose one or more files to upload")
        try:
            return await anyio.to_thread.run_sync(self.delivery.place)
        except uploads.Refused as exc:
            raise commands.CommandError(str(exc)) from None

    async def discard(self) -> None:
        if self.delivery is not None:
            await anyio.to_thread.run_sync(self.delivery.discard)


async def upload(request: Request) -> Response:
    """Files streamed into the drop folder as they come (never held in memory), placed as one delivery."""
    s = await acting(request, "upload")
    if isinstance(s, Response):
        return s
    name = request.path_params["name"]
    staging = _Staging(s, name)
    try:
        await form_of(request, s, "upload", files=staging)
        placed = await staging.place()
    except commands.CommandError as exc:
        await staging.discard()
        return await _refusal(request, s, "upload", exc)
    except OSError as exc:  # the drop folder could not take a file's bytes (full, permissions)
        if staging.delivery is None:
            raise
        await staging.discard()
        return await _refusal(request, s, "upload", commands.CommandError(str(staging.delivery.folder_refused(exc))))
    except BaseException:
        await staging.discard()
        raise
    # How many files, not their names: a feed's name may say whom it is about.
    await blocking(
        s, accounts.record, s.admin.name, "upload", name, detail={"files": len(placed)}, client=client(request)
    )
    return RedirectResponse(f"/connections/{name}?uploaded={len(placed)}", status_code=303)


routes = [
    Route("/connections", tiles),
    Route("/connections/{name}", connection),
    Route("/connections/{name}/sync", sync, methods=["POST"]),
    Route("/connections/{name}/rerun", rerun, methods=["POST"]),
    Route("/connections/{name}/enabled", enable, methods=["POST"]),
    Route("/connections/{name}/schedule", schedule, methods=["POST"]),
    Route("/connections/{name}/upload", upload, methods=["POST"]),
]
