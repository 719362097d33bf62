"""When each SFTP connection is pulled (``feedsync sftp pull``, which ``feedsync up`` starts): a
connection is due every ``poll_every_min``, sooner after a failure (with the backoff), one puller
at a time per connection, each on a thread of its own, with at most ``max_files_per_poll``
downloads per round; each poll's outcome is recorded in ``sync.sftp_polls``. What one poll
does is ``sftp_pull.poll``."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

import structlog

from producers import registry
from producers.sftp_pull import PollResult, poll, sftp_config
from schemas.settings import Settings
from workers import store
from workers.errors import TerminalError, TransientError, safe_text, safe_traceback

log = structlog.get_logger(__name__)

#: How often the pull loop looks for connections that are due.
TICK_S = 5.0
#: Connections polled at once by one pull loop, each on a thread of its own.
PULLERS = 4
#: Pullers of one connection (on any host) poll one at a time.
_POLL_LOCK = 7310  # apart from 7300..7303 (migrations, intake and run bookkeeping, suspects, run gates)


def last_poll(connection: dict[str, Any]) -> dict[str, Any] | None:
    with store.connect() as conn:
        return store.fetch_one(
            conn,
            """SELECT polled_at AT TIME ZONE 'UTC' AS polled_at, ok, error FROM sync.sftp_polls
               WHERE connection_id = %s""",
            (connection["id"],),
        )


def pulling_connections(settings: Settings) -> list[dict[str, Any]]:
    return [c for c in registry.live_connections(settings) if c["enabled"] and c["config"].get("sftp")]


def _due(connection: dict[str, Any], settings: Settings) -> bool:
    cfg = sftp_config(connection)
    assert cfg is not None
    with store.connect() as conn:
        last = store.fetch_one(
            conn,
            "SELECT ok, failures, now() - polled_at AS ago FROM sync.sftp_polls WHERE connection_id = %s",
            (connection["id"],),
        )
    if last is None:
        return True
    wait_s = cfg.poll_every_min * 60
    if not last["ok"] and last["failures"]:
        backoff_ms = settings.min_backoff_ms * 2 ** min(last["failures"] - 1, 30)
        wait_s = min(wait_s, min(backoff_ms, settings.max_backoff_ms) / 1000)
    return bool(last["ago"].total_seconds() >= wait_s)


def _record_poll(connection_id: int, error: str | None, transient: bool) -> None:
    with store.connect() as conn:
        conn.execute(
            """INSERT INTO sync.sftp_polls (connection_id, polled_at, ok, error, failures)
               VALUES (%(c)s, now(), %(ok)s, %(e)s, %(f)s)
               ON CONFLICT (connection_id) DO UPDATE SET polled_at = now(), ok = %(ok)s, error = %(e)s,
                 failures = CASE WHEN %(f)s = 0 THEN 0 ELSE sync.sftp_polls.failures + 1 END""",
            {"c": connection_id, "ok": error is None, "e": error, "f": 1 if transient else 0},
        )


def poll_guarded(settings: Settings, connection: dict[str, Any]) -> PollResult | None:
    """poll(), one puller at a time per connection, its outcome recorded; never raises for the
    server's sake (the loop goes on with the other connections)."""
    with store.connect(autocommit=True) as lock:
        got = store.fetch_one(lock, "SELECT pg_try_advisory_lock(%s, %s) AS ok", (_POLL_LOCK, connection["id"]))
        if not (got and got["ok"]):
            return None  # another puller is polling this connection
        try:
            return _poll_recorded(settings, connection)
        finally:
            # A pooled connection outlives this block: the session lock must be let go explicitly.
            lock.execute("SELECT pg_advisory_unlock(%s, %s)", (_POLL_LOCK, connection["id"]))


