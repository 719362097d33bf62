"""Export: an export run's one stage. Fix the window, stream the rows into the file, record it.

1. The window is fixed and committed first (``sync.exports``), so a redelivered export writes the
   same window to the same file. It runs by change time, half-open ``[start, end)``:
   - ``--since DAY``: from that day, 00:00 UTC;
   - a rerun: the window and file of the run it reruns (the file is rewritten);
   - otherwise (scheduled, or on demand without ``--since``): from the end of the connection's last
     delivered export, so a missed slot leaves no gap and nothing is exported twice; the first
     scheduled export starts at the schedule's start.
   The end is now, or the start of the oldest transaction still open, if earlier: a row changed by
   a transaction that has not committed yet would be invisible now and before the next window's
   start, and so never exported.
2. ``COPY (SELECT …) TO STDOUT (FORMAT csv)`` streams the rows, block by block, into the destination
   (``<name>.part``, fsync, rename); memory is one block, whatever the export's size.
3. Rows, bytes and SHA-256 are recorded with the stage's success; finalize ends the run.

A file that cannot be written (disk full, folder not writable) fails the run with one sentence, and
nothing is left under the final name.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, time
from typing import Any

import psycopg
import structlog
from psycopg import sql

from schemas.exports import ExportConnection
from schemas.kinds import config_as
from schemas.messages import ExportRun
from schemas.settings import Settings, get_settings
from schemas.states import RunStatus, TriggerType
from workers import extras, store
from workers.connectors import export_kind
from workers.connectors.exporting import Window, profile_attributes
from workers.errors import TerminalError, TransientError
from workers.files.cells import csv_cell
from workers.files.destinations import Destination, Folder, StoredFirst
from workers.files.objects import file_store
from workers.rows import RunRow, read_run
from workers.runs import record, route
from workers.runs.stage import StageTx, run_stage
from workers.stages import stage_actor
from workers.stages.export_workday import send as send_skills

log = structlog.get_logger(__name__)

#: Open transactions of other sessions in this database, oldest first.
_OPEN_SINCE = """
    SELECT min(xact_start) AS oldest FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
      AND xact_start IS NOT NULL AND xact_start < %s
"""


@stage_actor(ExportRun)
def export_run(msg: ExportRun) -> None:
    if not fix_window(msg.run_id):
        return

    def body(tx: StageTx) -> None:
        export = store.fetch_one(tx.conn, "SELECT * FROM sync.exports WHERE run_id = %s", (msg.run_id,))
        run = read_run(tx.conn, msg.run_id)
        assert export is not None and run is not None
        window = Window(export["window_from"], export["window_to"])
        # A transaction that began before the end but was not yet listed when the window was fixed.
        late = store.fetch_one(tx.conn, _OPEN_SINCE, (window.end,))
        if late is not None and late["oldest"] is not None:
            raise TransientError("a transaction that began before the export window's end is still open")
        rows, written = write_file(tx.conn, run, export["file_name"], window)
        cfg = config_as(ExportConnection, run.config)
        sent = {}
        if cfg.workday is not None:  # the skills also go to the workers' profiles in Workday
            sent = {
                f"workday_{k}": v for k, v in send_skills(tx.conn, run, cfg.workday, window, get_settings()).items()
            }
        tx.conn.execute(
            """UPDATE sync.exports SET file_name = %s, rows = %s, bytes = %s, sha256 = %s,
                      written_at = clock_timestamp() WHERE run_id = %s""",
            (written.name, rows, written.bytes, written.sha256, msg.run_id),
        )
        record.add_counts(tx.conn, msg.run_id, {"rows": rows, **sent})
        tx.counts = {"rows": rows, "bytes": written.bytes, **sent}
        log.info("export written", file=written.name, rows=rows, bytes=written.bytes)
        route.send(tx.conn, tx.outbox, "export", "finalize", msg.run_id)

    run_stage(msg, body)


BLOCK_BYTES = 1 << 20  # what one export holds in memory, whatever its size


def write_file(conn: psycopg.Connection[Any], run: RunRow, name: str, window: Window) -> tuple[int, Any]:
    """Stream the export of ``window`` into its destination; returns (rows, Written)."""
    cfg = config_as(ExportConnection, run.config)
    kind = export_kind(run.kind)
    profile = profile_attributes(conn)
    destination = destination_for(get_settings(), cfg)
    files = file_store(get_settings())
    if files.remote:  # workers on several hosts: the store keeps the export, whichever host wrote it
        destination = StoredFirst(destination, files, f"exports/{run.connection_name}/run-{run.id}/{name}")
    copy_sql = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(kind.query(cfg, profile, window))
    try:
        with destination.write(name) as (sink, written), conn.cursor() as cur:
            crlf = cfg.line_ends == "crlf"
            sink.write(header_line(kind.header(cfg, profile), escape=cfg.escape_formulas, crlf=crlf))
            with cur.copy(copy_sql) as copy:
                # libpq hands COPY over a row at a time: gather rows into blocks of BLOCK_BYTES so
                # the file write and the hash run once per block, not once per row.
                block = bytearray()
                for row in copy:
                    block += row
                    if crlf:  # one row at a time (libpq's COPY): its end, never a line break in a cell
                        block[-1:] = b"\r\n"
                    if len(block) >= BLOCK_BYTES:
                        sink.write(block)
                        block.clear()
                if block:
                    sink.write(block)
            rows = cur.rowcount
    except OSError as exc:
        sentence = (
            f"the export file {name} could not be written to {destination.describe()} "
            f"({exc.strerror or type(exc).__name__}): free space on the disk or make the folder writable, "
            f"then `feedsync rerun {run.connection_name}`"
        )
        record_not_written(run.id, name, sentence)
        raise TerminalError(sentence) from exc
    return rows, written


def destination_for(settings: Settings, cfg: ExportConnection) -> Destination:
    """Where an export's file goes: the connection's SFTP server, or the export folder."""
    if cfg.sftp is not None:
        # asyncssh (the [sftp] extra) is loaded by the worker that first pushes over SFTP, not by all.
        with extras.needs("sftp", f"{cfg.name}: pushing the export to {cfg.sftp.describe()}"):
            from workers.files.sftp_destination import SftpDestination
        return SftpDestination(settings, cfg.sftp, cfg.name, zipped=cfg.zip)
    return Folder(settings.export_dir, cfg.location, zipped=cfg.zip)


def header_line(columns: list[str], *, escape: bool = True, crlf: bool = False) -> bytes:
    """The header as PostgreSQL's CSV writes a row: quoted only where needed, LF (or CR LF) at the end.
    Profile attribute names come from feeds, so they pass the formula rule as the rows' cells do."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n" if crlf else "\n").writerow(
        [csv_cell(c) for c in columns] if escape else columns
    )
    return out.getvalue().encode("utf-8")


