"""Fetch: a run of a connection with an API source (``source = "msgraph"``, ``"salesforce"``,
``"workday"`` or ``"workday_raas"``, or a kind with an API of its own, such as
``linkedin_learning``: ``ImportKind.pull``; or a bundle kind's files, ``ImportKind.pull_bundle``,
registered by workers/stages/fetch_bundle.py) pulls every page into a feed file, registers it as the
run's one file, and queues its parse. A Workday pull is read as of one moment, recorded on the run; an
incremental one (``incremental = true``) asks for the changes since the last completed pull, never
deactivates anyone, and ends the run without a file when nothing changed (``workday_window``).

From there the run is the same run as for a dropped file: mapping, validation, row errors at the
record's line, thresholds and approval, dry run, undo, history, retention.

1. The pages are pulled outside any transaction (a pull can take minutes, and a transaction held
   that long would hold the run's gate and the connection's bookkeeping), into
   ``<store>/fetching/run-<id>/``; ``workers.sources.fetch`` writes it whole or not at all.
2. The stage's one transaction moves the file into the store (``fetched/<connection>/…``, outside
   the ``files/`` tree the intake's orphan recovery puts back into the drop dir), records it in
   ``sync.feed_files`` (SHA-256, size; ``original_path`` ``api/<source>/<connection>-<time>.csv``
   says where it came from), ``sync.file_drops`` and ``sync.run_files``, adds the fetch's pages,
   records, requests and duration to the run's counts, and queues the parse.

A fetch cut off mid-way raises FetchError (a TerminalError): the ledger fails the run with its one
sentence, no file is registered and no load ever runs, so a full feed deactivates nobody on the
strength of half a directory. A redelivered message of a fetch that already succeeded, or of a
cancelled run, pulls nothing (checked first) or throws its pull away (checked again in the
transaction).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath

import structlog

from schemas.api import ApiConfig
from schemas.kinds import UsersConnection
from schemas.messages import FetchRun
from schemas.settings import get_settings
from schemas.states import RunStatus, StageStatus
from schemas.workday import WorkdayConfig
from workers import store
from workers.connectors import import_kind
from workers.files.objects import FileStore, LocalStore, file_store
from workers.rows import RunRow, read_run
from workers.runs import record, route
from workers.runs.stage import StageTx, run_stage
from workers.sources import FetchResult, FetchSpec, fetch
from workers.sources.delta import DeltaRound
from workers.sources.preview import spec_of
from workers.stages import stage_actor
from workers.stages.fetch_bundle import recorded, register_bundle, register_file
from workers.stages.fetch_delta import keep_round, plan_round

log = structlog.get_logger(__name__)


@stage_actor(FetchRun)
def fetch_run(msg: FetchRun) -> None:
    settings = get_settings()
    with store.connect() as conn:
        run = read_run(conn, msg.run_id)
        done = store.fetch_one(
            conn,
            "SELECT 1 FROM sync.stage_runs WHERE run_id = %s AND stage = 'fetch' AND part = '' AND status = %s",
            (msg.run_id, StageStatus.SUCCEEDED.value),
        )
        if run is None or run.status != RunStatus.IN_PROGRESS or done is not None:
            log.info("fetch not needed: the run has ended or was fetched already", run_id=msg.run_id)
            return
    work = settings.store_dir / "fetching" / f"run-{msg.run_id}"
    shutil.rmtree(work, ignore_errors=True)  # a pull an earlier attempt left half-way
    work.mkdir(parents=True)
    try:
        bundle = import_kind(run.kind).pull_bundle(run.connection_name, run.config, settings, work)
        if bundle is not None:  # a bundle kind's files, all pulled: registered together
            register_bundle(msg, run, str(getattr(run.config, "source", "api")), bundle, file_store(settings))
            return
        sink = work / f"{run.connection_name}.csv"
        # A kind with an API of its own pulls it; the people kinds pull their API source.
        pulled = import_kind(run.kind).pull(run.connection_name, run.config, settings, sink)
        spec: FetchSpec | None = None
        round_: DeltaRound | None = None
        if pulled is None:
            spec, round_ = _people_pull(run)
            result = fetch(spec, settings, sink, round_)
            if result.rows == 0 and spec.updated_from is not None:
                # An incremental pull that found no change: nothing to parse, the run ends as it is.
                people = spec
                run_stage(msg, lambda tx: _nothing_changed(tx, run, people, result))
                return
            pulled = spec.source, result
        source, result = pulled
        stored_rel = PurePosixPath(
            "fetched", run.connection_name, f"run-{msg.run_id}-{result.sha256[:16]}", f"{run.connection_name}.csv"
        )
        files = file_store(settings)
        try:
            registered = run_stage(msg, lambda tx: _register(tx, run, source, spec, result, files, stored_rel, round_))
        except BaseException:
            if not recorded(stored_rel):  # stored in a transaction that did not commit: no row names it
                files.delete(stored_rel.as_posix())
            raise
        if not registered:
            files.delete(stored_rel.as_posix())
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _people_pull(run: RunRow) -> tuple[FetchSpec, DeltaRound | None]:
    """A people kind's API source: what to pull (a Workday pull's window) and a Graph delta round."""
    spec = workday_window(run, spec_of(run.connection_name, run.config))
    graph = spec.api if isinstance(spec.api, ApiConfig) and spec.source == "msgraph" else None
    if graph is None or not graph.incremental:
        return spec, None
    with store.connect() as conn:
        return spec, plan_round(conn, run, _key_field(run), graph.full_every_days)


def _key_field(run: RunRow) -> str:
    """The source field the connection's key (email) is read from."""
    assert isinstance(run.config, UsersConnection)  # spec_of refused any other
    return run.config.mapping["email"]


