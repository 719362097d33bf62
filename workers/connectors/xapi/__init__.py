"""Kind ``xapi``: CSV files whose rows become xAPI 1.0.3 statements (ALM's xAPI import, with the
spec's rules). Each row is filtered, mapped by JSON path (or read whole from ``statement_column``),
typed, given its id and validated (``transform``); each file is then stored in
``lms.xapi_statements`` idempotently, voiding applied, and its completions merged into learner
progress (``load``). Files are taken in the run's order, oldest first, each in its own step.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from schemas.kinds import KindConfig, config_as
from schemas.kinds.xapi import XapiConnection
from schemas.providers import FileNameProblem, FileSpec
from workers import store
from workers.connectors import content, tables
from workers.connectors.checks import Chunk
from workers.connectors.contract import PLANNED_ROWS, ROWS_READ, BlockStager, Counted, ImportKind, RawBlock, Step, Table
from workers.connectors.xapi import load, transform
from workers.rows import RunRow
from workers.staging import stage_table

if TYPE_CHECKING:
    from workers.connectors.xapi.vector import Prepared

_HISTORY_COUNTS = (
    "statements_stored",
    "statements_unchanged",
    "statements_voided",
    "statements_filtered",
    "progress_written",
)
_EMPTY_RUN = (
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


def create_staging(conn: psycopg.Connection[Any], run_id: int, config: KindConfig) -> None:
    transform.create_staging(conn, run_id)
    content.create_staging(conn, run_id, config)  # its progress table: completions are merged as content's


def transform_chunk(conn: psycopg.Connection[Any], chunk: Chunk, config: KindConfig) -> dict[str, int]:
    return transform.transform(conn, chunk, config_of(config))


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


def load_steps(conn: psycopg.Connection[Any], run: RunRow, *, whole: bool, batch_rows: int) -> list[Step]:
    """Each file in its own step, in the run's order (oldest first)."""
    return [partial(load.apply_file, file_id=f["file_id"]) for f in content.parsed_files(conn, run.id)]


class XapiBlocks(BlockStager):
    """The vectorised path. ``vector`` imports pyarrow (the [arrow] extra), so it is imported at the
    first block rather than with the kind: a worker that parses no xAPI CSV never loads pyarrow, and
    one without the extra never asks (``block_stager``)."""

    EXTRA = "arrow"

    def prepare_block(self, chunk: Chunk, config: KindConfig, block: RawBlock) -> Prepared | None:
        from workers.connectors.xapi import vector

        return vector.prepare_block(chunk, config, block)

    def screen_block(
        self, conn: psycopg.Connection[Any], chunk: Chunk, config: KindConfig, prepared: Prepared
    ) -> Prepared:
        from workers.connectors.xapi import vector

        return vector.screen_block(conn, chunk, config, prepared)

    def write_block(self, conn: psycopg.Connection[Any], chunk: Chunk, prepared: Prepared) -> dict[str, int]:
        from workers.connectors.xapi import vector

        return vector.write_block(conn, chunk, prepared)


class Xapi(ImportKind):
    NAME = "xapi"
    README_SECTION = "xAPI activity: CSV rows become xAPI 1.0.3 statements"
    TABLES = (
        Table("xapi_statements", ("id",), owned=True, points_at=("courses",)),
        tables.LEARNER_PROGRESS,
        tables.USER_SKILLS,
    )
    #: Its files are kept FEEDSYNC_CONTENT_RETENTION_DAYS after their run unless the connection says.
    HISTORY_COUNTS = _HISTORY_COUNTS
    PLAN_COUNTS = (
        *PLANNED_ROWS,
        ("statements", ("statements_stored", "statements_unchanged")),
        ("new_statements", ("statements_stored",)),
        ("filtered", ("statements_filtered",)),
    )
    HISTORY = (
        ROWS_READ,
        Counted(
            "statements",
            (
                ("stored", "statements_stored"),
                ("unchanged", "statements_unchanged"),
                ("voided", "statements_voided"),
                ("filtered", "statements_filtered"),
            ),
        ),
        Counted("progress", (("written", "progress_written"), ("unknown learner", "progress_unknown_learner"))),
    )
    # Duplicate ids are judged in the load, against the store and the earlier lines: no ``prepare``.
    EMPTY_RUN = _EMPTY_RUN
    BLOCKS = XapiBlocks()

    file_spec = staticmethod(file_spec)
    create_staging = staticmethod(create_staging)
    transform_chunk = staticmethod(transform_chunk)
    plan = staticmethod(plan)
    load_steps = staticmethod(load_steps)
