"""The HTTP server of a worker group (and of the scheduler): ``/metrics``, ``/healthz``, ``/readyz``.

A worker group runs it as a Dramatiq fork process (workers.worker_metrics.MessageMetrics.forks), on
FEEDSYNC_METRICS_BIND (default 127.0.0.1:9191): one per group, so two groups on one host need two
addresses. ``/metrics`` holds Dramatiq's message metrics and feedsync's stage durations (from the
group's multiprocess folder) and feedsync's database metrics (workers.metrics). The scheduler serves
the same on FEEDSYNC_SCHEDULER_METRICS_BIND when it is set, from a thread.
"""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import structlog

from schemas.settings import Settings, get_settings
from workers.health import readiness
from workers.metrics import DatabaseCollector

log = structlog.get_logger(__name__)

NOT_FOUND = b'{"error": "not found: /metrics, /healthz and /readyz are served here"}'


def render_metrics(settings: Settings | None = None, *, worker_files: bool = False) -> tuple[bytes, str]:
    """The exposition text and its content type, built afresh for this scrape. ``worker_files``:
    with what the worker group's processes wrote (only its own server reads them, so a web or a
    scheduler started beside the group by `feedsync up` does not serve them a second time)."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    if worker_files and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # unannotated upstream
    registry.register(DatabaseCollector(settings))
    return generate_latest(registry), CONTENT_TYPE_LATEST


def readyz_body(settings: Settings | None = None) -> tuple[int, bytes]:
    ready, checks = readiness(settings)
    body = {"status": "ready" if ready else "not ready", "checks": checks}
    if not ready:
        body["failed"] = sorted(k for k, v in checks.items() if v != "ok")  # type: ignore[assignment]
    return (200 if ready else 503), json.dumps(body).encode()


class _Handler(BaseHTTPRequestHandler):
    server_version = "feedsync"
    worker_files = False

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            body, content_type = render_metrics(worker_files=self.worker_files)
            self._send(200, body, content_type)
        elif path == "/healthz":
            self._send(200, b'{"status": "alive"}', "application/json")
        elif path == "/readyz":
            status, body = readyz_body()
            self._send(status, body, "application/json")
        else:
            self._send(404, NOT_FOUND, "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return  # scrapes every few seconds would drown the worker's log


def parse_bind(bind: str) -> tuple[str, int]:
    host, _, port = bind.rpartition(":")
    return host, int(port)


class _WorkerHandler(_Handler):
    worker_files = True


def make_server(bind: str, *, worker_files: bool = False) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(parse_bind(bind), _WorkerHandler if worker_files else _Handler)
    server.daemon_threads = True
    return server


def serve_worker_group() -> int:
    """The worker group's fork process: serves until the group stops it (SIGTERM, as Dramatiq does)."""
    from workers.logs import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level)
    try:
        server = make_server(settings.metrics_bind, worker_files=True)
    except OSError as exc:
        log.error(
            "the metrics server could not listen; set FEEDSYNC_METRICS_BIND to a free address",
            bind=settings.metrics_bind,
            error=str(exc),
        )
        return 1
    log.info("serving metrics", bind=settings.metrics_bind, paths="/metrics /healthz /readyz")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def serve_in_thread(bind: str) -> ThreadingHTTPServer:
    """The same server on a daemon thread (the scheduler); ``shutdown()`` stops it."""
    server = make_server(bind)
    threading.Thread(target=server.serve_forever, name="feedsync-metrics", daemon=True).start()
    log.info("serving metrics", bind=bind, paths="/metrics /healthz /readyz")
    return server
