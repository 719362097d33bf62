"""What the pull remembers of each remote file in ``sync.sftp_files`` (seen, landed, registered,
handled; see ``schemas/sql/018_sftp.sql``), and the settling of landed files: registered by
anyone yet, or to be registered now, or gone and to be pulled again."""

from __future__ import annotations

import os
from pathlib import PurePosixPath
from typing import Any

import structlog

from producers import registration, registry
from producers.sftp_plan import Decision, remote_path
from schemas.settings import Settings
from schemas.sftp import SftpConfig
from workers import store

log = structlog.get_logger(__name__)


def remembered(connection_id: int) -> dict[tuple[str, int, int], str]:
    with store.connect() as conn:
        rows = store.fetch_all(
            conn,
            "SELECT remote_path, size, mtime, state FROM sync.sftp_files WHERE connection_id = %s",
            (connection_id,),
        )
    return {(r["remote_path"], r["size"], r["mtime"]): r["state"] for r in rows}


def remember_listing(connection_id: int, cfg: SftpConfig, decisions: list[Decision]) -> None:
    """Keep this listing's untaken files as ``seen`` (the next listing compares with them); forget
    what is no longer listed or has changed."""
    keys = [(remote_path(cfg, d.entry.name), d.entry.size, d.entry.mtime) for d in decisions]
    with store.connect() as conn:
        conn.execute(
            """DELETE FROM sync.sftp_files WHERE connection_id = %s AND state = 'seen'
                 AND (remote_path, size, mtime) NOT IN
                     (SELECT * FROM unnest(%s::text[], %s::bigint[], %s::bigint[]))""",
            (connection_id, [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]),
        )
        # One statement for the whole listing: a folder of 10,000 files is not 10,000 round trips.
        conn.execute(
            """INSERT INTO sync.sftp_files (connection_id, remote_path, size, mtime, state)
               SELECT %s, p, s, m, 'seen' FROM unnest(%s::text[], %s::bigint[], %s::bigint[]) AS l (p, s, m)
               ON CONFLICT DO NOTHING""",
            (connection_id, [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]),
        )


def registered_file(connection_id: int, row: dict[str, Any]) -> int | None:
    """The feed_files row a landed file became, whoever registered it (this poll, the watcher, a
    scheduled run's scan). Waits for a registration of that connection still going."""
    with store.connect() as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (registration._INTAKE_LOCK, connection_id))
        found = store.fetch_one(
            conn,
            """SELECT d.file_id FROM sync.file_drops d JOIN sync.feed_files f ON f.id = d.file_id
               WHERE d.connection_id = %s AND d.path = %s AND f.sha256 = %s AND d.dropped_at >= %s
               ORDER BY d.id DESC LIMIT 1""",
            (connection_id, row["local_path"], row["sha256"], row["landed_at"]),
        )
    return int(found["file_id"]) if found else None


def settle_landed(settings: Settings, connection: dict[str, Any]) -> None:
    """Landed files: registered by now (by anyone)? If not, register them; if they are gone
    unregistered, forget them so they are downloaded again."""
    with store.connect() as conn:
        landed = store.fetch_all(
            conn,
            "SELECT * FROM sync.sftp_files WHERE connection_id = %s AND state = 'landed' ORDER BY landed_at",
            (connection["id"],),
        )
    for row in landed:
        file_id = registered_file(connection["id"], row)
        if file_id is None:
            local = settings.drop_dir / row["local_path"]
            if os.path.lexists(local):
                taken = registry.take(settings, local, [connection], settle=False)
                if taken is not None and taken.outcome in ("registered", "duplicate"):
                    file_id = taken.file_id
                elif taken is None:
                    file_id = registered_file(connection["id"], row)  # taken by another intake meanwhile
            else:
                with store.connect() as conn:
                    conn.execute(
                        """DELETE FROM sync.sftp_files WHERE connection_id = %s AND remote_path = %s
                             AND size = %s AND mtime = %s AND state = 'landed'""",
                        (connection["id"], row["remote_path"], row["size"], row["mtime"]),
                    )
                log.warning(
                    "a pulled file left the drop folder unregistered; it is pulled again",
                    connection=connection["name"],
                    file=PurePosixPath(row["remote_path"]).name,
                )
                continue
        if file_id is not None:
            set_state(connection["id"], row, "registered", file_id=file_id)


def set_state(
    connection_id: int, row: dict[str, Any], state: str, *, file_id: int | None = None, pickup: str | None = None
) -> None:
    with store.connect() as conn:
        conn.execute(
            """UPDATE sync.sftp_files SET state = %(state)s, file_id = coalesce(%(f)s, file_id),
                      pickup = coalesce(%(pickup)s, pickup),
                      handled_at = CASE WHEN %(state)s = 'handled' THEN now() ELSE handled_at END
               WHERE connection_id = %(c)s AND remote_path = %(p)s AND size = %(s)s AND mtime = %(m)s""",
            {
                "state": state,
                "f": file_id,
                "pickup": pickup,
                "c": connection_id,
                "p": row["remote_path"],
                "s": row["size"],
                "m": row["mtime"],
            },
        )
