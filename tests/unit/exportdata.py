"""Shared fixtures of the export tests: export connections, people, courses, progress, skills and
xAPI statements written into the store, and readers of an export run's file."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path
from typing import Any

from producers.commands import apply_connections
from schemas.connections import load_connections_toml
from tests.conftest import sql
from tests.stubpipeline import HEADER, Pipeline

EXPORTS_TOML = """
[[connections]]
name = "transcripts"
kind = "transcript_export"
location = "transcripts"

[[connections]]
name = "skills"
kind = "skills_export"

[[connections]]
name = "xapi"
kind = "xapi_export"
"""

#: A course title with a quote, a comma and a line break: one CSV cell, quoted.
TRICKY_TITLE = 'Say "hi", then\nleave'

#: A statement as an LRS may store it: pretty-printed (line breaks) with quotes inside strings.
STATEMENT = (
    '{\n  "id": "6690e6c9-3ef0-4ed3-8b37-7f3964730bee",\n  "actor": {"mbox": "mailto:zoe@x.com", '
    '"objectType": "Agent"},\n  "verb": {"id": "http://adlnet.gov/expapi/verbs/answered", '
    '"display": {"en-US": "answered"}},\n  "object": {"id": "http://x.test/q1", "objectType": "Activity"},\n'
    '  "result": {"response": "She said \\"yes\\", twice"},\n  "version": "1.0.3"\n}'
)


def export_connections() -> None:
    apply_connections(load_connections_toml(EXPORTS_TOML))


def people(pipeline: Pipeline) -> None:
    """Zoë (non-ASCII name) reports to Ann; both are in a department (a profile attribute)."""
    pipeline.import_files(
        (
            "import/user/internal/people.csv",
            HEADER + "ann@x.com,Ann,Archer,,Sales\nzoe@x.com,Zoë,Żak,ann@x.com,R&D\n",
        )
    )


def learning(changed_at: str = "2026-11-20T10:00:00Z") -> None:
    """Two courses, a record each, a skill achieved and an xAPI statement, all changed at ``changed_at``."""
    sql(
        """INSERT INTO lms.courses (provider, external_id, title, language, duration_minutes)
           VALUES ('hmm', 'P1', %s, 'English', 45), ('hmm', 'P2', 'Time Management', NULL, NULL)""",
        (TRICKY_TITLE,),
    )
    sql(
        """INSERT INTO lms.learner_progress (user_id, course_id, status, first_accessed_on, completed_on, score,
                                             time_spent_minutes, updated_at)
           SELECT u.id, c.id, v.status, v.first::date, v.done::date, v.score, v.spent, %s
           FROM (VALUES ('zoe@x.com', 'P1', 'completed', '2026-10-01', '2026-10-03', 83, 45),
                        ('ann@x.com', 'P2', 'in_progress', '2026-10-30', NULL, NULL, 5))
                AS v(email, code, status, first, done, score, spent)
           JOIN lms.users u ON u.email = v.email JOIN lms.courses c ON c.external_id = v.code""",
        (changed_at,),
    )
    sql("INSERT INTO lms.skills (name) VALUES ('Coaching'), ('Feedback')")
    sql(
        """INSERT INTO lms.user_skills (user_id, skill_id, course_id, achieved_on, updated_at)
           SELECT u.id, s.id, c.id, '2026-10-03', %s FROM lms.users u, lms.skills s, lms.courses c
           WHERE u.email = 'zoe@x.com' AND c.external_id = 'P1'""",
        (changed_at,),
    )
    sql(
        """INSERT INTO lms.xapi_statements (id, user_id, actor_email, verb_id, object_id, "timestamp", statement,
                                            stored_at)
           SELECT '6690e6c9-3ef0-4ed3-8b37-7f3964730bee', u.id, 'zoe@x.com', 'http://adlnet.gov/expapi/verbs/answered',
                  'http://x.test/q1', '2026-11-20T09:59:58.5Z', %s, %s FROM lms.users u WHERE u.email = 'zoe@x.com'""",
        (STATEMENT, changed_at),
    )


def exported(pipeline: Pipeline, run: dict[str, Any]) -> Path:
    e = run["export"]
    assert e is not None and e["rows"] is not None, run
    return Path(str(e["folder"])) / str(e["file"])


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def sync(pipeline: Pipeline, name: str, since: date | None = None) -> dict[str, Any]:
    return pipeline.sync(name, since)


def sync_failing(pipeline: Pipeline, name: str, since: date | None = None) -> dict[str, Any]:
    """An on-demand sync whose stage fails on purpose (the drain does not re-raise it)."""
    from producers import queries, registry
    from producers.commands import start_sync

    registry.scan(pipeline.settings, announce=False)
    run_id = start_sync(pipeline.settings, name, since=since)
    pipeline.drain(expect_failures=True)
    run = queries.run_detail(run_id)
    assert run is not None
    return run


#: The real HMM samples imported (learners created from them) and a transcript export of them.
HMM_AND_TRANSCRIPTS = """
[[connections]]
name = "hmm"
kind = "hmm"
trigger = "on_schedule"
create_learners = true

[[connections]]
name = "transcripts"
kind = "transcript_export"
location = "transcripts"
"""
