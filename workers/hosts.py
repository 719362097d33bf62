"""Which worker group, host and process this is, and its heartbeat.

A worker group is one ``feedsync worker`` (a Dramatiq master and its processes) on one host, named
by ``FEEDSYNC_WORKER_GROUP`` (default: the host's name). Each worker process records its identity on
every stage it runs (``sync.stage_runs.worker_group, host, pid``) and beats in
``sync.worker_heartbeats`` from a daemon thread every ``FEEDSYNC_HEARTBEAT_INTERVAL_S``: a group none
of whose processes beat for three intervals is listed as lost by ``feedsync status``. A process lost
mid-stage needs nothing from here to recover: its un-acked message is redelivered by RabbitMQ to a
live worker, and the ledger resumes it (workers/runs/ledger.py).
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass

import psycopg
import structlog

from schemas.settings import Settings
from workers import store

log = structlog.get_logger(__name__)

#: A heartbeat row silent this many intervals is a lost process; rows of processes gone a day are pruned.
LOST_AFTER_BEATS = 3


@dataclass(frozen=True)
class Identity:
    worker_group: str
    host: str
    pid: int


def identity(settings: Settings) -> Identity:
    host = socket.gethostname()
    return Identity(settings.worker_group or host, host, os.getpid())


class Heartbeat:
    """A daemon thread that marks this process alive until ``stop()``."""

    def __init__(self, settings: Settings, store_description: str) -> None:
        self._settings = settings
        self._me = identity(settings)
        self._store = store_description
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="feedsync-heartbeat", daemon=True)

    def start(self) -> None:
        try:
            self._beat(first=True)
        except psycopg.Error as exc:  # a worker that boots while the database restarts still starts
            log.warning("heartbeat not recorded", error=type(exc).__name__)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            with store.connect() as conn:
                conn.execute(
                    """UPDATE sync.worker_heartbeats SET stopped_at = clock_timestamp()
                       WHERE worker_group = %s AND host = %s AND pid = %s""",
                    (self._me.worker_group, self._me.host, self._me.pid),
                )
        except psycopg.Error as exc:
            log.warning("could not record the worker's shutdown", error=type(exc).__name__)

    def _run(self) -> None:
        while not self._stop.wait(self._settings.heartbeat_interval_s):
            try:
                self._beat()
            except psycopg.Error as exc:  # the database restarting: the next beat tries again
                log.warning("heartbeat not recorded", error=type(exc).__name__)

    def _beat(self, *, first: bool = False) -> None:
        with store.connect() as conn:
            conn.execute(
                """INSERT INTO sync.worker_heartbeats (worker_group, host, pid, store)
                   VALUES (%s, %s, %s, %s)
                   ON CONFLICT (worker_group, host, pid) DO UPDATE
                   SET last_heartbeat = clock_timestamp(), stopped_at = NULL, store = EXCLUDED.store""",
                (self._me.worker_group, self._me.host, self._me.pid, self._store),
            )
            if first:
                conn.execute(
                    "DELETE FROM sync.worker_heartbeats WHERE last_heartbeat < clock_timestamp() - interval '1 day'"
                )
