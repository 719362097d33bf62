"""The "API check" button of a connection with an API source: the first page of its API through the
mapping, masked, and what its filters would leave out, as ``feedsync api check`` prints it. It
writes nothing but its audit row (the API was reached with the stored credentials)."""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from producers import api_check
from producers.console import accounts
from producers.console.auth import action, blocking, client
from producers.console.views import render
from workers.errors import FeedsyncError
from workers.sources.preview import SHOWN


@action("api_check")
async def api_check_page(request: Request, s: accounts.Session, form: FormData) -> Response:
    name = request.path_params["name"]
    try:
        checked = await blocking(s, api_check.check, name)
    except FeedsyncError as exc:
        await blocking(s, accounts.record, s.admin.name, "api_check", name, outcome="failed", client=client(request))
        return render(request, "api_check.html", 502, title=f"API check of {name}", connection=name, error=str(exc))
    await blocking(s, accounts.record, s.admin.name, "api_check", name, client=client(request))
    return render(
        request,
        "api_check.html",
        title=f"API check of {name}",
        connection=name,
        source=checked.spec.source,
        found=checked.found,
        filters=checked.filters,
        shown=min(SHOWN, checked.found.records),
    )


routes = [Route("/connections/{name}/api-check", api_check_page, methods=["POST"])]
