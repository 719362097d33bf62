"""Admin commands: apply connections, upload files, start an on-demand sync, wait for a run,
cancel a run."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from producers import console_changes, ownership, pathcheck, queries, registry, uploads
from producers.dlq import admin_identity
from schemas.kinds import KindConfig, connection_from_json, to_json
from schemas.settings import Settings
from schemas.states import FINISHED_RUN_STATUSES, AccessMode, RunStatus, TriggerType
from workers import store
from workers.rows import ConnectionRow
from workers.runs import lifecycle, retention
from workers.runs.create import create_run, live_connection, lock_connection
from workers.runs.gate import cancel_run
from workers.runs.outbox import OutboxBatch
from workers.runs.start import start_next


class CommandError(Exception):
    """A refusal with a message for the admin; the CLI prints it and exits non-zero."""


class ConsoleChangesUndone(CommandError):
    """Applying the file would undo settings the console changed (producers.console_changes)."""


def _same_config(stored: dict[str, Any], config: dict[str, Any]) -> bool:
    """Whether a stored config says what ``config`` says: as stored, or read with today's defaults (a
    key added since it was stored, such as a kind's ``source``, is no change of the file's)."""
    if stored == config:
        return True
    try:
        return bool(to_json(connection_from_json(stored)) == config)
    except ValueError:  # a stored config today's rules refuse: the file's is a change
        return False


def apply_connections(
    connections: Sequence[KindConfig],
    *,
    source_file: str | None = None,
    force: bool = False,
    console: console_changes.Change | None = None,
) -> list[tuple[str, str]]:
    """Create or update each connection (by live name). Returns (name, created|updated|unchanged).

    ``source_file``: the connections file they come from (kept, so the console writes its changes
    there). A file that lacks a change the console made is refused (ConsoleChangesUndone) unless
    ``force``. ``console``: a change made in the console, recorded as one.

    A connection enabled again whose files waited while it was disabled gets a run for them (if it
    imports on arrival; on schedule, the next slot takes them)."""
    results = []
    outbox = OutboxBatch()
    with store.connect() as conn:
        conn.execute("SELECT pg_advisory_xact_lock(7304)")  # one connections apply at a time: overlaps stay refused
        overlaps = pathcheck.overlaps_with_stored(conn, connections)
        if overlaps:
            raise CommandError("\n".join(overlaps))
        undone = [] if console else console_changes.reconcile(conn, connections, force=force, by=admin_identity())
        if undone and not force:
            raise ConsoleChangesUndone("\n".join(u.sentence() for u in undone))
        overridden = {u.connection: u.settings for u in undone}
        for c in connections:
            config = to_json(c)
            existing = live_connection(conn, c.name)
            if existing is None:
                conn.execute(
                    "INSERT INTO sync.connections (name, kind, config, enabled) VALUES (%s, %s, %s, %s)",
                    (c.name, c.kind, Jsonb(config), c.enabled),
                )
                created = live_connection(conn, c.name)
                assert created is not None
                ownership.take_back(conn, c.name, int(created["id"]))
                results.append((c.name, "created"))
            elif (
                not _same_config(existing["config"], config)
                or existing["kind"] != c.kind
                or existing["enabled"] != c.enabled
            ):
                conn.execute(
                    "UPDATE sync.connections SET kind = %s, config = %s, enabled = %s, updated_at = now() "
                    "WHERE id = %s",
                    (c.kind, Jsonb(config), c.enabled, existing["id"]),
                )
                results.append((c.name, "updated"))
            else:
                results.append((c.name, "unchanged"))
            row = live_connection(conn, c.name)
            assert row is not None
            if source_file is not None:
                conn.execute(
                    sql.SQL("UPDATE sync.connections SET source_file = %s WHERE id = %s"), (source_file, row["id"])
                )
            if console is not None:
                changed = (
                    [console_changes.CREATED]
                    if existing is None
                    else console_changes.changed_settings(existing["config"], to_json(c))
                )
                console_changes.record(conn, c.name, changed, console, source_file)
            if c.name in overridden:
                results[-1] = (
                    c.name,
                    f"{results[-1][1]}; undid the console's change of {', '.join(overridden[c.name])}",
                )
            _apply_schedule(conn, row["id"], c)
            if existing is not None and not existing["enabled"] and c.enabled and c.trigger == "on_arrival":
                waiting = store.fetch_one(
                    conn,
                    "SELECT count(*) AS n FROM sync.feed_files WHERE connection_id = %s AND status = 'registered'",
                    (row["id"],),
                )
                if waiting and waiting["n"]:
                    create_run(conn, ConnectionRow.of(row), TriggerType.FILE_DROP, outbox, join_any=True)
    outbox.flush()
    return results


def _apply_schedule(conn: Any, connection_id: int, c: KindConfig) -> None:
    """Keep sync.schedules in step. A new or changed schedule owes no slot from before it existed."""
    if c.schedule is None:
        conn.execute("DELETE FROM sync.schedules WHERE connection_id = %s", (connection_id,))
        return
    conn.execute(
        """INSERT INTO sync.schedules AS s (connection_id, start_at, every_days, every_hours, access, enabled, armed_at)
           VALUES (%(c)s, %(start)s, %(days)s, %(every)s, %(access)s, %(enabled)s, sync.clock())
           ON CONFLICT (connection_id) DO UPDATE SET
             enabled = EXCLUDED.enabled, access = EXCLUDED.access, updated_at = now(),
             armed_at = CASE WHEN (s.start_at, s.every_hours) = (EXCLUDED.start_at, EXCLUDED.every_hours)
                             THEN s.armed_at ELSE EXCLUDED.armed_at END,
             last_slot = CASE WHEN (s.start_at, s.every_hours) = (EXCLUDED.start_at, EXCLUDED.every_hours)
                              THEN s.last_slot ELSE NULL END,
             start_at = EXCLUDED.start_at, every_days = EXCLUDED.every_days, every_hours = EXCLUDED.every_hours""",
        {
            "c": connection_id,
            "start": c.schedule.start,
            "days": c.schedule.every_days,
            "every": c.schedule.period_hours,
            "access": c.schedule.access,
            "enabled": c.schedule.enabled,
        },
    )


def cancel(run_id: int, reason: str | None = None) -> str:
    """End a queued, held or stuck run (``cancelled``, audited in sync.run_actions); the
    connection's next queued run starts and the run's files go as a rejected run's do. Returns
    the status the run had."""
    outbox = OutboxBatch()
    with store.connect() as conn:
        result = cancel_run(conn, run_id, by=admin_identity(), reason=reason)
        if result is None:
            raise CommandError(f"no run {run_id}")
        if not result["cancelled"]:
            raise CommandError(
                f"run {run_id} is {result['from_status']}: only a queued, awaiting_approval or in_progress run "
                "can be cancelled"
            )
        start_next(conn, result["connection_id"], outbox)
    outbox.flush()
    retention.sweep(run_id=run_id)
    return str(result["from_status"])


def _connection(name: str) -> dict[str, Any]:
    with store.connect() as conn:
        c = live_connection(conn, name)
    if c is None:
        raise CommandError(f"no connection named {name!r}; see `feedsync connections list`")
    return c


def upload(settings: Settings, name: str, files: list[Path], names: list[str] | None = None) -> list[Path]:
    """Put files into the connection's drop folder as one delivery (``producers.uploads``): each
    under a hidden temporary name renamed into place, several taken together into one run."""
    connection = _connection(name)
    try:
        return uploads.deliver(settings, connection, list(zip(files, names or [f.name for f in files], strict=True)))
    except uploads.Refused as exc:
        raise CommandError(str(exc)) from None


def receive_upload(settings: Settings, name: str) -> uploads.Delivery:
    """An upload whose files come as a stream (the console's): staged as they arrive, placed together."""
    try:
        return uploads.Delivery(settings, _connection(name))
    except uploads.Refused as exc:
        raise CommandError(str(exc)) from None


def start_sync(
    settings: Settings,
    name: str,
    *,
    trigger: TriggerType = TriggerType.ON_DEMAND,
    access: AccessMode = AccessMode.ONLINE,
    dry_run: bool = False,
    since: date | None = None,
) -> int:
    """An on-demand run: of the files present now, or with ``since`` of every dated file from that
    day to today, oldest first."""
    connection = _connection(name)
    if not connection["enabled"]:
        raise CommandError(f"connection {name!r} is disabled; set enabled = true and apply it to sync")
    if since is not None:
        with store.connect() as conn:
            today = store.fetch_one(conn, "SELECT (sync.clock() AT TIME ZONE 'UTC')::date AS d")
        assert today is not None
        if since > today["d"]:
            # The database's clock decides (the schedules' and windows' clock), not this host's.
            raise CommandError(
                f"the start date {since.isoformat()} is after today ({today['d'].isoformat()} UTC); "
                "give today or an earlier day"
            )
    registry.scan(settings, only=name, announce=False)
    outbox = OutboxBatch()
    with store.connect() as conn:
        run_id, _ = create_run(
            conn, ConnectionRow.of(connection), trigger, outbox, access=access, dry_run=dry_run, since=since
        )
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


def _latest_run(conn: Any, name: str) -> dict[str, Any] | None:
    return store.fetch_one(
        conn, "SELECT id, status FROM sync.runs WHERE connection_name = %s ORDER BY id DESC LIMIT 1", (name,)
    )


def rerun(settings: Settings, name: str, run_id: int | None = None) -> int:
    """Rerun the connection's latest run with the files it used, as they are now: a fixed file
    dropped again under the same name takes the old one's place (taken from the drop dir first)."""
    connection = _connection(name)
    registry.scan(settings, only=name, announce=False)
    outbox = OutboxBatch()
    with store.connect() as conn:
        lock_connection(conn, connection["id"])
        latest = _latest_run(conn, name)
        if latest is None:
            raise CommandError(f"{name} has no run to rerun")
        if run_id is not None and run_id != latest["id"]:
            raise CommandError(
                f"run {run_id} is not the latest run of {name} (run {latest['id']} is); only the latest run can "
                "be rerun, so an older import never overwrites a newer one"
            )
        if latest["status"] in ("queued", "in_progress", "awaiting_approval"):
            raise CommandError(f"run {latest['id']} of {name} is still {latest['status']}; rerun it once it ends")
        new_id, _ = create_run(
            conn, ConnectionRow.of(connection), TriggerType.RERUN, outbox, rerun_of=latest["id"], coalesce=False
        )
    outbox.flush()
    return new_id


def _decide_held(conn: Any, run_id: int, approved: bool, comment: str | None) -> dict[str, Any]:
    """Move a held run on (guarded: only from awaiting_approval), recording who decided and why."""
    who = admin_identity()
    comment = (comment or "").strip()[:1000] or None
    row = lifecycle.decide(conn, run_id, approved=approved, who=who, comment=comment)
    if row is None:
        st = store.fetch_one(conn, "SELECT status FROM sync.runs WHERE id = %s", (run_id,))
        raise CommandError(
            f"no run {run_id}" if st is None else f"run {run_id} is {st['status']}, not awaiting approval"
        )
    return row


def approve(run_id: int, comment: str | None = None) -> None:
    from schemas.messages import LoadRun

    outbox = OutboxBatch()
    with store.connect() as conn:
        _decide_held(conn, run_id, approved=True, comment=comment)
        outbox.add(conn, LoadRun(run_id=run_id, approved=True), f"load-approved:{run_id}")
    outbox.flush()


def reject(run_id: int, comment: str | None = None) -> None:
    """Discard a held run: nothing of it is applied; the connection's next run may start."""
    from workers.runs.gate import drop_stage_tables
    from workers.runs.start import start_next

    outbox = OutboxBatch()
    with store.connect() as conn:
        row = _decide_held(conn, run_id, approved=False, comment=comment)
        conn.execute(
            """UPDATE sync.feed_files f SET status = 'rejected' FROM sync.run_files rf
               WHERE rf.run_id = %s AND f.id = rf.file_id""",
            (run_id,),
        )
        drop_stage_tables(conn, run_id)
        start_next(conn, row["connection_id"], outbox)
    outbox.flush()


def _stored(name: str) -> KindConfig:
    """The connection as stored, validated again as `connections apply` validates a file."""
    from schemas.kinds import connection_from_json

    return connection_from_json(dict(_connection(name)["config"]))


def schedule_of(start: Any, every: int, unit: str = "days", access: str = "online", enabled: bool = True) -> Any:
    """A schedule from a form's fields, validated as a connections file's is; CommandError in one sentence."""
    from pydantic import ValidationError

    from schemas.connections import Schedule

    try:
        if unit not in ("days", "hours"):
            raise CommandError(f"a schedule repeats every N days or hours, not {unit!r}")
        return Schedule.model_validate({"start": start, f"every_{unit}": every, "access": access, "enabled": enabled})
    except ValidationError as exc:
        raise CommandError("; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())) from None


def set_schedule(
    name: str, *, start: Any, every: int, unit: str = "days", access: str = "online", enabled: bool = True
) -> str:
    """Give a connection a schedule (start in UTC, every N days or hours, the access mode of its
    runs) or change it; the new schedule owes no slot from before it existed."""
    schedule = schedule_of(start, every, unit, access, enabled)
    c = _stored(name).model_copy(update={"schedule": schedule})
    return apply_connections([c])[0][1]
