"""When a dropped file is finished: unchanged for its connection's settle window since its last
write, and, for a connection with ``done_marker``, announced by a marker file ``<name>.done``.

An HR system that closes a file and writes to it again (``head … > f; sleep 1; tail … >> f``)
gives two close events; the window counts from the last write, so the first close is not taken
while the second write is still to come within the window.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from schemas.connections import DONE_SUFFIX
from schemas.settings import Settings

#: The longest a take waits in place for a file to settle; past it the file is "not ready" and
#: the watcher's next rescan (within a second while something is settling) looks again.
MAX_BLOCKING_WAIT_S = 5.0


def settle_seconds(settings: Settings, config: dict[str, Any]) -> float:
    value = config.get("settle_seconds")
    return float(value) if value is not None else settings.settle_ms / 1000


def wants_marker(config: dict[str, Any]) -> bool:
    return bool(config.get("done_marker"))


def marker_of(path: Path) -> Path:
    return path.with_name(path.name + DONE_SUFFIX)


def is_marker(path: Path) -> bool:
    return path.name.endswith(DONE_SUFFIX) and len(path.name) > len(DONE_SUFFIX)


def feed_of(marker: Path) -> Path:
    return marker.with_name(marker.name[: -len(DONE_SUFFIX)])


def marked_done(path: Path, st: os.stat_result) -> bool:
    """The marker exists and was written after the file's last write (a stale marker left from
    an earlier file does not let a new one be taken half-written)."""
    try:
        marker = os.lstat(marker_of(path))
    except FileNotFoundError:
        return False
    return marker.st_mtime_ns >= st.st_mtime_ns


def settled(path: Path, window_s: float, quiet_s: float = 0.0) -> os.stat_result | None:
    """The file's lstat() once it has gone ``window_s`` without a write, or None if it changed.

    Waits (at most the window) until its last write is ``window_s`` old, then checks that size,
    mtime and inode held. ``quiet_s`` (rescans, which had no close event) does not wait: a file
    written in the last ``quiet_s`` seconds is simply not ready yet."""
    try:
        first = os.lstat(path)
        age = time.time() - first.st_mtime
        if quiet_s and age < max(quiet_s, window_s):
            return None
        # A clock ahead of ours (a network filesystem) waits the whole window, never longer.
        wait = min(window_s, max(0.0, window_s - age)) if age >= 0 else window_s
        if wait > MAX_BLOCKING_WAIT_S:
            return None  # a long window is left to the rescans: one file never holds the watcher
        if wait:
            time.sleep(wait)
        after = os.lstat(path)
    except FileNotFoundError:
        return None
    keys = ("st_ino", "st_size", "st_mtime_ns")
    if any(getattr(first, k) != getattr(after, k) for k in keys):
        return None
    return after
