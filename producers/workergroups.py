"""The worker groups `feedsync status` lists: each group's hosts, live processes and last heartbeat
(sync.worker_heartbeats, written by workers/hosts.py)."""

from __future__ import annotations

from typing import Any

from schemas.settings import Settings
from workers import store
from workers.hosts import LOST_AFTER_BEATS


def worker_groups(settings: Settings) -> list[dict[str, Any]]:
    """One row per group seen in the last day: ``alive`` (a process beat within three intervals),
    ``lost`` (its processes went silent without stopping: killed, or the host is gone) or ``stopped``."""
    silent = settings.heartbeat_interval_s * LOST_AFTER_BEATS
    with store.connect() as conn:
        rows = store.fetch_all(
            conn,
            """SELECT worker_group,
                      string_agg(DISTINCT host, ', ' ORDER BY host) AS hosts,
                      count(*) FILTER (WHERE stopped_at IS NULL
                                         AND last_heartbeat > clock_timestamp() - make_interval(secs => %(s)s))
                        AS live_processes,
                      count(*) FILTER (WHERE stopped_at IS NULL
                                         AND last_heartbeat <= clock_timestamp() - make_interval(secs => %(s)s))
                        AS silent_processes,
                      max(last_heartbeat) AS last_heartbeat,
                      round(extract(epoch FROM clock_timestamp() - max(last_heartbeat)))::int AS seconds_ago,
                      string_agg(DISTINCT store, ', ') AS store
               FROM sync.worker_heartbeats
               GROUP BY worker_group ORDER BY worker_group""",
            {"s": silent},
        )
    for r in rows:
        r["state"] = "alive" if r["live_processes"] else ("lost" if r["silent_processes"] else "stopped")
        r["last_heartbeat"] = r["last_heartbeat"].isoformat()
    return rows
