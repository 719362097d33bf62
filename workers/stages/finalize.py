"""Finalize: the run's status and counts, staging dropped, file states, and the next queued run
of the connection started."""

from __future__ import annotations

from typing import Any

import structlog

from schemas.messages import FinalizeRun
from schemas.states import RunStatus, TriggerType
from workers import failpoints, notify, store
from workers.connectors import kind_of
from workers.rows import read_run
from workers.runs import lifecycle, retention
from workers.runs.gate import drop_stage_tables
from workers.runs.stage import StageTx, run_stage
from workers.runs.start import start_next
from workers.stages import stage_actor

log = structlog.get_logger(__name__)


def decide_status(t: dict[str, Any], needs_files: bool = False) -> RunStatus:
    if t["files"] and t["files_rejected"] == t["files"]:
        return RunStatus.FAILED
    if needs_files and not t["files"]:
        return RunStatus.FAILED
    if t["rejected"] or t["warnings"] or t["files_rejected"]:
        return RunStatus.COMPLETED_WITH_ERRORS
    return RunStatus.COMPLETED


@stage_actor(FinalizeRun)
def finalize_run(msg: FinalizeRun) -> None:
    def body(tx: StageTx) -> None:
        conn = tx.conn
        failpoints.hit("finalize.start")
        run = read_run(conn, msg.run_id, lock="UPDATE")
        assert run is not None
        t = store.fetch_one(
            conn,
            """SELECT
                 (SELECT count(*) FROM sync.run_files WHERE run_id = %(r)s) AS files,
                 (SELECT count(*) FROM sync.run_files WHERE run_id = %(r)s AND status = 'rejected') AS files_rejected,
                 (SELECT coalesce(sum(rows_read), 0) FROM sync.run_files WHERE run_id = %(r)s) AS read,
                 (SELECT count(DISTINCT (file_id, line)) FROM sync.row_errors WHERE run_id = %(r)s AND rejected)
                   AS rejected,
                 (SELECT count(*) FROM sync.row_errors WHERE run_id = %(r)s AND NOT rejected AND code <> 'bad_file')
                   AS warnings,
                 (SELECT min(error) FROM sync.run_files WHERE run_id = %(r)s AND status = 'rejected') AS file_error""",
            {"r": msg.run_id},
        )
        assert t is not None
        # A content sync asked for (on demand, on schedule) with no feed at all is an error the admin
        # must see: the provider did not deliver.
        kind = kind_of(run.kind)
        empty_run_error = None if kind.EXPORT else kind.EMPTY_RUN
        needs_files = empty_run_error is not None and run.trigger in (TriggerType.SCHEDULED, TriggerType.ON_DEMAND)
        status = decide_status(t, needs_files)
        counts = {
            "read": int(t["read"]),
            "created": int(run.counts.get("created", 0)),
            "updated": int(run.counts.get("updated", 0)),
            "unchanged": int(run.counts.get("unchanged", 0)),
            "deactivated": int(run.counts.get("deactivated", 0)),
            "rejected": int(t["rejected"]),
            "warnings": int(t["warnings"]),
            "files": int(t["files"]),
            "files_rejected": int(t["files_rejected"]),
        }
        error = (t["file_error"] or empty_run_error) if status is RunStatus.FAILED else None
        note = "dry run: the plan shows what the run would do; nothing was written" if run.dry_run else None
        lifecycle.finish(conn, msg.run_id, status, counts, error, note)
        # A dry run imported nothing: its files wait for the real run. A previewed file was never
        # for a real run: it goes now (the sweep after the commit unlinks it).
        conn.execute(
            """UPDATE sync.feed_files f
               SET status = CASE WHEN f.preview THEN 'rejected' WHEN %(dry)s THEN 'registered'
                                 WHEN rf.status = 'rejected' THEN 'rejected' ELSE 'imported' END,
                   removed_at = CASE WHEN f.preview THEN clock_timestamp() ELSE f.removed_at END
               FROM sync.run_files rf WHERE rf.run_id = %(run)s AND f.id = rf.file_id""",
            {"run": msg.run_id, "dry": run.dry_run},
        )
        dropped = drop_stage_tables(conn, msg.run_id)
        tx.counts = {**counts, "staging_tables_dropped": dropped}
        log.info("run finished", status=status.value, **counts)
        tx.after_success.append(lambda t: start_next(t.conn, run.connection_id, t.outbox))
        # After the commit, never before: files whose retention is zero (user feeds) go now.
        tx.after_commit.append(lambda: retention.sweep(run_id=msg.run_id))
        tx.after_commit.append(lambda: notify.run_finished(msg.run_id))

    run_stage(msg, body)
