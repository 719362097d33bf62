"""Taking finished files from the drop dir: the one path every intake takes (watcher events,
rescans, ``feedsync sync``).

A dotfile or a name with a temporary suffix is left alone; a symbolic link, a name that is not
UTF-8 or has control characters, or anything leading outside the drop dir is refused. A file is
taken once it settled (``producers.settle``) and is opened once, without following links
(``producers.safefile``); ``producers.registration`` then decides whether it is a duplicate and
registers it, moving it into ``FEEDSYNC_STORE_DIR``. One file that cannot be taken never stops
the others (``take_guarded``).
"""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import psycopg
import structlog

from producers import deliveries, registration, safefile
from producers import settle as settle_rules
from schemas import pathpattern
from schemas.kinds import Connection, config_as, connection_from_json, file_kinds
from schemas.settings import Settings
from workers import store

log = structlog.get_logger(__name__)

TEMP_SUFFIXES = (".part", ".tmp", ".filepart", ".crdownload", ".partial", ".swp")


@dataclass(frozen=True)
class Taken:
    connection: str
    path: str
    file_id: int | None
    outcome: str  # registered | duplicate | refused | not_ready | waiting (for its marker) | unmatched


def is_candidate_name(rel: PurePosixPath) -> bool:
    return not any(part.startswith(".") for part in rel.parts) and not rel.name.lower().endswith(TEMP_SUFFIXES)


def live_connections(settings: Settings) -> list[dict[str, Any]]:
    """The connections that take files from the drop dir (exports and API sources take none)."""
    with store.connect() as conn:
        return store.fetch_all(
            conn,
            """SELECT id, name, kind, config, enabled FROM sync.connections
               WHERE deleted_at IS NULL AND kind = ANY(%s) AND coalesce(config ->> 'source', 'files') = 'files'
               ORDER BY name""",
            (file_kinds(),),
        )


def match_connections(rel: PurePosixPath, connections: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in connections if pathpattern.matches(c["config"]["path"], rel.as_posix())]


def files_open_for_writing() -> set[str] | None:
    """Real paths some process on this host holds open for writing (Linux /proc), or None where
    that cannot be known. Rescans use it so a stalled upload is never taken half-written."""
    proc = Path("/proc")
    if not (proc / "self" / "fdinfo").is_dir():
        return None
    found: set[str] = set()
    for fd_dir in proc.glob("[0-9]*/fd"):
        try:
            for fd in fd_dir.iterdir():
                target = os.readlink(fd)
                if not target.startswith("/"):
                    continue
                info = (fd_dir.parent / "fdinfo" / fd.name).read_text()
                flags = int(info.split("flags:", 1)[1].split()[0], 8)
                if flags & (os.O_WRONLY | os.O_RDWR):
                    found.add(target)
        except (OSError, IndexError, ValueError):
            continue  # a process that exited or that we may not inspect
    return found


def take(
    settings: Settings,
    path: Path,
    connections: list[dict[str, Any]],
    *,
    settle: bool = True,
    quiet_s: float = 0.0,
    announce: bool = True,
    writing: set[str] | None = None,
    reported: set[tuple[Any, ...]] | None = None,
) -> Taken | None:
    """Take one file if it is finished. ``reported`` (the watcher's) keeps a refusal to one log
    line per file instead of one per rescan."""
    drop = settings.drop_dir.resolve()
    rel = _relative(settings, path, drop)
    if rel is None or not is_candidate_name(rel):
        return None
    problem = safefile.name_problem(rel.as_posix())
    if problem is not None:
        return _refused(rel, problem, reported)
    if settle_rules.is_marker(path) and _marker_wanted(path, rel, connections):
        # A marker is not a feed: it lets its file be taken (a marker without a file is harmless).
        feed = settle_rules.feed_of(path)
        if not os.path.lexists(feed):
            return None
        return take(
            settings,
            feed,
            connections,
            settle=settle,
            quiet_s=quiet_s,
            announce=announce,
            writing=writing,
            reported=reported,
        )
    try:
        checked = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(checked.st_mode):
        return _refused(rel, "it is a symbolic link", reported, checked)
    if not stat.S_ISREG(checked.st_mode):
        return None
    if not path.resolve().is_relative_to(drop):
        return _refused(rel, "it resolves outside the drop dir", reported, checked)
    return _take_file(settings, path, rel, checked, connections, settle, quiet_s, announce, writing, reported)