def poll_now(settings: Settings, connection: dict[str, Any]) -> PollResult:
    """An on-demand poll (``feedsync sync CONN``, the console's run now), before the run: as a
    scheduled poll (``min_file_age_s`` and the rest honoured, its outcome recorded), after any poll
    of the connection under way, but its failure raised for the admin to see."""
    with store.connect(autocommit=True) as lock:
        lock.execute("SELECT pg_advisory_lock(%s, %s)", (_POLL_LOCK, connection["id"]))
        try:
            try:
                # A scheduled poll takes a file once two listings, a poll apart, show it unchanged; run
                # now lists twice in a row instead: a file at least min_file_age_s old whose size and
                # mtime held between the two is taken now, one still growing is left for later.
                first = poll(settings, connection)
                result = poll(settings, connection)
                result.taken = first.taken + result.taken
                result.handled = first.handled + result.handled
            except (TransientError, TerminalError) as exc:
                _record_poll(connection["id"], safe_text(exc), transient=isinstance(exc, TransientError))
                raise
            _record_poll(connection["id"], None, transient=False)
            return result
        finally:
            lock.execute("SELECT pg_advisory_unlock(%s, %s)", (_POLL_LOCK, connection["id"]))


def _poll_recorded(settings: Settings, connection: dict[str, Any]) -> PollResult | None:
    try:
        result = poll(settings, connection)
    except TransientError as exc:
        # Our own sentences (workers.files.sftp), which never carry a secret or a file's content.
        log.warning("SFTP poll failed; retrying with backoff", connection=connection["name"], error=str(exc))
        _record_poll(connection["id"], str(exc), transient=True)
        return None
    except TerminalError as exc:
        log.error(safe_text(exc), connection=connection["name"])
        _record_poll(connection["id"], safe_text(exc), transient=False)
        return None
    except Exception as exc:
        # A failure nobody foresaw is still a failed poll: recorded (`feedsync sftp check` shows it)
        # and retried with the backoff, never left looking like the last good poll.
        error = f"{connection['name']}: the poll failed ({safe_text(exc)}); retrying with the backoff"
        log.error(error, connection=connection["name"], traceback=safe_traceback(exc))
        _record_poll(connection["id"], error, transient=True)
        return None
    _record_poll(connection["id"], None, transient=False)
    if result.taken or result.handled:
        log.info("SFTP poll", connection=connection["name"], pulled=len(result.taken), handled=len(result.handled))
    return result


class Puller:
    """The rounds of the pull loop. Each due connection is polled on a thread of its own (up to
    ``PULLERS`` at once), so a slow server never holds the others; a connection whose poll left
    files over ``max_files_per_poll`` is due again at the next round."""

    def __init__(self, settings: Settings, workers: int = PULLERS) -> None:
        self.settings = settings
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sftp-pull")
        self._running: dict[int, Future[None]] = {}
        self._more: set[int] = set()  # only the pool's threads add and the round's thread reads: a set op is atomic

    def round(self) -> list[Future[None]]:
        """Start a poll of every due connection not being polled already; the polls started."""
        started = []
        self._running = {cid: f for cid, f in self._running.items() if not f.done()}
        for connection in pulling_connections(self.settings):
            cid = connection["id"]
            if cid in self._running:
                continue
            try:
                due = cid in self._more or _due(connection, self.settings)
            except Exception as exc:  # one connection's bad state never stops the others' pulls
                log.error("SFTP poll crashed", connection=connection["name"], error=safe_text(exc))
                continue
            if due:
                self._more.discard(cid)
                self._running[cid] = self._pool.submit(self._poll, connection)
                started.append(self._running[cid])
        return started

    def round_and_wait(self) -> None:
        wait(self.round())

    def _poll(self, connection: dict[str, Any]) -> None:
        try:
            result = poll_guarded(self.settings, connection)
        except Exception as exc:
            log.error("SFTP poll crashed", connection=connection["name"], error=safe_text(exc))
            return
        if result is not None and result.more:
            self._more.add(connection["id"])

    def close(self) -> None:
        """Let the polls under way finish (each is bounded by its batch and its timeouts)."""
        self._pool.shutdown(wait=True)


def run(settings: Settings, stopping: threading.Event) -> None:
    """``feedsync sftp pull``: poll every SFTP connection when it is due, until stopped."""
    log.info("SFTP pull started")
    puller = Puller(settings)
    try:
        while not stopping.is_set():
            try:
                puller.round()
            except Exception as exc:
                log.warning("could not read the connections; retrying", error=safe_text(exc))
            stopping.wait(TICK_S)
    finally:
        puller.close()
