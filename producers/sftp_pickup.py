"""``after_pickup`` on the server (keep, delete, move:<folder>), once a pulled file's registration
has committed; a refusal is a warning, and the file stays remembered as taken."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import asyncssh
import structlog

from producers.sftp_files import set_state
from workers import store
from workers.files.sftp import Session

log = structlog.get_logger(__name__)


async def handle_registered(s: Session, connection: dict[str, Any]) -> list[str]:
    """after_pickup for every file whose registration committed; a refusal is a warning, and the
    file stays remembered as taken."""
    cfg = s.cfg
    with store.connect() as conn:
        rows = store.fetch_all(
            conn,
            "SELECT * FROM sync.sftp_files WHERE connection_id = %s AND state = 'registered' ORDER BY landed_at",
            (connection["id"],),
        )
    handled: list[str] = []
    if rows and cfg.move_to is not None and not await _folder_exists(s, cfg.move_to):
        # Each move would fail as if the file were gone: say what is missing, and move them later.
        log.warning(
            f"the after_pickup folder {cfg.move_to} does not exist on the server: create it or change after_pickup; "
            "the taken files stay on the server, remembered as taken, and are moved once it exists",
            connection=connection["name"],
            waiting=len(rows),
        )
        return handled
    for row in rows:
        name = PurePosixPath(row["remote_path"]).name
        pickup = await _pickup(s, row["remote_path"], name)
        if cfg.done_marker and cfg.after_pickup != "keep":
            await _pickup(s, row["remote_path"] + cfg.done_marker, name + cfg.done_marker)
        set_state(connection["id"], row, "handled", pickup=pickup)
        handled.append(name)
    return handled


async def _folder_exists(s: Session, folder: str) -> bool:
    try:
        return bool(await s.call(s.client.isdir(folder)))
    except asyncssh.SFTPError:
        return True  # cannot tell: the move itself says what is wrong


async def _pickup(s: Session, path: str, name: str) -> str:
    cfg, connection = s.cfg, s.name
    try:
        if cfg.after_pickup == "delete":
            await s.call(s.client.remove(path))
            return "deleted"
        if cfg.move_to is not None:
            target = f"{cfg.move_to.rstrip('/')}/{name}"
            await s.rename(path, target)
            return f"moved to {target}"
        return "kept"
    except asyncssh.SFTPNoSuchFile:
        log.warning("a taken file was already gone from the server", connection=connection, file=name)
        return "already gone"
    except (asyncssh.SFTPPermissionDenied, asyncssh.SFTPFailure) as exc:
        what = "delete" if cfg.after_pickup == "delete" else f"move to {cfg.move_to}"
        log.warning(
            f"the server refused to {what} a taken file; it stays there and is not pulled again",
            connection=connection,
            file=name,
            reason=type(exc).__name__,
        )
        return f"could not {what}: {type(exc).__name__}"
