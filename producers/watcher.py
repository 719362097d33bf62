"""``feedsync watch``: notices finished files in the drop dir with watchdog.

A file renamed into place is taken at once: the writer has said it is complete. A file closed after
writing in place is taken once it has gone its connection's settle window (``settle_seconds``,
default FEEDSYNC_SETTLE_MS) without a write (it may be written again), and
for a connection with ``done_marker`` once its ``<name>.done`` marker exists. A full rescan runs
at start (files that arrived while the watcher was down) and every FEEDSYNC_RESCAN_INTERVAL_S
(events can be lost, e.g. on network filesystems); rescans only take files untouched for a few
seconds, so a file still being written waits for its close event. Events are handled one at a
time on one thread, so two events for the same file cannot race.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import structlog
from watchdog.events import FileClosedEvent, FileMovedEvent, FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from producers import registry
from schemas.settings import Settings

log = structlog.get_logger(__name__)

RESCAN_QUIET_S = 3.0


@dataclass(frozen=True)
class Arrival:
    path: Path
    # Renamed into place: the writer says the file is complete, so no settle window is waited
    # (a file closed after writing in place may still be written again, and waits it).
    renamed: bool


class _Handler(FileSystemEventHandler):
    def __init__(self, inbox: queue.Queue[Arrival | None]) -> None:
        self.inbox = inbox

    def on_closed(self, event: FileSystemEvent) -> None:
        if isinstance(event, FileClosedEvent) and not event.is_directory:
            self.inbox.put(Arrival(Path(str(event.src_path)), renamed=False))

    def on_moved(self, event: FileSystemEvent) -> None:
        if isinstance(event, FileMovedEvent) and not event.is_directory:
            self.inbox.put(Arrival(Path(str(event.dest_path)), renamed=True))


class Watcher:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.inbox: queue.Queue[Arrival | None] = queue.Queue()
        self.stopping = threading.Event()
        self.ready = threading.Event()  # set once events are being watched and the first rescan ran
        # Files refused or failing, already logged: one line per bad file, not one per rescan.
        self.reported: set[tuple[object, ...]] = set()

    def run(self) -> None:
        drop = self.settings.drop_dir
        drop.mkdir(parents=True, exist_ok=True)
        # Create each connection's folder before watching, so a file written into a folder that
        # appears later cannot race the watch being added to it.
        for connection in registry.live_connections(self.settings):
            try:
                registry.drop_target(self.settings, connection).mkdir(parents=True, exist_ok=True)
            except OSError as exc:  # one connection's folder never stops the watcher for the others
                log.error(
                    "could not create a connection's drop folder", connection=connection["name"], error=exc.strerror
                )
        observer = Observer()
        observer.schedule(_Handler(self.inbox), str(drop), recursive=True)
        observer.start()
        log.info("watching the drop dir", drop_dir=str(drop))
        try:
            next_rescan = self._rescan(quiet_s=RESCAN_QUIET_S)
            self.ready.set()
            while not self.stopping.is_set():
                timeout = max(0.0, next_rescan - time.monotonic())
                try:
                    arrival = self.inbox.get(timeout=timeout)
                except queue.Empty:
                    arrival = None
                if arrival is not None:
                    self._take(arrival)
                if time.monotonic() >= next_rescan:
                    next_rescan = self._rescan(quiet_s=RESCAN_QUIET_S)
        finally:
            observer.stop()
            observer.join(timeout=5)

    def stop(self) -> None:
        self.stopping.set()
        self.inbox.put(None)

    def _take(self, arrival: Arrival) -> None:
        try:
            connections = registry.live_connections(self.settings)
            result = registry.take_guarded(
                self.settings, arrival.path, connections, reported=self.reported, settle=not arrival.renamed
            )
            if result is not None and result.outcome == "not_ready":
                log.info("file still changing; the next rescan takes it once it settles", path=result.path)
        except Exception:
            # A database blip must not stop the watcher; the rescan retries the file.
            log.exception("could not take file; it stays in the drop dir for the next rescan")

    def _rescan(self, quiet_s: float) -> float:
        """Take what is finished; returns when to rescan next: soon while a file is still settling."""
        soon = time.monotonic() + 1.0
        try:
            taken = registry.scan(self.settings, quiet_s=quiet_s, reported=self.reported)
        except Exception:
            log.exception("rescan failed; trying again shortly")
            return soon
        if any(t.outcome != "not_ready" for t in taken):
            log.info(
                "rescan",
                registered=sum(t.outcome == "registered" for t in taken),
                duplicates=sum(t.outcome == "duplicate" for t in taken),
            )
        if any(t.outcome == "not_ready" for t in taken):
            return soon
        return time.monotonic() + self.settings.rescan_interval_s
