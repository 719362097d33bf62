"""The SFTP pull: a producer beside the watcher that lands a connection's remote files in its drop
folder, where the registry takes them as if an HR system had dropped them there.

Each poll of a connection (every ``poll_every_min``, by ``feedsync sftp pull``, which ``feedsync
up`` starts):

1. Pulled files whose registration is still open from an earlier poll are settled first (below).
2. List ``remote_dir`` and decide (``plan``): dotfiles, partial uploads (``.part``, ``.tmp``…),
   anything but regular files, markers and names the connection's ``path`` does not match are
   skipped; so is a file younger than ``min_file_age_s``, or whose size and mtime are not the same
   as on the previous listing (it may still be growing); with ``done_marker``, a file is taken
   once ``<name><done_marker>`` exists instead. A file already taken (same path, size and mtime,
   in ``sync.sftp_files``) is never downloaded again: no time cursor, so two files with the same
   mtime second are both taken.
3. Download to ``.<name>.part`` in the drop folder, hashing as it comes, check the size, fsync,
   record it as ``landed`` (with its SHA-256), rename it into place, and hand it to the registry
   (dedupe by content, history, feed_arrived).
4. Only once its registration has committed is the remote file kept, moved or deleted
   (``after_pickup``). A crash before that leaves the remote file where it is; the next poll finds
   the landed file, registers it if nobody did, and then handles the remote file: imported once.

A file that vanished between the listing and the download is a warning; so is a move or delete
the server refuses (the file is remembered as taken, so it is not downloaded again). A refused
connection or a timeout is retried with the backoff (``FEEDSYNC_MIN_BACKOFF_MS``..``MAX``); a wrong
host key or a refused login is one error sentence per poll, never retried sooner.
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import asyncssh
import structlog

from producers import registration, registry, safefile
from producers import settle as settle_rules
from schemas.settings import Settings
from schemas.sftp import SftpConfig
from workers import failpoints, store
from workers.errors import TerminalError
from workers.files import fsync_dir
from workers.sftp import BLOCK, Session, session

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Entry:
    """One name in a remote listing."""

    name: str
    size: int
    mtime: int
    regular: bool


@dataclass(frozen=True)
class Decision:
    entry: Entry
    take: bool
    why: str


@dataclass
class PollResult:
    taken: list[str]
    handled: list[str]
    decisions: list[Decision]


def sftp_config(connection: dict[str, Any]) -> SftpConfig | None:
    raw = connection["config"].get("sftp")
    return SftpConfig.model_validate(raw) if raw else None


def local_rel(settings: Settings, connection: dict[str, Any], name: str) -> PurePosixPath:
    folder = registry.drop_target(settings, connection)
    return PurePosixPath(folder.relative_to(settings.drop_dir).as_posix(), name)


def plan(
    settings: Settings,
    connection: dict[str, Any],
    cfg: SftpConfig,
    entries: list[Entry],
    remembered: dict[tuple[str, int, int], str],
    now: float,
) -> list[Decision]:
    """What a poll does with each listed name, and why. ``remembered``: (path, size, mtime) ->
    state of sync.sftp_files (``seen`` = on the previous listing)."""
    names = {e.name for e in entries}
    decisions = []
    for e in sorted(entries, key=lambda e: e.name):
        if e.name in (".", ".."):
            continue
        decisions.append(Decision(e, *_decide(settings, connection, cfg, e, names, remembered, now)))
    return decisions


def _decide(
    settings: Settings,
    connection: dict[str, Any],
    cfg: SftpConfig,
    e: Entry,
    names: set[str],
    remembered: dict[tuple[str, int, int], str],
    now: float,
) -> tuple[bool, str]:
    if e.name.startswith("."):
        return False, "a dotfile"
    if e.name.lower().endswith(registry.TEMP_SUFFIXES):
        return False, "a partial upload (temporary suffix)"
    if cfg.done_marker and e.name.endswith(cfg.done_marker) and e.name != cfg.done_marker:
        return False, "a done marker"
    if not e.regular:
        return False, "not a regular file"
    problem = safefile.name_problem(e.name)
    if problem is not None:
        return False, f"refused: {problem}"
    rel = local_rel(settings, connection, e.name)
    if not fnmatch.fnmatchcase(rel.as_posix(), connection["config"]["path"]):
        return False, f"its name does not match the connection's path {connection['config']['path']!r}"
    state = remembered.get((remote_path(cfg, e.name), e.size, e.mtime))
    if state not in (None, "seen"):
        return False, f"already taken ({state})"
    if cfg.done_marker:
        if e.name + cfg.done_marker not in names:
            return False, f"waiting for its marker {e.name}{cfg.done_marker}"
        return True, "its marker is there"
    age = now - e.mtime
    if age < cfg.min_file_age_s:
        return False, f"younger than min_file_age_s ({max(0, int(age))} of {cfg.min_file_age_s} s)"
    if state != "seen":
        return False, "new or changed since the last listing: taken if the next listing shows it unchanged"
    return True, "unchanged since the last listing"


def remote_path(cfg: SftpConfig, name: str) -> str:
    return f"/{name}" if cfg.remote_dir == "/" else f"{cfg.remote_dir.rstrip('/')}/{name}"


def _entry(name: asyncssh.SFTPName) -> Entry:
    attrs = name.attrs
    if attrs.permissions is not None:
        regular = stat.S_ISREG(attrs.permissions)
    else:
        regular = attrs.type == asyncssh.FILEXFER_TYPE_REGULAR
    filename = name.filename if isinstance(name.filename, str) else os.fsdecode(name.filename)
    return Entry(filename, int(attrs.size or 0), int(attrs.mtime or 0), regular)


async def listing(s: Session) -> list[Entry]:
    return [_entry(n) for n in await s.call(s.client.readdir(s.cfg.remote_dir))]


def _remembered(connection_id: int) -> dict[tuple[str, int, int], str]:
    with store.connect() as conn:
        rows = store.fetch_all(
            conn,
            "SELECT remote_path, size, mtime, state FROM sync.sftp_files WHERE connection_id = %s",
            (connection_id,),
        )
    return {(r["remote_path"], r["size"], r["mtime"]): r["state"] for r in rows}


def _remember_listing(connection_id: int, cfg: SftpConfig, decisions: list[Decision]) -> None:
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
        for path, size, mtime in keys:
            conn.execute(
                """INSERT INTO sync.sftp_files (connection_id, remote_path, size, mtime, state)
                   VALUES (%s, %s, %s, %s, 'seen') ON CONFLICT DO NOTHING""",
                (connection_id, path, size, mtime),
            )


async def _download(s: Session, settings: Settings, connection: dict[str, Any], e: Entry) -> Path | None:
    """Land one remote file in the drop folder; returns its local path, or None to try again later."""
    cfg, name = s.cfg, connection["name"]
    rel = local_rel(settings, connection, e.name)
    final = settings.drop_dir / rel
    final.parent.mkdir(parents=True, exist_ok=True)
    if os.path.lexists(final):
        log.info("a file of that name waits in the drop folder; pulled after it is taken", connection=name, file=e.name)
        return None
    part = final.with_name(f".{e.name}.part")
    digest = hashlib.sha256()
    complete = False
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        size = await _fetch(s, e, fd, digest)
        if size is None:
            return None
        if size != e.size:
            log.info("a file changed while it was downloaded; taken once it is stable", connection=name, file=e.name)
            return None
        os.fsync(fd)
        complete = True
    finally:
        os.close(fd)
        if not complete:
            part.unlink(missing_ok=True)
    with store.connect() as conn:
        conn.execute(
            """INSERT INTO sync.sftp_files
                   (connection_id, remote_path, size, mtime, state, sha256, local_path, landed_at)
               VALUES (%(c)s, %(p)s, %(s)s, %(m)s, 'landed', %(h)s, %(l)s, now())
               ON CONFLICT (connection_id, remote_path, size, mtime) DO UPDATE
               SET state = 'landed', sha256 = %(h)s, local_path = %(l)s, landed_at = now()""",
            {
                "c": connection["id"],
                "p": remote_path(cfg, e.name),
                "s": e.size,
                "m": e.mtime,
                "h": digest.hexdigest(),
                "l": rel.as_posix(),
            },
        )
    os.replace(part, final)
    fsync_dir(final.parent)
    if settle_rules.wants_marker(connection["config"]):
        settle_rules.marker_of(final).touch()  # the local connection waits for markers too
    log.info("pulled a file into the drop folder", connection=name, file=e.name, size=size)
    return final


async def _fetch(s: Session, e: Entry, fd: int, digest: Any) -> int | None:
    """Copy the remote file into ``fd``; its size, or None if it cannot be read (a warning)."""
    size = 0
    try:
        async with await s.call(s.client.open(remote_path(s.cfg, e.name), "rb")) as remote:
            while True:
                block = await s.call(remote.read(BLOCK))
                if not block:
                    return size
                assert isinstance(block, bytes)
                os.write(fd, block)
                digest.update(block)
                size += len(block)
    except asyncssh.SFTPNoSuchFile:
        log.warning("a listed file vanished before it was downloaded; nothing taken", connection=s.name, file=e.name)
    except asyncssh.SFTPPermissionDenied:
        log.warning("the server refused to let a listed file be read; skipped", connection=s.name, file=e.name)
    return None


def _registered_file(connection_id: int, row: dict[str, Any]) -> int | None:
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


def _settle_landed(settings: Settings, connection: dict[str, Any]) -> None:
    """Landed files: registered by now (by anyone)? If not, register them; if they are gone
    unregistered, forget them so they are downloaded again."""
    with store.connect() as conn:
        landed = store.fetch_all(
            conn,
            "SELECT * FROM sync.sftp_files WHERE connection_id = %s AND state = 'landed' ORDER BY landed_at",
            (connection["id"],),
        )
    for row in landed:
        file_id = _registered_file(connection["id"], row)
        if file_id is None:
            local = settings.drop_dir / row["local_path"]
            if os.path.lexists(local):
                taken = registry.take(settings, local, [connection], settle=False)
                if taken is not None and taken.outcome in ("registered", "duplicate"):
                    file_id = taken.file_id
                elif taken is None:
                    file_id = _registered_file(connection["id"], row)  # taken by another intake meanwhile
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
            _set_state(connection["id"], row, "registered", file_id=file_id)


def _set_state(
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


async def _handle_registered(s: Session, connection: dict[str, Any]) -> list[str]:
    """after_pickup for every file whose registration committed; a refusal is a warning, and the
    file stays remembered as taken."""
    cfg = s.cfg
    with store.connect() as conn:
        rows = store.fetch_all(
            conn,
            "SELECT * FROM sync.sftp_files WHERE connection_id = %s AND state = 'registered' ORDER BY landed_at",
            (connection["id"],),
        )
    handled = []
    for row in rows:
        name = PurePosixPath(row["remote_path"]).name
        pickup = await _pickup(s, row["remote_path"], name)
        if cfg.done_marker and cfg.after_pickup != "keep":
            await _pickup(s, row["remote_path"] + cfg.done_marker, name + cfg.done_marker)
        _set_state(connection["id"], row, "handled", pickup=pickup)
        handled.append(name)
    return handled


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


async def _poll(settings: Settings, connection: dict[str, Any], cfg: SftpConfig) -> PollResult:
    taken: list[str] = []
    async with session(settings, cfg, connection["name"]) as s:
        _settle_landed(settings, connection)
        handled = await _handle_registered(s, connection)
        entries = await listing(s)
        decisions = plan(settings, connection, cfg, entries, _remembered(connection["id"]), time.time())
        _remember_listing(connection["id"], cfg, [d for d in decisions if not d.take])
        for d in decisions:
            if not d.take:
                continue
            local = await _download(s, settings, connection, d.entry)
            if local is None:
                continue
            failpoints.hit("sftp.landed")
            taken.append(d.entry.name)
            registry.take(settings, local, [connection], settle=False)
        _settle_landed(settings, connection)
        handled += await _handle_registered(s, connection)
    return PollResult(taken, handled, decisions)


def poll(settings: Settings, connection: dict[str, Any]) -> PollResult:
    """One poll of one connection (see the module docstring). Raises TransientError (retry with
    backoff) or TerminalError (a sentence for the admin)."""
    cfg = sftp_config(connection)
    if cfg is None:
        raise TerminalError(f"{connection['name']} has no [connections.sftp]")
    with structlog.contextvars.bound_contextvars(connection=connection["name"]):
        return asyncio.run(_poll(settings, connection, cfg))


def check(settings: Settings, connection: dict[str, Any]) -> list[Decision]:
    """Connect and list, changing nothing: what the next poll would take, and why not the rest."""
    cfg = sftp_config(connection)
    if cfg is None:
        raise TerminalError(f"{connection['name']} has no [connections.sftp]: nothing to check")

    async def go() -> list[Entry]:
        async with session(settings, cfg, connection["name"]) as s:
            return await listing(s)

    entries = asyncio.run(go())
    return plan(settings, connection, cfg, entries, _remembered(connection["id"]), time.time())
