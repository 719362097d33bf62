"""Kind ``hmm``: Harvard ManageMentor. ``hmm12_metadata.csv`` creates, updates and retires courses;
``client_hmm12_yyyyMMdd.csv`` user feeds record learner progress, applied oldest first after the
metadata of the same run."""

from __future__ import annotations

from functools import partial
from typing import Any

import psycopg
from psycopg import sql

from schemas.kinds import KindConfig
from schemas.providers import FileSpec, hmm_file
from workers.connectors import content
from workers.connectors.checks import (
    Check,
    Chunk,
    as_int,
    as_list,
    as_number,
    checked_insert,
    required,
    valid_date,
    valid_number,
)
from workers.connectors.content import ContentKind, config_of
from workers.connectors.contract import Step
from workers.rows import RunRow
from workers.staging import stage_table

PROVIDER = "hmm"
_EMPTY_RUN = (
    "no Harvard ManageMentor feed to import: a sync needs hmm12_metadata.csv or a client_hmm12_yyyyMMdd.csv user "
    "feed in the connection's folder; drop one and sync again"
)


def file_spec(config: KindConfig, file_name: str) -> FileSpec:
    return hmm_file(file_name, config_of(config).mapping)


def transform_chunk(conn: psycopg.Connection[Any], chunk: Chunk, config: KindConfig) -> dict[str, int]:
    run_id, file_id, file_name, columns = chunk.run_id, chunk.file_id, chunk.file_name, chunk.columns
    spec = file_spec(config, content.file_name(file_name))
    if spec.role == "metadata":
        checks = [
            *(required(spec, a) for a in ("product_id", "title", "status")),
            Check(
                "status",
                sql.SQL("status IS NOT NULL AND lower(status) NOT IN ('active', 'removed')"),
                "invalid_status",
                f"'{spec.columns['status']}' must be Active or Removed; correct it and rerun",
            ),
            valid_number(spec, "duration", rejected=False),
            valid_date(spec, "published", rejected=False),
            valid_date(spec, "modified", rejected=False),
        ]
        insert = sql.SQL(
            """
            INSERT INTO {table} (file_id, line_no, external_id, title, description, launch_url,
                image_url, authors, duration_minutes, language, published_on, copyright_holder, asset_type,
                asset_format, collection, discipline, parent_external_id, source_modified_on, tags, skills, retired)
            SELECT {file_id}, c.line_no, c.product_id, c.title, c.description, c.url, c.image_url, c.authors,
                   {duration}, c.language, sync.feed_date(c.published), c.copyright, c.asset_type,
                   c.asset_format, c.collection, c.discipline, c.parent_id, sync.feed_date(c.modified),
                   {tags}, {skills}, lower(c.status) = 'removed'
            FROM checked c WHERE c.ok"""
        ).format(
            table=stage_table("courses", run_id),
            file_id=sql.Literal(file_id),
            duration=as_int("duration"),
            tags=as_list("tags"),
            skills=as_list("skills"),
        )
    else:
        learner = "email" if "email" in columns else "username"
        checks = [
            required(spec, "username"),
            required(spec, "topic_code"),
            *(valid_date(spec, a) for a in ("completed", "first_accessed", "last_accessed", "assessed")),
            valid_number(spec, "score", whole=False),
            valid_number(spec, "time_spent"),
            valid_number(spec, "visits"),
        ]
        insert = sql.SQL(
            """
            INSERT INTO {table} (file_id, line_no, learner_key, learner_column, email,
                first_name, last_name, course_ref, course_title, status, first_accessed_on, last_accessed_on,
                completed_on, assessed_on, score, time_spent_minutes, visits)
            SELECT {file_id}, c.line_no, lower(coalesce(c.email, c.username)),
                   CASE WHEN c.email IS NULL THEN 'username' ELSE {learner} END,
                   c.email, c.first_name, c.last_name, c.topic_code, c.topic_title,
                   CASE WHEN c.completed IS NOT NULL THEN 'completed'
                        WHEN coalesce(c.first_accessed, c.last_accessed, c.assessed) IS NOT NULL
                          OR {visits} > 0 OR {time_spent} > 0 THEN 'in_progress'
                        ELSE 'not_started' END,
                   sync.feed_date(c.first_accessed), sync.feed_date(c.last_accessed), sync.feed_date(c.completed),
                   sync.feed_date(c.assessed), {score}, {time_spent}, {visits}
            FROM checked c WHERE c.ok"""
        ).format(
            table=stage_table("progress", run_id),
            file_id=sql.Literal(file_id),
            learner=sql.Literal(learner),
            visits=as_int("visits"),
            time_spent=as_int("time_spent"),
            score=as_number("score"),
        )
    return checked_insert(conn, chunk, spec, checks, insert)


def load_steps(conn: psycopg.Connection[Any], run: RunRow, *, whole: bool, batch_rows: int) -> list[Step]:
    """Courses first, then each user feed in its own step, oldest first (the run's file order)."""
    steps: list[Step] = [partial(content.apply_courses, provider=PROVIDER, update=True)]
    for f in content.parsed_files(conn, run.id):
        if file_spec(run.config, content.file_name(f["original_path"])).role == "progress":
            steps.append(partial(content.apply_progress, file_id=f["file_id"], provider=PROVIDER, what="HMM"))
    return steps


class Hmm(ContentKind):
    NAME = "hmm"
    README_SECTION = "Content providers: Harvard ManageMentor and getAbstract"
    #: Its files are kept FEEDSYNC_CONTENT_RETENTION_DAYS after their run unless the connection says.
    EMPTY_RUN = _EMPTY_RUN

    file_spec = staticmethod(file_spec)
    transform_chunk = staticmethod(transform_chunk)
    load_steps = staticmethod(load_steps)
