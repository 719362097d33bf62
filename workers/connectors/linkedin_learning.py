"""Kind ``linkedin_learning``: LinkedIn Learning's catalog and its learners' activity, from the API.

Each run's fetch (workers/sources/linkedin.py) writes one CSV: a ``course`` row per catalog
element that passed the connection's filters, then an ``activity`` row per learner and course.
From there it is a content kind like the others (workers/connectors/content.py):

- courses are created or rewritten by URN (``lms.courses``, provider ``linkedin_learning``), with
  the connection's custom ``tags`` and the course's SKILL classifications as its skills;
- a course this connection imported before that the pull no longer has (gone from the catalog,
  or outside the filters now) is retired, never deleted: learners' records on it stay;
- activity becomes ``lms.learner_progress`` for people matched by e-mail (an unknown e-mail is a
  row error, the others go on); a completion achieves the course's skills (``lms.user_skills``);
- LinkedIn's daily quota (HTTP 429) parks the connection until 00:00 UTC (``sync.connections.
  parked_until``): scheduled runs skip it until then and an alert says so (producers/alarms.py).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import psycopg
from psycopg import sql

from schemas.kinds import KindConfig, config_as
from schemas.kinds.linkedin_learning import LinkedInLearningConnection
from schemas.providers import FileSpec
from schemas.settings import Settings
from workers import store
from workers.connectors import content
from workers.connectors.checks import Check, Chunk, as_int, as_number, checked_insert, valid_date, valid_number
from workers.connectors.content import EMAIL_LIKE, ContentKind
from workers.connectors.contract import ROWS_READ, Counted, Step
from workers.rows import RunRow
from workers.staging import stage_table

if TYPE_CHECKING:
    from workers.sources.pull import FetchResult

PROVIDER = "linkedin_learning"
_UNKNOWN_LEARNER = (
    "no learner has this e-mail; add the person to a user feed first (LinkedIn's activity never creates people), "
    "and rerun"
)


def file_spec(config: KindConfig, file_name: str) -> FileSpec:
    """The fetch's file: one column per attribute, named as the attribute."""
    from workers.sources import linkedin  # see pull

    return FileSpec("feed", "csv", {c: c for c in linkedin.COLUMNS}, frozenset(linkedin.COLUMNS))


def _needed(record: str, attribute: str) -> Check:
    return Check(
        attribute,
        sql.SQL("record = {} AND {} IS NULL").format(sql.Literal(record), sql.Identifier(attribute)),
        "required",
        f"LinkedIn sent a {record} record without '{attribute}'; it was not imported (the others were)",
    )


def transform_chunk(conn: psycopg.Connection[Any], chunk: Chunk, config: KindConfig) -> dict[str, int]:
    run_id, file_id = chunk.run_id, chunk.file_id
    cfg = config_as(LinkedInLearningConnection, config)
    spec = file_spec(config, chunk.file_name)
    checks = [
        Check(
            "record",
            sql.SQL("record IS NULL OR record NOT IN ('course', 'activity')"),
            "invalid_record",
            "'record' must be course or activity",
        ),
        *(_needed("course", a) for a in ("urn", "title")),
        *(_needed("activity", a) for a in ("email", "content_urn")),
        Check(
            "email",
            sql.SQL("email IS NOT NULL AND email !~ {}").format(sql.Literal(EMAIL_LIKE)),
            "invalid_email",
            "this is not an e-mail address (name@example.com); the learner's activity was not imported",
        ),
        valid_number(spec, "duration_minutes", rejected=False),
        valid_number(spec, "progress_percent", whole=False),
        valid_number(spec, "seconds_viewed"),
        valid_number(spec, "completions"),
        *(valid_date(spec, a, rejected=False) for a in ("published", "modified")),
        *(valid_date(spec, a) for a in ("first_engaged", "last_engaged")),
    ]
    # One statement fills both tables, each with its own records.
    insert = sql.SQL(
        """
        INSERT INTO {courses} (file_id, line_no, external_id, title, description, launch_url, image_url, authors,
            duration_minutes, language, published_on, asset_type, collection, discipline, source_modified_on,
            tags, skills)
        SELECT {file_id}, c.line_no, c.urn, c.title, c.description, c.launch_url, c.image_url, c.authors,
               {duration}, c.locale, sync.feed_date(c.published), c.asset_type, c.library, c.subjects,
               sync.feed_date(c.modified), {tags}::text[],
               coalesce(array(SELECT btrim(t) FROM unnest(string_to_array(c.skills, ';')) t WHERE btrim(t) <> ''),
                        '{{}}')
        FROM checked c WHERE c.ok AND c.record = 'course'
        RETURNING 1),
    progress AS (
        INSERT INTO {progress} (file_id, line_no, learner_key, learner_column, email, course_ref, status,
            first_accessed_on, last_accessed_on, completed_on, time_spent_minutes, progress_percent)
        SELECT {file_id}, c.line_no, lower(c.email), 'email', c.email, c.content_urn,
               CASE WHEN c.done THEN 'completed'
                    WHEN c.pct > 0 OR c.secs > 0 THEN 'in_progress' ELSE 'not_started' END,
               sync.feed_date(c.first_engaged), sync.feed_date(c.last_engaged),
               CASE WHEN c.done THEN sync.feed_date(coalesce(c.last_engaged, c.first_engaged)) END,
               round(c.secs / 60.0)::int, c.pct
        FROM (SELECT c.*, {pct} AS pct, {secs} AS secs, ({completions} > 0 OR {pct} >= 100) AS done
              FROM checked c WHERE c.ok AND c.record = 'activity') c"""
    ).format(
        courses=stage_table("courses", run_id),
        progress=stage_table("progress", run_id),
        file_id=sql.Literal(file_id),
        duration=as_int("duration_minutes"),
        tags=sql.Literal(list(cfg.tags)),
        pct=as_number("progress_percent"),
        secs=as_int("seconds_viewed"),
        completions=as_int("completions"),
    )
    return checked_insert(conn, chunk, spec, checks, insert)


