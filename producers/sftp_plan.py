"""What a poll of an SFTP connection does with each name in a remote listing, and why: the rules of
``sftp_pull``'s step 2, pure (no server, no database), so ``feedsync sftp check`` shows the same."""

from __future__ import annotations

import fnmatch
import os
import stat
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import asyncssh

from producers import registry, safefile
from schemas.settings import Settings
from schemas.sftp import SftpConfig
from workers.errors import TerminalError
from workers.files.sftp import Session

PART_PREFIX, PART_SUFFIX = ".", ".part"


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
    problem = safefile.name_problem(e.name) or _path_in_name(e.name) or _too_long(settings, e.name)
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


def _path_in_name(name: str) -> str | None:
    # A listing names entries of one folder; a server that sends a '/' in a name is broken or
    # hostile, and the name must never become a path below (or above) the drop folder.
    if "/" in name:
        return "its name holds a '/', which no file name in a folder listing can: ask the server's owner"
    return None


def _too_long(settings: Settings, name: str) -> str | None:
    """A remote server may allow names the drop folder cannot hold while the file downloads."""
    try:
        name_max = os.pathconf(settings.drop_dir, "PC_NAME_MAX")
    except OSError:  # not there yet: Linux filesystems' usual limit
        name_max = 255
    longest = name_max - len(PART_PREFIX) - len(PART_SUFFIX)
    size = len(os.fsencode(name))
    if size <= longest:
        return None
    return (
        f"its name is {size} bytes, longer than the {longest} a pulled file's name may have (it is downloaded "
        f"as {PART_PREFIX}<name>{PART_SUFFIX}, and the drop folder takes {name_max}): ask the sender to shorten it"
    )


def part_name(name: str) -> str:
    """The hidden name a file is downloaded under (the registry skips dotfiles and ``.part``)."""
    return f"{PART_PREFIX}{name}{PART_SUFFIX}"


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
    cfg = s.cfg
    try:
        return [_entry(n) for n in await s.call(s.client.readdir(cfg.remote_dir))]
    except asyncssh.SFTPNoSuchFile:
        why = "does not exist"
    except asyncssh.SFTPPermissionDenied:
        why = f"may not be listed by {cfg.user!r}"
    except asyncssh.SFTPError as exc:
        why = f"could not be listed ({type(exc).__name__})"
    # The server answered: a poll_every_min later is soon enough to look again.
    raise TerminalError(
        f"{s.name}: the folder {cfg.remote_dir} on {cfg.host}:{cfg.port} {why}: check remote_dir and the folder "
        "on the server"
    )
