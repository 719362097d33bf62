"""Dead letters: list, show, replay (one, a run's, all). A replay is first shown as the CLI's
``--dry-run`` shows it; only the confirmed form replays."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from producers import dlq, queries
from producers.console import accounts
from producers.console.auth import action, blocking, client, page
from producers.console.views import render
from producers.output import json_text
from schemas.settings import get_settings


@page
async def dead_letters(request: Request, s: accounts.Session) -> Response:
    everything = request.query_params.get("all") == "1"
    rows = await blocking(s, dlq.list_dead_letters, everything)
    return render(request, "dead_letters.html", title="Dead letters", rows=rows, everything=everything)


@page
async def dead_letter(request: Request, s: accounts.Session) -> Response:
    row = await blocking(s, dlq.show, request.path_params["dl_id"])
    if row is None:
        return render(request, "message.html", 404, title="Not found", text="There is no dead letter of that number.")
    return render(
        request, "dead_letter.html", title=f"Dead letter {row['id']}", d=row, message_json=json_text(row["message"])
    )


def _selection(form: FormData) -> tuple[dict[str, Any], str | None]:
    """The dead letters named, as the CLI's arguments; or why the form names none."""
    scope = form.get("scope")
    try:
        if scope == "one":
            return {"ids": [int(str(form.get("id")))]}, None
        if scope == "run":
            return {"run_id": int(str(form.get("run_id")))}, None
    except ValueError:
        return {}, "give a dead letter or run number"
    if scope == "all":
        return {"everything": True}, None
    return {}, "choose one dead letter, a run's, or all"


@action("replay")
async def replay(request: Request, s: accounts.Session, form: FormData) -> Response:
    chosen, problem = _selection(form)
    if problem is None and chosen.get("ids") and await blocking(s, dlq.missing, chosen["ids"]):
        problem = f"there is no dead letter {chosen['ids'][0]}"
    if (
        problem is None
        and chosen.get("run_id") is not None
        and await blocking(s, queries.run_status, chosen["run_id"]) is None
    ):
        problem = f"there is no run {chosen['run_id']}"
    if problem is not None:
        return render(request, "message.html", 400, title="Replay", text=problem)
    confirmed = form.get("confirm") == "yes"
    force = form.get("force") == "on"
    results = await blocking(s, dlq.replay, get_settings(), dry_run=not confirmed, force=force, **chosen)
    if confirmed:
        refused = sum(r.outcome == "refused" for r in results)
        await blocking(
            s,
            accounts.record,
            s.admin.name,
            "replay",
            str(form.get("scope")),
            outcome="ok" if not refused else f"{refused} refused",
            detail={**chosen, "force": force, "results": {str(r.dead_letter_id): r.outcome for r in results}},
            client=client(request),
        )
    return render(
        request,
        "replay.html",
        title="Replay",
        results=results,
        confirmed=confirmed,
        form={k: str(v) for k, v in form.items() if k in ("scope", "id", "run_id", "force")},
    )


routes = [
    Route("/dead-letters", dead_letters),
    Route("/dead-letters/{dl_id:int}", dead_letter),
    Route("/dead-letters/replay", replay, methods=["POST"]),
]