def retire_missing(conn: psycopg.Connection[Any], run: RunRow) -> dict[str, int]:
    """Retire this connection's courses the run's pull no longer has (a complete pull only: a fetch
    cut off registers no file, so this never runs on half a catalog)."""
    row = store.fetch_one(
        conn,
        sql.SQL(
            """WITH pulled AS (
                 SELECT s.external_id FROM {courses} s
                 JOIN sync.run_files rf ON rf.run_id = %(run)s AND rf.file_id = s.file_id AND rf.status = 'parsed'),
               gone AS (
                 UPDATE lms.courses c SET status = 'retired', retired_at = clock_timestamp(), source_hash = NULL,
                        updated_at = clock_timestamp()
                 WHERE c.provider = %(provider)s AND c.source_connection_id = %(conn)s AND c.status <> 'retired'
                   AND EXISTS (SELECT 1 FROM sync.run_files rf WHERE rf.run_id = %(run)s AND rf.status = 'parsed')
                   AND NOT EXISTS (SELECT 1 FROM pulled p WHERE p.external_id = c.external_id)
                 RETURNING 1)
               SELECT count(*) AS n FROM gone"""
        ).format(courses=stage_table("courses", run.id)),
        {"run": run.id, "provider": PROVIDER, "conn": run.connection_id},
    )
    return {"courses_retired": int(row["n"]) if row else 0}


def load_steps(conn: psycopg.Connection[Any], run: RunRow, *, whole: bool, batch_rows: int) -> list[Step]:
    """The catalog first (courses, then those gone retired), then the activity."""
    steps: list[Step] = [partial(content.apply_courses, provider=PROVIDER, update=True), retire_missing]
    for f in content.parsed_files(conn, run.id):
        steps.append(
            partial(
                content.apply_progress,
                file_id=f["file_id"],
                provider=PROVIDER,
                what="LinkedIn Learning",
                create_learners=False,
                course_attr="content_urn",
                unknown_learner=_UNKNOWN_LEARNER,
            )
        )
    return steps


def park(name: str, reason: str) -> None:
    """Park the connection until the next 00:00 UTC (the database's clock): LinkedIn's quota resets then."""
    with store.connect() as conn:
        conn.execute(
            """UPDATE sync.connections SET parked_until = date_trunc('day', sync.clock(), 'UTC') + interval '1 day',
                      parked_reason = %s
               WHERE name = %s AND deleted_at IS NULL""",
            (reason, name),
        )


def unpark(name: str) -> None:
    with store.connect() as conn:
        conn.execute(
            """UPDATE sync.connections SET parked_until = NULL, parked_reason = NULL
               WHERE name = %s AND deleted_at IS NULL AND parked_until IS NOT NULL""",
            (name,),
        )


class LinkedInLearning(ContentKind):
    NAME = "linkedin_learning"
    README_SECTION = "LinkedIn Learning: the catalog and learners' activity by API"
    HISTORY: ClassVar[tuple[Counted, ...]] = (
        ROWS_READ,
        Counted(
            "courses",
            (
                ("created", "courses_created"),
                ("updated", "courses_updated"),
                ("unchanged", "courses_unchanged"),
                ("retired", "courses_retired"),
            ),
        ),
        Counted("progress", (("written", "progress_written"), ("unchanged", "progress_unchanged"))),
    )

    file_spec = staticmethod(file_spec)
    transform_chunk = staticmethod(transform_chunk)
    load_steps = staticmethod(load_steps)

    def pull(self, name: str, config: KindConfig, settings: Settings, sink: Path) -> tuple[str, FetchResult] | None:
        # Here, not at the top: the HTTP clients' imports (httpx, authlib) are for the worker that
        # pulls, not for every process that lists the kinds (`feedsync sync` included).
        from workers.sources import linkedin

        try:
            result = linkedin.pull(name, config_as(LinkedInLearningConnection, config), settings, sink)
        except linkedin.QuotaExhausted as exc:
            park(name, exc.describe.removeprefix(f"{name}: "))  # the request: "GET /v2/learningAssets"
            raise
        unpark(name)
        return linkedin.SOURCE, result
