"""Kind ``xapi``: CSV files whose rows become xAPI 1.0.3 statements (ALM's xAPI import, with the
spec's rules). Each row is filtered, mapped by JSON path (or read whole from ``statement_column``),
typed, given its id and validated (``transform``); each file is then stored in
``lms.xapi_statements`` idempotently, voiding applied, and its completions merged into learner
progress (``load``). Files are taken in the run's order, oldest first, each in its own step.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Literal

import psycopg
from psycopg import sql

from schemas.kinds import KindConfig, config_as
from schemas.kinds.xapi import XapiConnection
from schemas.providers import FileNameProblem, FileSpec
from workers import store
from workers.connectors import content
from workers.connectors.checks import Chunk
from workers.connectors.contract import Step
from workers.connectors.xapi import load, transform
from workers.connectors.xapi.vector import prepare_block, screen_block, write_block
from workers.rows import RunRow
from workers.staging import stage_table

EXPORT: Literal[False] = False
#: Kept FEEDSYNC_CONTENT_RETENTION_DAYS after their run unless the connection says.
RETENTION_DAYS: int | None = None
HISTORY_COUNTS: tuple[str, ...] = (
    "statements_stored",
    "statements_unchanged",
    "statements_voided",
    "statements_filtered",
    "progress_written",
)
EMPTY_RUN: str | None = (
    "no xAPI file to import: a sync needs a CSV file in the connection's folder (and named as its source_file, "
    "when it names one); drop one and sync again"
)


def config_of(config: KindConfig) -> XapiConnection:
    return config_as(XapiConnection, config)


def file_spec(config: KindConfig, file_name: str) -> FileSpec:
    cfg = config_of(config)
    if cfg.source_file is not None and file_name != cfg.source_file:
        raise FileNameProblem(
            f"{file_name!r} is not this connection's source file: it takes only files named exactly "
            f"{cfg.source_file!r}; rename the file, or change source_file"
        )
    columns = transform.attributes(cfg)
    return FileSpec("statements", "csv", columns, frozenset(columns))


def expected_files(config: KindConfig) -> dict[str, str] | None:
    return None


def create_staging(conn: psycopg.Connection[Any], run_id: int, config: KindConfig) -> None:
    transform.create_staging(conn, run_id)
    content.create_staging(conn, run_id, config)  # its progress table: completions are merged as content's


def transform_chunk(conn: psycopg.Connection[Any], chunk: Chunk, config: KindConfig) -> dict[str, int]:
    return transform.transform(conn, chunk, config_of(config))


def prepare(conn: psycopg.Connection[Any], run: RunRow) -> int:
    return 0  # duplicate ids are judged in the load, against the store and the earlier lines


def classify(conn: psycopg.Connection[Any], run: RunRow) -> None:
    return None


def needs_plan(run: RunRow) -> bool:
    return run.dry_run


def plan(conn: psycopg.Connection[Any], run: RunRow) -> dict[str, Any]:
    row = store.fetch_one(
        conn,
        sql.SQL(
            """SELECT count(*) FILTER (WHERE s.kept) AS statements,
                      count(*) FILTER (WHERE s.kept AND x.id IS NULL) AS new_statements,
                      count(*) FILTER (WHERE NOT s.kept) AS filtered
               FROM {} s LEFT JOIN lms.xapi_statements x ON x.id = s.id"""
        ).format(stage_table("xapi", run.id)),
    )
    assert row is not None
    return {k: int(v) for k, v in row.items()}


def exceeded_thresholds(run: RunRow, p: dict[str, Any]) -> list[str]:
    return []


def load_steps(conn: psycopg.Connection[Any], run: RunRow, *, whole: bool, batch_rows: int) -> list[Step]:
    """Each file in its own step, in the run's order (oldest first)."""
    return [partial(load.apply_file, file_id=f["file_id"]) for f in content.parsed_files(conn, run.id)]


def finish(conn: psycopg.Connection[Any], run: RunRow) -> dict[str, int]:
    return {}


__all__ = [
    "EMPTY_RUN",
    "EXPORT",
    "HISTORY_COUNTS",
    "RETENTION_DAYS",
    "classify",
    "create_staging",
    "exceeded_thresholds",
    "expected_files",
    "file_spec",
    "finish",
    "load_steps",
    "needs_plan",
    "plan",
    "prepare",
    "prepare_block",
    "screen_block",
    "transform_chunk",
    "write_block",
]
