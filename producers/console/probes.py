"""``/metrics``, ``/healthz`` and ``/readyz`` of ``feedsync web``: for Prometheus and the probes of
Kubernetes or compose, so no sign-in. ``/metrics`` serves feedsync's database metrics (the same as
every other endpoint: runs, rows, files waiting, queue depths, dead letters, alerts, last success);
no person's data is in them, only connection names, kinds and counts. Each scrape and readiness
check runs on a thread of its own, limited like the pages' database calls."""

from __future__ import annotations

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from workers.metrics_server import readyz_body, render_metrics


async def metrics(request: Request) -> Response:
    body, content_type = await anyio.to_thread.run_sync(render_metrics, limiter=request.app.state.db_threads)
    return Response(body, media_type=content_type)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "alive"})


async def readyz(request: Request) -> Response:
    status, body = await anyio.to_thread.run_sync(readyz_body, limiter=request.app.state.db_threads)
    return Response(body, status_code=status, media_type="application/json")


routes = [
    Route("/metrics", metrics, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]