def record_not_written(run_id: int, name: str, sentence: str) -> None:
    """``feedsync errors`` lists what could not be written (committed apart: the stage rolls back)."""
    with store.connect() as conn:
        conn.execute(
            """INSERT INTO sync.row_errors (run_id, file_name, code, message, rejected)
               VALUES (%s, %s, 'export_not_written', %s, true)""",
            (run_id, name, sentence),
        )


def fix_window(run_id: int) -> bool:
    """Fix and commit the run's window and file name once. False: the run is not going any more."""
    with store.connect() as conn:
        run = read_run(conn, run_id, lock="NO KEY UPDATE")
        if run is None or run.status is not RunStatus.IN_PROGRESS:
            return False
        if store.fetch_one(conn, "SELECT 1 FROM sync.exports WHERE run_id = %s", (run_id,)) is not None:
            return True
        destination = destination_for(get_settings(), config_as(ExportConnection, run.config)).describe()
        prior = None
        if run.trigger is TriggerType.RERUN:
            prior = store.fetch_one(
                conn, "SELECT window_from, window_to, file_name FROM sync.exports WHERE run_id = %s", (run.rerun_of,)
            )
        if prior is not None:  # a rerun rewrites the same file with the same window
            start, end, name = prior["window_from"], prior["window_to"], prior["file_name"]
        else:
            start, end = _window(conn, run)
            name = _file_name(conn, export_kind(run.kind).FILE_PREFIX, start, end, destination)
        conn.execute(
            """INSERT INTO sync.exports (run_id, connection_id, kind, window_from, window_to, file_name, destination)
               VALUES (%s, %s, %s, %s, %s, %s, %s)""",
            (run_id, run.connection_id, run.kind, start, end, name, destination),
        )
        record.note(
            conn, run_id, f"window {start:%Y-%m-%d %H:%M:%S}Z to {end:%Y-%m-%d %H:%M:%S}Z, file {name}", keep=True
        )
    return True


def _window(conn: psycopg.Connection[Any], run: RunRow) -> tuple[datetime, datetime]:
    now = store.fetch_one(conn, "SELECT clock_timestamp() AS t")
    assert now is not None
    oldest = store.fetch_one(conn, _OPEN_SINCE, (now["t"],))
    end: datetime = min(now["t"], oldest["oldest"]) if oldest and oldest["oldest"] else now["t"]
    if run.since is not None:
        start = datetime.combine(run.since, time(), UTC)
    else:
        last = store.fetch_one(
            conn,
            """SELECT max(e.window_to) AS t FROM sync.exports e JOIN sync.runs r ON r.id = e.run_id
               WHERE r.connection_name = %s AND r.kind = %s AND e.written_at IS NOT NULL
                 AND r.status IN ('completed', 'completed_with_errors')""",
            (run.connection_name, run.kind),
        )
        schedule = store.fetch_one(
            conn, "SELECT start_at FROM sync.schedules WHERE connection_id = %s", (run.connection_id,)
        )
        begin: datetime | None = last["t"] if last and last["t"] else (schedule["start_at"] if schedule else None)
        if begin is None:
            raise TerminalError(
                f"{run.connection_name} has no earlier export to continue from: sync it with --since YYYY-MM-DD"
            )
        start = begin
    if start > end:
        raise TerminalError(
            f"the export window would start {start:%Y-%m-%d %H:%M}Z, after its end {end:%Y-%m-%d %H:%M}Z: "
            "give a --since day that is not in the future"
        )
    return start, end


def _file_name(conn: psycopg.Connection[Any], prefix: str, start: datetime, end: datetime, destination: str) -> str:
    """``<prefix>_<from>_to_<to>.csv``, UTC dates; a second window with the same dates in the same
    folder (two exports in one day) gets ``_2``, ``_3``… rather than overwriting the first file."""
    base = f"{prefix}_{start.astimezone(UTC):%Y-%m-%d}_to_{end.astimezone(UTC):%Y-%m-%d}"
    taken = {
        r["file_name"].removesuffix(".zip").removesuffix(".csv")
        for r in store.fetch_all(
            conn,
            "SELECT file_name FROM sync.exports WHERE destination = %s AND file_name LIKE %s",
            (destination, base + "%"),
        )
    }
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    return name + ".csv"
