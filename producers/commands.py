"""Admin commands: apply connections, upload files, start an on-demand sync, wait for a run."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from psycopg.types.json import Jsonb

from producers import queries, registry
from schemas.connections import Connection
from schemas.settings import Settings
from schemas.states import FINISHED_RUN_STATUSES, AccessMode, RunStatus, TriggerType
from workers import store
from workers.outbox import OutboxBatch
from workers.runs import create_run, live_connection


class CommandError(Exception):
    """A refusal with a message for the admin; the CLI prints it and exits non-zero."""


def apply_connections(connections: list[Connection]) -> list[tuple[str, str]]:
    """Create or update each connection (by live name). Returns (name, created|updated|unchanged)."""
    results = []
    with store.connect() as conn:
        for c in connections:
            config = c.model_dump(mode="json")
            existing = live_connection(conn, c.name)
            if existing is None:
                conn.execute(
                    "INSERT INTO sync.connections (name, kind, config, enabled) VALUES (%s, %s, %s, %s)",
                    (c.name, c.kind, Jsonb(config), c.enabled),
                )
                results.append((c.name, "created"))
            elif existing["config"] != config or existing["kind"] != c.kind or existing["enabled"] != c.enabled:
                conn.execute(
                    "UPDATE sync.connections SET kind = %s, config = %s, enabled = %s, updated_at = now() "
                    "WHERE id = %s",
                    (c.kind, Jsonb(config), c.enabled, existing["id"]),
                )
                results.append((c.name, "updated"))
            else:
                results.append((c.name, "unchanged"))
    return results


def list_connections() -> list[dict[str, Any]]:
    with store.connect() as conn:
        return store.fetch_all(
            conn,
            """SELECT c.name, c.kind, c.enabled, c.config ->> 'path' AS path, c.config ->> 'trigger' AS trigger,
                      c.created_at, c.updated_at,
                      (SELECT count(*) FROM sync.feed_files f WHERE f.connection_id = c.id AND f.status = 'registered')
                        AS files_waiting
               FROM sync.connections c WHERE c.deleted_at IS NULL ORDER BY c.name""",
        )


def delete_connection(name: str) -> None:
    """Soft delete: the row and its runs stay, so a connection re-created under the name keeps its history."""
    with store.connect() as conn:
        if (
            conn.execute(
                "UPDATE sync.connections SET deleted_at = now() WHERE name = %s AND deleted_at IS NULL",
                (name,),
            ).rowcount
            == 0
        ):
            raise CommandError(f"no connection named {name!r}")


def _connection(name: str) -> dict[str, Any]:
    with store.connect() as conn:
        c = live_connection(conn, name)
    if c is None:
        raise CommandError(f"no connection named {name!r}; see `feedsync connections list`")
    return c


def upload(settings: Settings, name: str, files: list[Path]) -> list[Path]:
    """Copy files into the connection's drop folder atomically: a hidden temporary copy renamed into
    place, so the watcher never sees a half-written file."""
    connection = _connection(name)
    target = registry.drop_target(settings, connection)
    target.mkdir(parents=True, exist_ok=True)
    placed = []
    for f in files:
        if not f.is_file():
            raise CommandError(f"{f}: no such file")
        fd, tmp = tempfile.mkstemp(prefix=f".{f.name}.", suffix=".part", dir=target)
        with os.fdopen(fd, "wb") as out, open(f, "rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target / f.name)
        placed.append(target / f.name)
    return placed


def start_sync(
    settings: Settings,
    name: str,
    *,
    trigger: TriggerType = TriggerType.ON_DEMAND,
    access: AccessMode = AccessMode.ONLINE,
    dry_run: bool = False,
) -> int:
    """An on-demand run of the files present now: take what is in the drop dir, then queue the run."""
    connection = _connection(name)
    registry.scan(settings, only=name, announce=False)
    outbox = OutboxBatch()
    with store.connect() as conn:
        run_id, _ = create_run(conn, connection, trigger, outbox, access=access, dry_run=dry_run)
    outbox.flush()
    return run_id


def wait_for_run(run_id: int, *, timeout_s: float = 3600, progress: bool | None = None) -> dict[str, Any]:
    """Poll until the run finishes; on a TTY show its stage progress on one line."""
    show = sys.stderr.isatty() if progress is None else progress
    deadline = time.monotonic() + timeout_s
    last = ""
    while True:
        st = queries.run_status(run_id)
        if st is None:
            raise CommandError(f"no run {run_id}")
        if show:
            line = f"run {run_id}: {st['status']} ({st['done']}/{st['stages']} stage parts done)"
            if line != last:
                sys.stderr.write("\r" + line.ljust(len(last)))
                sys.stderr.flush()
                last = line
        if st["status"] in FINISHED_RUN_STATUSES or st["status"] == RunStatus.AWAITING_APPROVAL:
            if show:
                sys.stderr.write("\n")
            return st
        if time.monotonic() > deadline:
            raise CommandError(f"run {run_id} did not finish within {timeout_s:.0f}s (status {st['status']})")
        time.sleep(0.2)
