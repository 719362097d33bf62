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
3. Up to ``max_files_per_poll`` of the files to take (the rest stay seen, for the next round):
   download to ``.<name>.part`` in the drop folder, hashing as it comes, check the size, fsync,
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
import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
import structlog

from producers import registry, safefile
from producers import settle as settle_rules
from producers.sftp_files import remember_listing, remembered, settle_landed
from producers.sftp_pickup import handle_registered
from producers.sftp_plan import Decision, Entry, listing, local_rel, part_name, plan, remote_path, sftp_config
from schemas.settings import Settings
from schemas.sftp import SftpConfig
from workers import failpoints, store
from workers.errors import TerminalError
from workers.files.disk import fsync_dir
from workers.files.sftp import BLOCK, Session, session

__all__ = ["Decision", "PollResult", "check", "poll", "sftp_config"]

log = structlog.get_logger(__name__)


@dataclass
class PollResult:
    taken: list[str]
    handled: list[str]
    decisions: list[Decision]
    #: Files left for the next round (over ``max_files_per_poll``).
    more: bool = False


async def _download(s: Session, settings: Settings, connection: dict[str, Any], e: Entry) -> Path | None:
    """Land one remote file in the drop folder; returns its local path, or None to try again later."""
    cfg, name = s.cfg, connection["name"]
    rel = local_rel(settings, connection, e.name)
    final = settings.drop_dir / rel
    final.parent.mkdir(parents=True, exist_ok=True)
    if os.path.lexists(final):
        log.info("a file of that name waits in the drop folder; pulled after it is taken", connection=name, file=e.name)
        return None
    part = final.with_name(part_name(e.name))
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


async def _poll(settings: Settings, connection: dict[str, Any], cfg: SftpConfig) -> PollResult:
    taken: list[str] = []
    async with session(settings, cfg, connection["name"]) as s:
        settle_landed(settings, connection)
        handled = await handle_registered(s, connection)
        entries = await listing(s)
        known = remembered(connection["id"])
        decisions = plan(settings, connection, cfg, entries, known, time.time())
        _warn_refused(connection, cfg, decisions, known)
        wanted = [d for d in decisions if d.take]
        batch = wanted[: cfg.max_files_per_poll]
        # Files left over the batch stay seen, as stable as they were: the next round takes them.
        remember_listing(connection["id"], cfg, [d for d in decisions if not d.take] + wanted[len(batch) :])
        for d in batch:
            try:
                local = await _download(s, settings, connection, d.entry)
            except OSError as exc:
                # This file cannot be landed here (its name, the folder): the others still can.
                log.warning(
                    "a remote file could not be written to the drop folder; the other files go on",
                    connection=connection["name"],
                    file=safefile.escaped(d.entry.name),
                    reason=os.strerror(exc.errno) if exc.errno else type(exc).__name__,
                )
                continue
            if local is None:
                continue
            failpoints.hit("sftp.landed")
            taken.append(d.entry.name)
            registry.take(settings, local, [connection], settle=False)
        settle_landed(settings, connection)
        handled += await handle_registered(s, connection)
    return PollResult(taken, handled, decisions, more=len(wanted) > len(batch))


def _warn_refused(
    connection: dict[str, Any], cfg: SftpConfig, decisions: list[Decision], known: dict[tuple[str, int, int], str]
) -> None:
    """A refused name is said once, when it is first listed (it is remembered as seen after)."""
    for d in decisions:
        if d.why.startswith("refused: ") and (remote_path(cfg, d.entry.name), d.entry.size, d.entry.mtime) not in known:
            log.warning(
                f"a remote file is refused: {d.why.removeprefix('refused: ')}",
                connection=connection["name"],
                file=safefile.escaped(d.entry.name),
            )


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
    return plan(settings, connection, cfg, entries, remembered(connection["id"]), time.time())