def workday_window(run: RunRow, spec: FetchSpec) -> FetchSpec:
    """A Workday pull's moment, and for an incremental connection the start of the changes asked
    for: the moment of the last completed pull, unless the last full pull is ``full_pull_every_days``
    old (or there is none), when the pull is a full one again (the only kind that may deactivate)."""
    cfg = spec.api
    if not isinstance(cfg, WorkdayConfig) or spec.source != "workday":
        return spec
    now = datetime.now(UTC).replace(microsecond=0)
    if not cfg.incremental:
        return replace(spec, as_of=now)
    with store.connect() as conn:
        row = store.fetch_one(
            conn,
            """SELECT max((counts ->> 'fetch_as_of')::timestamptz)
                        FILTER (WHERE counts ->> 'fetch_mode' = 'full') AS last_full,
                      max((counts ->> 'fetch_as_of')::timestamptz) AS last
               FROM sync.runs
               WHERE connection_name = %s AND status IN ('completed', 'completed_with_errors') AND NOT dry_run
                 AND counts ? 'fetch_as_of'""",
            (run.connection_name,),
        )
    full, last = (row["last_full"], row["last"]) if row else (None, None)
    if full is None or last is None or now - full >= timedelta(days=cfg.full_pull_every_days):
        return replace(spec, as_of=now)
    return replace(spec, as_of=now, updated_from=last)


def _fetch_counts(spec: FetchSpec | None, result: FetchResult) -> dict[str, int | str]:
    fetched: dict[str, int | str] = {
        "fetched_pages": result.pages,
        "fetched_records": result.rows,
        "fetch_requests": result.requests,
        "fetch_ms": round(result.duration_s * 1000),
    }
    if spec is not None and spec.as_of is not None:  # Workday: the moment read as of, the next incremental pull's start
        fetched["fetch_as_of"] = spec.as_of.isoformat()
        fetched["fetch_mode"] = "incremental" if spec.updated_from is not None else "full"
    return fetched


def _nothing_changed(tx: StageTx, run: RunRow, spec: FetchSpec, result: FetchResult) -> None:
    record.add_counts(tx.conn, run.id, _fetch_counts(spec, result))
    tx.counts = {"pages": result.pages, "records": 0, "requests": result.requests}
    route.send(tx.conn, tx.outbox, "fetch", "finalize", run.id)


def _register(
    tx: StageTx,
    run: RunRow,
    source: str,
    spec: FetchSpec | None,
    result: FetchResult,
    files: FileStore,
    stored_rel: PurePosixPath,
    round_: DeltaRound | None,
) -> None:
    if round_ is not None and not round_.full and not result.rows:
        # Nothing changed since the last round: no file to parse, the run completes with nothing to do.
        keep_round(tx.conn, run, round_)
        record.add_counts(tx.conn, run.id, {**_fetch_counts(spec, result), "fetch_delta": 1})
        route.send(tx.conn, tx.outbox, "fetch", "finalize", run.id)
        tx.counts = {"pages": result.pages, "records": 0, "requests": result.requests}
        result.path.unlink(missing_ok=True)
        return
    now = datetime.now(UTC)
    original = f"api/{source}/{run.connection_name}-{now.strftime('%Y%m%dT%H%M%S')}.csv"
    # A dry run's pull is a preview: finalize removes it, where a dropped file would wait for the real
    # run (the real run pulls again).
    file_id = register_file(tx, run, original, stored_rel, result, now, 0)
    fetched = _fetch_counts(spec, result)
    if round_ is not None:
        keep_round(tx.conn, run, round_)
        # A delta run is no full feed: the users kind deactivates nobody by absence (plan.deactivates).
        fetched.update({"fetch_delta": 0 if round_.full else 1, "fetch_removed": round_.removed})
    record.add_counts(tx.conn, run.id, fetched)
    route.send(tx.conn, tx.outbox, "fetch", "parse", run.id, file_id=file_id)
    tx.counts = {"pages": result.pages, "records": result.rows, "requests": result.requests}
    if isinstance(files, LocalStore):
        stored = files.path(stored_rel.as_posix())
        stored.parent.mkdir(parents=True, exist_ok=True)
        os.replace(result.path, stored)
    else:
        files.put(stored_rel.as_posix(), result.path, result.sha256)
    tx.after_commit.append(lambda: log.info("fetched feed registered", run_id=run.id, file_id=file_id))
