"""Connections as a whole: the list `feedsync connections list` prints, and deleting one (its
queued and held runs cancelled with it when forced)."""

from __future__ import annotations

from typing import Any

from psycopg import sql

from producers import registry, scheduling, takeable
from producers.commands import CommandError
from producers.dlq import admin_identity
from schemas.settings import Settings
from schemas.states import ACTIVE_RUN_STATUSES
from workers import store
from workers.runs import retention
from workers.runs.create import live_connection, lock_connection
from workers.runs.gate import cancel_run, close_gate


def list_connections(settings: Settings | None = None) -> list[dict[str, Any]]:
    """Live connections; with ``settings``, also the files sitting in each one's folder of the
    drop dir (not taken yet, or ignored with why)."""
    with store.connect() as conn:
        rows = store.fetch_all(
            conn,
            sql.SQL(
                """SELECT c.name, c.kind, c.enabled, c.config ->> 'path' AS path, c.config ->> 'trigger' AS trigger,
                      c.created_at, c.updated_at,
                      (SELECT count(*) FROM sync.feed_files f WHERE f.connection_id = c.id AND f.status = 'registered')
                        AS files_waiting,
                      CASE WHEN s.enabled AND c.enabled THEN {next_slot} END AS next_slot,
                      CASE WHEN c.parked_until > sync.clock() THEN c.parked_until END AS parked_until,
                      CASE WHEN c.parked_until > sync.clock() THEN c.parked_reason END AS parked_reason
               FROM sync.connections c LEFT JOIN sync.schedules s ON s.connection_id = c.id
               WHERE c.deleted_at IS NULL ORDER BY c.name"""
            ).format(next_slot=scheduling.NEXT_SLOT),
        )
    if settings is not None:
        intake = registry.live_connections(settings)
        for r in rows:
            this = next((c for c in intake if c["name"] == r["name"]), None)
            found = takeable.files_in_folder(settings, this, intake) if this else {"waiting": [], "ignored": []}
            r["files_in_drop_dir"], r["files_ignored"] = found["waiting"], found["ignored"]
            r["files_waiting"] += len(found["waiting"])
    return rows


def delete_connection(name: str, *, force: bool = False) -> list[int]:
    """Soft delete: the row and its runs stay, so a connection re-created under the name keeps its history.

    A connection with runs that have not ended (or files waiting for one) is refused: nothing would
    ever start, finish or remove them. With ``force`` those runs are cancelled and every file
    still stored for the connection is removed. Returns the runs cancelled."""
    who = admin_identity()
    with store.connect() as conn:
        connection = live_connection(conn, name)
        if connection is None:
            raise CommandError(f"no connection named {name!r}")
        listed = _active_runs(conn, connection["id"]) if force else []
        for r in listed:  # the gates before the connection's lock, in the order stages take them
            close_gate(conn, r["id"])
        lock_connection(conn, connection["id"])
        active = _active_runs(conn, connection["id"])
        if force and not all(
            close_gate(conn, r["id"], wait=False) for r in active if r["id"] not in {x["id"] for x in listed}
        ):
            raise CommandError(f"a run of {name!r} started meanwhile; run the command again")
        waiting = store.fetch_one(
            conn,
            "SELECT count(*) AS n FROM sync.feed_files WHERE connection_id = %s AND status = 'registered' "
            "AND removed_at IS NULL",
            (connection["id"],),
        )
        assert waiting is not None
        if (active or waiting["n"]) and not force:
            parts = [f"run {r['id']} is {r['status']}" for r in active]
            if waiting["n"]:
                parts.append(f"{waiting['n']} file(s) wait for a run")
            raise CommandError(
                f"connection {name!r} is in use ({'; '.join(parts)}): wait for its runs to end, or delete it with "
                "--force to cancel them and remove their files"
            )
        for r in active:
            cancel_run(conn, r["id"], by=who, reason=f"connection {name} deleted")
        # Nothing will read these any more: the files of the cancelled runs and those still waiting.
        removed = conn.execute(
            """UPDATE sync.feed_files f SET removed_at = clock_timestamp(),
                      status = CASE WHEN f.status = 'registered' THEN 'rejected' ELSE f.status END
               WHERE f.connection_id = %s AND f.removed_at IS NULL
                 AND (f.status = 'registered'
                      OR f.id IN (SELECT file_id FROM sync.run_files WHERE run_id = ANY(%s)))""",
            (connection["id"], [r["id"] for r in active]),
        ).rowcount
        conn.execute("UPDATE sync.connections SET deleted_at = now() WHERE id = %s", (connection["id"],))
    if removed:
        # The rows are marked removed and committed; the sweep unlinks files marked removed.
        retention.sweep()
    return [int(r["id"]) for r in active]


def _active_runs(conn: Any, connection_id: int) -> list[dict[str, Any]]:
    return store.fetch_all(
        conn,
        "SELECT id, status FROM sync.runs WHERE connection_id = %s AND status = ANY(%s) ORDER BY id",
        (connection_id, [s.value for s in ACTIVE_RUN_STATUSES]),
    )
