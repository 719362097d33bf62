"""Taking finished files from the drop dir: the one path every intake takes (watcher events,
rescans, ``feedsync sync``).

A candidate is refused if it is a dotfile, has a temporary suffix, is a symbolic link or resolves
outside the drop dir. A taken file is hashed, registered once per connection by SHA-256 together
with its feed_arrived message (outbox, same transaction), moved by atomic rename into
``.feedsync/files/`` and only then published. The same bytes dropped again are recorded as a
duplicate and moved aside, never imported twice.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import structlog

from schemas.connections import connection_from_json
from schemas.messages import FeedArrived
from schemas.settings import Settings
from workers import store
from workers.outbox import OutboxBatch

log = structlog.get_logger(__name__)

TEMP_SUFFIXES = (".part", ".tmp", ".filepart", ".crdownload", ".partial", ".swp")
_DATE_IN_NAME = re.compile(r"(?<!\d)(\d{4})[-_]?(\d{2})[-_]?(\d{2})(?!\d)")


@dataclass(frozen=True)
class Taken:
    connection: str
    path: str
    file_id: int | None
    outcome: str  # registered | duplicate | refused | not_ready | unmatched


def file_date(name: str) -> date | None:
    m = _DATE_IN_NAME.search(name)
    if not m:
        return None
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def is_candidate_name(rel: PurePosixPath) -> bool:
    return not any(part.startswith(".") for part in rel.parts) and not rel.name.lower().endswith(TEMP_SUFFIXES)


def live_connections(settings: Settings) -> list[dict[str, Any]]:
    with store.connect() as conn:
        return store.fetch_all(
            conn,
            "SELECT id, name, kind, config, enabled FROM sync.connections WHERE deleted_at IS NULL ORDER BY name",
        )


def match_connections(rel: PurePosixPath, connections: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in connections if fnmatch.fnmatchcase(rel.as_posix(), c["config"]["path"])]


def settled(path: Path, settle_ms: int, quiet_s: float = 0.0) -> bool:
    """True when the file keeps its size and mtime for settle_ms (and, for rescans that had no
    close event, was not modified in the last quiet_s seconds)."""
    try:
        before = path.stat()
        if quiet_s and time.time() - before.st_mtime < quiet_s:
            return False
        if settle_ms:
            time.sleep(settle_ms / 1000)
        after = path.stat()
    except FileNotFoundError:
        return False
    return (before.st_size, before.st_mtime_ns) == (after.st_size, after.st_mtime_ns)


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


def sha256_of(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size


def take(
    settings: Settings,
    path: Path,
    connections: list[dict[str, Any]],
    *,
    settle: bool = True,
    quiet_s: float = 0.0,
    announce: bool = True,
    writing: set[str] | None = None,
) -> Taken | None:
    drop = settings.drop_dir.resolve()
    try:
        rel = PurePosixPath(path.relative_to(settings.drop_dir).as_posix())
    except ValueError:
        try:
            rel = PurePosixPath(path.resolve().relative_to(drop).as_posix())
        except ValueError:
            log.warning("refused a path outside the drop dir", path=str(path))
            return None
    if not is_candidate_name(rel):
        return None
    if path.is_symlink():
        log.warning("refused a symbolic link in the drop dir", path=rel.as_posix())
        return Taken("", rel.as_posix(), None, "refused")
    if not path.is_file():
        return None
    if not path.resolve().is_relative_to(drop):
        log.warning("refused a file that resolves outside the drop dir", path=rel.as_posix())
        return Taken("", rel.as_posix(), None, "refused")
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
    if writing is not None and str(path.resolve()) in writing:
        return Taken(connection["name"], rel.as_posix(), None, "not_ready")
    if settle and not settled(path, settings.settle_ms, quiet_s):
        return Taken(connection["name"], rel.as_posix(), None, "not_ready")
    try:
        return _register(settings, path, rel, connection, announce)
    except FileNotFoundError:
        return None  # another watcher, scheduler or `sync` took it first


def _register(settings: Settings, path: Path, rel: PurePosixPath, connection: dict[str, Any], announce: bool) -> Taken:
    digest, size = sha256_of(path)
    # Flat, one folder per connection: the store sits inside the watched tree, and every folder
    # there costs an inotify watch.
    stored_rel = PurePosixPath(".feedsync", "files", connection["name"], f"{digest[:24]}__{rel.name}")
    stored = settings.drop_dir / stored_rel
    outbox = OutboxBatch()
    with store.connect() as conn:
        row = store.fetch_one(
            conn,
            """INSERT INTO sync.feed_files (connection_id, original_path, stored_path, sha256, size_bytes, file_date)
               VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (connection_id, sha256) DO NOTHING RETURNING id""",
            (connection["id"], rel.as_posix(), stored_rel.as_posix(), digest, size, file_date(rel.name)),
        )
        if row is None:
            existing = store.fetch_one(
                conn,
                "SELECT id, stored_path, status FROM sync.feed_files WHERE connection_id = %s AND sha256 = %s",
                (connection["id"], digest),
            )
            assert existing is not None
            target = settings.drop_dir / existing["stored_path"]
            if existing["status"] == "registered" and not target.exists():
                # Registered by an intake that stopped before its move: finish that move.
                _move(path, target)
                return Taken(connection["name"], rel.as_posix(), existing["id"], "registered")
            conn.execute(
                "INSERT INTO sync.file_drops (connection_id, file_id, path, duplicate) VALUES (%s, %s, %s, true)",
                (connection["id"], existing["id"], rel.as_posix()),
            )
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
            _move(path, settings.state_dir / "duplicates" / connection["name"] / f"{stamp}-{rel.name}")
            log.info(
                "duplicate file: same bytes as an earlier drop; not imported again",
                connection=connection["name"],
                path=rel.as_posix(),
                file_id=existing["id"],
            )
            return Taken(connection["name"], rel.as_posix(), existing["id"], "duplicate")
        file_id = int(row["id"])
        conn.execute(
            "INSERT INTO sync.file_drops (connection_id, file_id, path, duplicate) VALUES (%s, %s, %s, false)",
            (connection["id"], file_id, rel.as_posix()),
        )
        if announce:
            outbox.add(
                conn,
                FeedArrived(
                    connection=connection["name"],
                    file_id=file_id,
                    path=rel.as_posix(),
                    sha256=digest,
                    size=size,
                    detected_at=datetime.now(UTC),
                ),
                f"arrived:{file_id}",
            )
        # Moved inside the transaction: if the commit fails the file goes back, and a process killed
        # between move and commit leaves an orphan that recover_orphans() puts back on the next scan.
        _move(path, stored)
        try:
            conn.commit()
        except Exception:
            _move(stored, path)
            raise
    outbox.flush()
    log.info("file registered", connection=connection["name"], path=rel.as_posix(), file_id=file_id, size=size)
    return Taken(connection["name"], rel.as_posix(), file_id, "registered")


def _move(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dst)


def recover_orphans(settings: Settings) -> int:
    """Put back files moved into the store whose registration never committed."""
    root = settings.state_dir / "files"
    if not root.exists():
        return 0
    stored = [p for p in root.glob("*/*") if p.is_file()]
    if not stored:
        return 0
    with store.connect() as conn:
        known = {
            r["stored_path"]
            for r in store.fetch_all(
                conn,
                "SELECT stored_path FROM sync.feed_files WHERE stored_path = ANY(%s)",
                ([p.relative_to(settings.drop_dir).as_posix() for p in stored],),
            )
        }
        by_name = {
            c["name"]: c
            for c in store.fetch_all(conn, "SELECT name, config FROM sync.connections WHERE deleted_at IS NULL")
        }
    moved = 0
    for p in stored:
        connection = by_name.get(p.parent.name)
        if p.relative_to(settings.drop_dir).as_posix() in known or connection is None:
            continue
        _move(p, drop_target(settings, connection) / p.name.split("__", 1)[-1])
        moved += 1
        log.warning("put back a file whose registration did not commit", path=p.name)
    return moved


def scan(settings: Settings, *, only: str | None = None, quiet_s: float = 0.0, announce: bool = True) -> list[Taken]:
    """Take every finished file under the drop dir (optionally only one connection's).

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
            result = take(settings, Path(root) / name, connections, quiet_s=quiet_s, announce=announce, writing=writing)
            if result is not None and result.outcome != "unmatched":
                taken.append(result)
    return taken


def drop_target(settings: Settings, connection: dict[str, Any]) -> Path:
    """The folder of a connection's path pattern: where `feedsync upload` puts files."""
    parts = PurePosixPath(connection_from_json(connection["config"]).path).parts
    fixed = []
    for p in parts[:-1]:
        if any(ch in p for ch in "*?["):
            break
        fixed.append(p)
    return settings.drop_dir.joinpath(*fixed)
