"""Builders for the xAPI import tests: the xAPI CSV connection, the people and courses its
statements refer to, and a file dropped and run through the stub pipeline."""

from __future__ import annotations

from typing import Any

from producers import queries
from producers.commands import apply_connections
from schemas.connections import load_connections_toml
from tests.conftest import sql
from tests.stubpipeline import HEADER, Pipeline

COMPLETED = "http://adlnet.gov/expapi/verbs/completed"


MAPPED = """
[[connections]]
name = "lrs"
kind = "xapi"
{extra}

[connections.xapi]
"actor.mbox" = {{ column = "Email" }}
"verb.id" = {{ column = "Verb" }}
"object.id" = {{ column = "Activity" }}
"result.score.scaled" = {{ column = "Score", type = "number" }}
"result.completion" = {{ column = "Done", type = "boolean" }}
"timestamp" = {{ column = "When", type = "date" }}
"verb.display.en-US" = {{ value = "did" }}
{more}
"""


CSV_HEADER = "Email,Verb,Activity,Score,Done,When\n"


def connect(extra: str = "", more: str = "") -> None:
    apply_connections(load_connections_toml(MAPPED.format(extra=extra, more=more)))


def people(pipeline: Pipeline) -> None:
    pipeline.import_files(("import/user/internal/people.csv", HEADER + "ann@x.com,Ann,A,,S\nbob@x.com,Bob,B,,S\n"))


def course_with_skill(external_id: str, launch_url: str, skill: str = "Listening") -> int:
    (course_id,) = sql(
        "INSERT INTO lms.courses (provider, external_id, title, launch_url) VALUES ('hmm', %s, %s, %s) RETURNING id",
        (external_id, f"Course {external_id}", launch_url),
    )[0]
    (skill_id,) = sql("INSERT INTO lms.skills (name) VALUES (%s) RETURNING id", (skill,))[0]
    sql("INSERT INTO lms.course_skills (course_id, skill_id) VALUES (%s, %s)", (course_id, skill_id))
    return int(course_id)


def drop_and_run(pipeline: Pipeline, name: str, body: str) -> dict[str, Any]:
    run_id = pipeline.import_files((f"import/xapi/{name}", body))
    run = queries.run_detail(run_id)
    assert run is not None
    return run


def errors(run_id: int) -> list[tuple[Any, ...]]:
    return sql(
        "SELECT line, column_name, code, rejected FROM sync.row_errors WHERE run_id = %s ORDER BY line, code",
        (run_id,),
    )