def _relative(settings: Settings, path: Path, drop: Path) -> PurePosixPath | None:
    """The path inside the drop dir, as given or resolved; None (logged) for a path outside it."""
    try:
        return PurePosixPath(path.relative_to(settings.drop_dir).as_posix())
    except ValueError:
        try:
            return PurePosixPath(path.resolve().relative_to(drop).as_posix())
        except ValueError:
            log.warning("refused a path outside the drop dir", path=safefile.escaped(str(path)))
            return None


def _marker_wanted(marker: Path, rel: PurePosixPath, connections: list[dict[str, Any]]) -> bool:
    """Whether a connection the marker's feed file belongs to waits for such markers."""
    feed = settle_rules.feed_of(marker)
    return any(settle_rules.wants_marker(c["config"]) for c in match_connections(_rel(feed, rel), connections))


def _take_file(
    settings: Settings,
    path: Path,
    rel: PurePosixPath,
    checked: os.stat_result,
    connections: list[dict[str, Any]],
    settle: bool,
    quiet_s: float,
    announce: bool,
    writing: set[str] | None,
    reported: set[tuple[Any, ...]] | None,
) -> Taken | None:
    """A regular file inside the drop dir: its one connection, whether it is finished, then its registration."""
    matches = match_connections(rel, connections)
    if not matches:
        return Taken("", rel.as_posix(), None, "unmatched")
    if len(matches) > 1:
        log.error(
            "file matches more than one connection; narrow their paths",
            path=rel.as_posix(),
            connections=[c["name"] for c in matches],
        )
        return Taken("", rel.as_posix(), None, "refused")
    connection = matches[0]
    config = connection["config"]
    if settle_rules.wants_marker(config) and not settle_rules.marked_done(path, checked):
        return Taken(connection["name"], rel.as_posix(), None, "waiting")
    if writing is not None and str(path.resolve()) in writing:
        return Taken(connection["name"], rel.as_posix(), None, "not_ready")
    if settle:
        settled = settle_rules.settled(path, settle_rules.settle_seconds(settings, config), quiet_s)
        if settled is None:
            return Taken(connection["name"], rel.as_posix(), None, "not_ready")
        checked = settled
    return _register(settings, path, rel, checked, connection, connections, announce, reported)


def _register(
    settings: Settings,
    path: Path,
    rel: PurePosixPath,
    checked: os.stat_result,
    connection: dict[str, Any],
    connections: list[dict[str, Any]],
    announce: bool,
    reported: set[tuple[Any, ...]] | None,
) -> Taken | None:
    """Register a finished file with the rest of its delivery (if it is one), then clear its markers."""
    config = connection["config"]
    delivery = deliveries.of(path)
    try:
        together = [(path, checked)]
        if delivery is not None:
            found = deliveries.members(path, checked, delivery[1])
            if found is None or (
                settle_rules.wants_marker(config) and not all(settle_rules.marked_done(p, st) for p, st in found)
            ):
                return Taken(connection["name"], rel.as_posix(), None, "waiting")  # for the rest of its upload
            _same_connection(found, rel, connection, connections)
            together = found
        results = registration.register_together(
            settings, [(p, _rel(p, rel), st) for p, st in together], connection, announce
        )
    except FileNotFoundError:
        return None  # another watcher, scheduler or `sync` took it first
    except safefile.Refused as exc:
        return _refused(rel, str(exc), reported, checked)
    outcome, file_id = results[[p for p, _ in together].index(path)]
    if outcome in ("registered", "duplicate"):
        if delivery is not None:
            deliveries.done(delivery[0])
            deliveries.superseded(path.parent, delivery[1])
        for p, _ in together if settle_rules.wants_marker(config) else ():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(settle_rules.marker_of(p))  # its file is registered: the marker has done its job
    return Taken(connection["name"], rel.as_posix(), file_id, outcome)


def _same_connection(
    found: list[tuple[Path, os.stat_result]],
    rel: PurePosixPath,
    connection: dict[str, Any],
    connections: list[dict[str, Any]],
) -> None:
    """A manifest is a plain file anyone writing to the drop folder can write: each file it names
    must be one this connection would take on its own, or none of the delivery is taken."""
    for p, _ in found:
        other = _rel(p, rel)
        if not is_candidate_name(other) or [c["name"] for c in match_connections(other, connections)] != [
            connection["name"]
        ]:
            raise safefile.Refused(
                f"{safefile.escaped(p.name)}, a file of the same upload, is not one {connection['name']} takes; "
                "remove it from the upload's manifest (.feedsync-delivery-*.json) or the manifest itself"
            )


def _rel(path: Path, like: PurePosixPath) -> PurePosixPath:
    return like.with_name(path.name)


