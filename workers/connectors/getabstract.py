"""Kind ``getabstract``: ``report_export_yyyy_MM_dd[_HHmmss].xlsx`` usage reports. Each row is a
summary a learner opened or downloaded: the summary becomes a course if it is new (keyed by dataId,
never rewritten by a report) and the learner gets a completion on the download date."""

from __future__ import annotations

from functools import partial
from typing import Any

import psycopg
from psycopg import sql

from schemas.kinds import KindConfig
from schemas.providers import FileSpec, getabstract_file
from workers.connectors import content
from workers.connectors.checks import Check, Chunk, checked_insert, required, valid_date
from workers.connectors.content import EMAIL_LIKE, ContentKind, config_of
from workers.connectors.contract import Step
from workers.rows import RunRow
from workers.staging import stage_table

PROVIDER = "getabstract"
_EMPTY_RUN = (
    "no getAbstract report to import: a sync needs a report_export_yyyy_MM_dd.xlsx file in the connection's "
    "folder; drop one and sync again"
)


def file_spec(config: KindConfig, file_name: str) -> FileSpec:
    return getabstract_file(file_name, config_of(config).mapping)


def transform_chunk(conn: psycopg.Connection[Any], chunk: Chunk, config: KindConfig) -> dict[str, int]:
    run_id, file_id, file_name = chunk.run_id, chunk.file_id, chunk.file_name
    spec = file_spec(config, content.file_name(file_name))
    checks = [
        *(required(spec, a) for a in ("email", "data_id", "download_date", "main_title")),
        Check(
            "email",
            sql.SQL("email IS NOT NULL AND email !~ {}").format(sql.Literal(EMAIL_LIKE)),
            "invalid_email",
            "this is not an e-mail address (name@example.com); correct it and rerun",
        ),
        valid_date(spec, "download_date"),
    ]
    # One statement fills both tables: the summary (a course) and the learner's completion.
    insert = sql.SQL(
        """
        INSERT INTO {courses} (file_id, line_no, external_id, title, language, category, asset_type, asset_format)
        SELECT {file_id}, c.line_no, c.data_id, c.main_title, c.language, c.category, 'Summary', c.media_type
        FROM checked c WHERE c.ok
        RETURNING 1),
    progress AS (
        INSERT INTO {progress} (file_id, line_no, learner_key, learner_column, email, first_name,
            last_name, course_ref, course_title, status, first_accessed_on, last_accessed_on, completed_on)
        SELECT {file_id}, c.line_no, lower(c.email), 'email', c.email, c.first_name, c.last_name, c.data_id,
               c.main_title, 'completed', sync.feed_date(c.download_date), sync.feed_date(c.download_date),
               sync.feed_date(c.download_date)
        FROM checked c WHERE c.ok"""
    ).format(
        courses=stage_table("courses", run_id),
        progress=stage_table("progress", run_id),
        file_id=sql.Literal(file_id),
    )
    return checked_insert(conn, chunk, spec, checks, insert)


def load_steps(conn: psycopg.Connection[Any], run: RunRow, *, whole: bool, batch_rows: int) -> list[Step]:
    """New summaries first, then each report in its own step, oldest first."""
    steps: list[Step] = [partial(content.apply_courses, provider=PROVIDER, update=False)]
    for f in content.parsed_files(conn, run.id):
        steps.append(partial(content.apply_progress, file_id=f["file_id"], provider=PROVIDER, what="getAbstract"))
    return steps


class Getabstract(ContentKind):
    NAME = "getabstract"
    README_SECTION = "Content providers: Harvard ManageMentor and getAbstract"
    #: Its files are kept FEEDSYNC_CONTENT_RETENTION_DAYS after their run unless the connection says.
    EMPTY_RUN = _EMPTY_RUN

    file_spec = staticmethod(file_spec)
    transform_chunk = staticmethod(transform_chunk)
    load_steps = staticmethod(load_steps)
