"""New connection, as ALM admins set one up: pick a kind and upload a template CSV (streamed to a
draft folder under the store, within FEEDSYNC_WEB_UPLOAD_MAX_MB, as uploads are), map each column
with a drop-down, set the schedule, thresholds and SFTP details, preview the template's first rows
as a dry run (nothing written), and save: the connection is written to the console's connections
file and applied from it (producers/console/configfile.py), and its page shows the diff."""

from __future__ import annotations

import json
import os
import secrets
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import anyio
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from producers import commands, queries
from producers.console import accounts, configfile, setupform
from producers.console.auth import acting, action, blocking, client, form_of, page
from producers.console.connections import by, saved_url
from producers.console.views import render
from schemas.settings import get_settings

TEMPLATE = "template.csv"
_TOKEN_CHARS = 32


def _drafts() -> Path:
    return get_settings().store_dir / "console-setup"


def _draft(token: str) -> Path | None:
    if len(token) != _TOKEN_CHARS or not all(c in "0123456789abcdef" for c in token):
        return None
    folder = _drafts() / token
    return folder if (folder / "meta.json").is_file() else None


def _meta(folder: Path) -> dict[str, Any]:
    return dict(json.loads((folder / "meta.json").read_text(encoding="utf-8")))


class _TemplateFile:
    """Where the template's bytes go as they stream in: one file in a draft folder of its own (0600)."""

    def __init__(self) -> None:
        self.folder: Path | None = None
        self.label = ""

    async def open(self, filename: str) -> BinaryIO:
        if self.folder is not None:
            raise commands.CommandError("choose one template file")
        self.folder = _drafts() / secrets.token_hex(_TOKEN_CHARS // 2)
        self.label = os.path.basename(filename.replace("\\", "/"))[:255] or TEMPLATE
        folder = self.folder

        def create() -> BinaryIO:
            folder.mkdir(parents=True, mode=0o700)
            fd = os.open(folder / TEMPLATE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            return os.fdopen(fd, "wb")

        return await anyio.to_thread.run_sync(create)

    async def finish(self, out: BinaryIO) -> None:
        await anyio.to_thread.run_sync(out.close)

    async def discard(self) -> None:
        if self.folder is not None:
            await anyio.to_thread.run_sync(lambda: shutil.rmtree(self.folder or "", ignore_errors=True))


def _start_page(request: Request, error: str | None = None, status_code: int = 200, **form: Any) -> Response:
    return render(
        request,
        "setup_start.html",
        status_code,
        title="New connection",
        kinds=setupform.offered(),
        fixed=setupform.FIXED,
        in_file=setupform.in_file(),
        exports=setupform.exports(),
        error=error,
        form=form,
    )


@page
async def start(request: Request, s: accounts.Session) -> Response:
    if not s.admin.can_act:
        return render(
            request,
            "message.html",
            403,
            title="Refused",
            text="Viewers see everything and change nothing: ask an admin.",
        )
    return _start_page(request)


async def upload_template(request: Request) -> Response:
    """The kind, the name and the template, streamed into a draft folder; then the mapping page."""
    s = await acting(request, "setup")
    if isinstance(s, Response):
        return s
    template = _TemplateFile()
    try:
        form = await form_of(request, s, "setup", files=template)
    except commands.CommandError as exc:
        await template.discard()
        return _start_page(request, str(exc), 400)
    except BaseException:
        await template.discard()
        raise
    kind, name = str(form.get("kind", "")), str(form.get("name", "")).strip()
    encoding, delimiter = str(form.get("encoding") or "utf-8"), str(form.get("delimiter") or ",")
    delimiter = "\t" if delimiter == "tab" else delimiter
    error = None
    if kind not in setupform.offered():
        error = f"choose a kind the console sets up: {', '.join(setupform.offered())}"
        if kind in setupform.exports():
            error = f"an export takes no template: set it up at /connections/new/export/{kind}"
        if section := setupform.in_file().get(kind):
            error = f"a {kind} connection is set up in a connections file: see the README, {section}"
    elif template.folder is None:
        error = "choose the template CSV: a file with the header line (and a few rows) the system will send"
    elif kind in setupform.FIXED:
        path = template.folder / TEMPLATE
        error = await anyio.to_thread.run_sync(setupform.check_fixed, kind, path, template.label, encoding, delimiter)
    else:
        found = await anyio.to_thread.run_sync(
            setupform.read_template, template.folder / TEMPLATE, template.label, encoding, delimiter
        )
        error = found.problem
    if error is not None:
        await template.discard()
        return _start_page(request, error, 400, name=name, kind=kind)
    assert template.folder is not None
    meta = {"admin": s.admin.name, "name": name, "kind": kind, "label": template.label}
    meta |= {"encoding": encoding, "delimiter": delimiter}
    (template.folder / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    return RedirectResponse(f"/connections/new/{template.folder.name}", status_code=303)


async def _template(folder: Path, meta: dict[str, Any]) -> setupform.Template:
    """The template's columns and samples; none for a fixed kind (checked at upload, nothing to map)."""
    if meta["kind"] in setupform.FIXED:
        return setupform.Template([], {})
    return await anyio.to_thread.run_sync(
        setupform.read_template, folder / TEMPLATE, meta["label"], meta["encoding"], meta["delimiter"]
    )


async def _mapping_page(
    request: Request, s: accounts.Session, folder: Path, form: FormData | None = None, **extra: Any
) -> Response:
    meta = _meta(folder)
    found = await _template(folder, meta)
    kind = meta["kind"]
    values: dict[str, Any] = (
        dict(form) if form is not None else {"name": meta["name"], "path": setupform.default_path(kind)}
    )
    if form is None:
        values |= {f"col{i}": setupform.guess(kind, c) for i, c in enumerate(found.columns)}
    today = (await blocking(s, queries.today)).isoformat()
    chosen = {
        setupform.slug(c) if values.get(f"col{i}") == setupform.PROFILE else values.get(f"col{i}")
        for i, c in enumerate(found.columns)
    }
    problems = extra.get("problems") or {}
    # Mapping problems about an attribute no column is mapped to: shown above the columns.
    unplaced = [m for k, ms in problems.items() if k.startswith("mapping.") and k[8:] not in chosen for m in ms]
    return render(
        request,
        "setup_mapping.html",
        extra.pop("status_code", 200),
        title="New connection: settings" if kind in setupform.FIXED else "New connection: mapping",
        token=folder.name,
        meta=meta,
        template=found,
        attributes=setupform.KINDS.get(kind, {}),
        fixed=setupform.FIXED.get(kind),
        required=setupform.required_of(kind),
        profile=setupform.PROFILE,
        slug=setupform.slug,
        form=values,
        today=today,
        unplaced=unplaced,
        **extra,
    )


def _mine(s: accounts.Session, token: str) -> Path | None:
    folder = _draft(token)
    return folder if folder is not None and _meta(folder)["admin"] == s.admin.name else None


@page
async def mapping(request: Request, s: accounts.Session) -> Response:
    folder = _mine(s, request.path_params["token"]) if s.admin.can_act else None
    if folder is None:
        return render(
            request,
            "message.html",
            404,
            title="Not found",
            text="This setup has ended or is not yours: start again from New connection.",
        )
    return await _mapping_page(request, s, folder)


@action("setup")
async def save(request: Request, s: accounts.Session, form: FormData) -> Response:
    """Preview (a dry run of the template's first rows through the mapping) or save."""
    folder = _mine(s, request.path_params["token"])
    if folder is None:
        return render(
            request,
            "message.html",
            404,
            title="Not found",
            text="This setup has ended or is not yours: start again from New connection.",
        )
    meta = _meta(folder)
    found = await _template(folder, meta)
    setup = setupform.entry_of(meta["kind"], found.columns, form)
    if meta["encoding"] != "utf-8" or meta["delimiter"] != ",":
        setup.entry |= {"encoding": meta["encoding"], "delimiter": meta["delimiter"]}
    if setup.config is None:
        return await _mapping_page(request, s, folder, form, problems=setup.problems, status_code=400)
    if form.get("action") != "save":
        if meta["kind"] in setupform.FIXED:  # the provider's columns, checked at upload: nothing to preview
            return await _mapping_page(request, s, folder, form, problems={})
        shown = await anyio.to_thread.run_sync(setupform.preview, setup.config, folder / TEMPLATE, meta["label"])
        return await _mapping_page(request, s, folder, form, problems={}, preview=shown)
    try:
        saved = await blocking(s, configfile.create, get_settings(), setup.entry, by(s))
    except commands.CommandError as exc:
        name = setup.entry["name"]
        await blocking(
            s, accounts.record, s.admin.name, "setup", name, outcome=f"refused: {exc}", client=client(request)
        )
        return await _mapping_page(request, s, folder, form, problems={"connection": [str(exc)]}, status_code=400)
    await blocking(
        s, accounts.record, s.admin.name, "setup", saved.name, detail={"file": str(saved.file)}, client=client(request)
    )
    await anyio.to_thread.run_sync(lambda: shutil.rmtree(folder, ignore_errors=True))
    return RedirectResponse(saved_url(saved), status_code=303)


def _export_page(request: Request, kind: str, form: Any, problems: dict[str, list[str]], status_code: int) -> Response:
    return render(
        request,
        "setup_export.html",
        status_code,
        title="New connection: export",
        kind=kind,
        what=setupform.exports()[kind],
        form=form,
        problems=problems,
        today=datetime.now(UTC).date().isoformat(),
    )


@page
async def export(request: Request, s: accounts.Session) -> Response:
    """An export's form: no template, the destination (folder or SFTP) and the schedule."""
    kind = request.path_params["kind"]
    if not s.admin.can_act or kind not in setupform.exports():
        return render(request, "message.html", 404, title="Not found", text="Start again from New connection.")
    return _export_page(request, kind, {"name": kind.replace("_", "-"), "schedule_enabled": "on"}, {}, 200)


@action("setup")
async def save_export(request: Request, s: accounts.Session, form: FormData) -> Response:
    kind = request.path_params["kind"]
    if kind not in setupform.exports():
        return render(request, "message.html", 404, title="Not found", text="Start again from New connection.")
    setup = setupform.export_entry(kind, form)
    if setup.config is None:
        return _export_page(request, kind, dict(form), setup.problems, 400)
    try:
        saved = await blocking(s, configfile.create, get_settings(), setup.entry, by(s))
    except commands.CommandError as exc:
        await blocking(
            s,
            accounts.record,
            s.admin.name,
            "setup",
            setup.entry["name"],
            outcome=f"refused: {exc}",
            client=client(request),
        )
        return _export_page(request, kind, dict(form), {"connection": [str(exc)]}, 400)
    await blocking(
        s, accounts.record, s.admin.name, "setup", saved.name, detail={"file": str(saved.file)}, client=client(request)
    )
    return RedirectResponse(saved_url(saved), status_code=303)


routes = [
    Route("/connections/new", start, methods=["GET"]),
    Route("/connections/new", upload_template, methods=["POST"]),
    Route("/connections/new/export/{kind}", export, methods=["GET"]),
    Route("/connections/new/export/{kind}", save_export, methods=["POST"]),
    Route("/connections/new/{token}", mapping, methods=["GET"]),
    Route("/connections/new/{token}", save, methods=["POST"]),
]