def _refused(
    rel: PurePosixPath, why: str, reported: set[tuple[Any, ...]] | None, st: os.stat_result | None = None
) -> Taken:
    key = (rel.as_posix(), why, st.st_ino if st else None, st.st_mtime_ns if st else None)
    if reported is None or key not in reported:
        if reported is not None:
            reported.add(key)
        log.warning(
            f"refused a file in the drop dir: {why}; it stays where it is until it is replaced or removed",
            path=safefile.escaped(rel.as_posix()),
        )
    return Taken("", safefile.escaped(rel.as_posix()), None, "refused")


def recover_orphans(settings: Settings) -> int:
    """Put back files moved into the store whose registration never committed."""
    root = settings.store_dir / "files"
    if not root.exists():
        return 0
    stored = [p for p in root.glob("*/*/*") if p.is_file()]
    if not stored:
        return 0
    with store.connect() as conn:
        known = {
            r["stored_path"]
            for r in store.fetch_all(
                conn,
                "SELECT stored_path FROM sync.feed_files WHERE stored_path = ANY(%s)",
                ([p.relative_to(settings.store_dir).as_posix() for p in stored],),
            )
        }
        by_name = {
            c["name"]: c
            for c in store.fetch_all(conn, "SELECT name, config FROM sync.connections WHERE deleted_at IS NULL")
        }
    moved = 0
    for p in stored:
        connection = by_name.get(p.parent.parent.name)
        if p.relative_to(settings.store_dir).as_posix() in known or connection is None:
            continue
        try:
            safefile.move_back(p, drop_target(settings, connection) / p.name)
            p.parent.rmdir()
        except OSError as exc:  # one file that cannot go back never stops the others
            log.error("could not put back an orphaned stored file", path=safefile.escaped(p.name), error=exc.strerror)
            continue
        moved += 1
        log.warning("put back a file whose registration did not commit", path=safefile.escaped(p.name))
    return moved


def scan(
    settings: Settings,
    *,
    only: str | None = None,
    quiet_s: float = 0.0,
    announce: bool = True,
    reported: set[tuple[Any, ...]] | None = None,
) -> list[Taken]:
    """Take every finished file under the drop dir (optionally only one connection's). One file
    that cannot be taken never stops the others.

    ``announce=False`` registers without feed_arrived: the caller's own run will claim the files."""
    recover_orphans(settings)
    connections = live_connections(settings)
    if only is not None:
        connections = [c for c in connections if c["name"] == only]
    if not connections or not settings.drop_dir.exists():
        return []
    taken = []
    writing = files_open_for_writing() if quiet_s else None
    for root, dirs, files in os.walk(settings.drop_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            result = take_guarded(
                settings,
                Path(root) / name,
                connections,
                quiet_s=quiet_s,
                announce=announce,
                writing=writing,
                reported=reported,
            )
            if result is not None and result.outcome != "unmatched":
                taken.append(result)
    return taken


def take_guarded(
    settings: Settings,
    path: Path,
    connections: list[dict[str, Any]],
    *,
    reported: set[tuple[Any, ...]] | None = None,
    **options: Any,
) -> Taken | None:
    """take(), with a failure about this one file logged once (name escaped, no traceback) and
    the file left for the next rescan. A database that cannot be reached is not about the file:
    it goes to the caller, which retries the whole rescan."""
    try:
        return take(settings, path, connections, reported=reported, **options)
    except psycopg.OperationalError:
        raise
    except Exception as exc:
        try:
            st: tuple[int, int] | None = (os.lstat(path).st_ino, os.lstat(path).st_mtime_ns)
        except OSError:
            st = None
        key = (os.fsencode(path), type(exc).__name__, st)
        if reported is None or key not in reported:
            if reported is not None:
                reported.add(key)
            log.error(
                "could not take a file; it stays in the drop dir and the other files go on",
                path=safefile.escaped(str(path.relative_to(settings.drop_dir)))
                if path.is_relative_to(settings.drop_dir)
                else safefile.escaped(path.name),
                error=type(exc).__name__,
                reason=exc.strerror if isinstance(exc, OSError) else None,
            )
        return Taken("", safefile.escaped(path.name), None, "failed")


def drop_target(settings: Settings, connection: dict[str, Any]) -> Path:
    """The folder of a connection's path pattern: where `feedsync upload` puts files."""
    parts = PurePosixPath(config_as(Connection, connection_from_json(connection["config"])).path).parts
    fixed = []
    for p in parts[:-1]:
        if any(ch in p for ch in "*?["):
            break
        fixed.append(p)
    return settings.drop_dir.joinpath(*fixed)
