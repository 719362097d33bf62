"""The xAPI import on the stub broker: CSV rows become typed, validated statements, stored once
whatever the number of imports; conflicts and voiding follow the spec; completions on courses
reach learner progress and skills."""

from __future__ import annotations

import json
from typing import Any

import pytest

from producers import queries
from producers.commands import apply_connections, rerun
from schemas.connections import load_connections_toml
from tests.conftest import sql
from tests.stubpipeline import Pipeline
from tests.xapidata import COMPLETED, CSV_HEADER, connect, course_with_skill, drop_and_run, errors, people

VOIDED = "http://adlnet.gov/expapi/verbs/voided"
EXPERIENCED = "http://adlnet.gov/expapi/verbs/experienced"


def stored() -> list[dict[str, Any]]:
    return [
        {"id": str(r[0]), "statement": r[1], "voided": r[2], "line": r[3]}
        for r in sql("SELECT id, statement::text, voided, source_line FROM lms.xapi_statements ORDER BY source_line")
    ]


def test_mapped_rows_become_typed_statements_with_derived_ids(pipeline: Pipeline) -> None:
    connect()
    run = drop_and_run(
        pipeline,
        "a.csv",
        CSV_HEADER
        + f"ann@x.com,{COMPLETED},https://x.test/c1,0.85,yes,2026-11-01T10:03:41.863Z\n"
        + f"mailto:bob@x.com,{EXPERIENCED},https://x.test/c2,,0,11/2/2026\n",
    )
    assert run["status"] == "completed", run
    rows = stored()
    first = json.loads(rows[0]["statement"])
    assert first == {
        "id": rows[0]["id"],
        "actor": {"mbox": "mailto:ann@x.com"},
        "verb": {"id": COMPLETED, "display": {"en-US": "did"}},
        "object": {"id": "https://x.test/c1"},
        "result": {"score": {"scaled": 0.85}, "completion": True},
        "timestamp": "2026-11-01T10:03:41.863Z",
    }
    second = json.loads(rows[1]["statement"])
    assert second["actor"] == {"mbox": "mailto:bob@x.com"}
    assert second["result"] == {"completion": False}  # an empty score leaves the property out
    assert second["timestamp"] == "2026-11-02T00:00:00.000Z"
    assert sql("SELECT actor_email, user_id IS NOT NULL FROM lms.xapi_statements ORDER BY source_line") == [
        ("ann@x.com", False),
        ("bob@x.com", False),
    ]


def test_the_same_file_imported_again_adds_nothing(pipeline: Pipeline) -> None:
    connect()
    body = CSV_HEADER + f"ann@x.com,{COMPLETED},https://x.test/c1,0.5,true,2026-11-01\n"
    drop_and_run(pipeline, "a.csv", body)
    first = stored()
    # The same file read again (a rerun): same derived ids, nothing new, nothing changed.
    again = rerun(pipeline.settings, "lrs")
    pipeline.drain()
    run = queries.run_detail(again)
    assert run is not None and run["status"] == "completed", run
    assert stored() == first
    assert run["counts"]["created"] == 0 and run["counts"]["unchanged"] == 1
    assert run["content"]["statements_stored"] == 0 and run["content"]["statements_unchanged"] == 1


def test_a_bad_row_is_one_row_error_with_line_and_column_and_the_rest_imports(pipeline: Pipeline) -> None:
    connect()
    run = drop_and_run(
        pipeline,
        "a.csv",
        CSV_HEADER
        + f"ann@x.com,{COMPLETED},https://x.test/c1,high,true,2026-11-01\n"
        + f"ann@x.com,{COMPLETED},x.test/no-scheme,0.1,true,2026-11-01\n"
        + f"ann@x.com,{COMPLETED},https://x.test/c1,1.5,true,2026-11-01\n"
        + f",{COMPLETED},https://x.test/c1,0.1,true,2026-11-01\n"
        + f"bob@x.com,{COMPLETED},https://x.test/c1,0.1,maybe,2026-11-01\n"
        + f"bob@x.com,{COMPLETED},https://x.test/c1,0.1,true,someday\n"
        + f"bob@x.com,{COMPLETED},https://x.test/c9,0.9,true,2026-11-01\n",
    )
    assert run["status"] == "completed_with_errors"
    assert errors(run["run_id"]) == [
        (2, "Score", "invalid_number", True),
        (3, "Activity", "invalid_statement", True),
        (4, "Score", "invalid_statement", True),
        (5, "Email", "required", True),
        (6, "Done", "invalid_boolean", True),
        (7, "When", "invalid_date", True),
    ]
    assert [r["line"] for r in stored()] == [8]
    (message,) = sql("SELECT message FROM sync.row_errors WHERE line = 3")[0]
    assert message.startswith("object.id:") and "x.test" not in message  # no row values in messages


def test_a_statement_id_stored_with_other_content_is_a_conflict(pipeline: Pipeline) -> None:
    connect(more='"id" = { column = "Id" }')
    header = "Id," + CSV_HEADER
    sid = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
    drop_and_run(pipeline, "a.csv", header + f"{sid},ann@x.com,{COMPLETED},https://x.test/c1,0.5,true,2026-11-01\n")
    before = stored()
    run = drop_and_run(
        pipeline,
        "b.csv",
        header
        + f"{sid},ann@x.com,{EXPERIENCED},https://x.test/c1,0.5,true,2026-11-01\n"
        # The same content with another timestamp is the same statement (the spec's comparison).
        + f"{sid},ann@x.com,{COMPLETED},https://x.test/c1,0.5,true,2026-11-05\n",
    )
    assert errors(run["run_id"]) == [(2, "Id", "conflict", True)]
    assert stored() == before
    assert run["counts"]["unchanged"] == 1


@pytest.mark.parametrize("order", ["voider_first", "target_first", "same_file"])
def test_a_voiding_statement_voids_its_target_whenever_it_arrives(pipeline: Pipeline, order: str) -> None:
    connect(more='"id" = { column = "Id" }\n"object.objectType" = { column = "Type" }')
    header = "Id,Type," + CSV_HEADER
    target = "11111111-1111-4111-8111-111111111111"
    voider = "22222222-2222-4222-8222-222222222222"
    t_row = f"{target},Activity,ann@x.com,{COMPLETED},https://x.test/c1,,,2026-11-01\n"
    v_row = f"{voider},StatementRef,ann@x.com,{VOIDED},{target},,,2026-11-02\n"
    if order == "same_file":
        drop_and_run(pipeline, "a.csv", header + t_row + v_row)
    else:
        first, second = (v_row, t_row) if order == "voider_first" else (t_row, v_row)
        drop_and_run(pipeline, "a.csv", header + first)
        drop_and_run(pipeline, "b.csv", header + second)
    assert sql("SELECT id::text, voided FROM lms.xapi_statements ORDER BY id") == [(target, True), (voider, False)]


def test_a_statement_that_voids_a_voider_is_refused(pipeline: Pipeline) -> None:
    connect(more='"id" = { column = "Id" }\n"object.objectType" = { column = "Type" }')
    header = "Id,Type," + CSV_HEADER
    target = "11111111-1111-4111-8111-111111111111"
    voider = "22222222-2222-4222-8222-222222222222"
    third = "33333333-3333-4333-8333-333333333333"
    run = drop_and_run(
        pipeline,
        "a.csv",
        header
        + f"{target},Activity,ann@x.com,{COMPLETED},https://x.test/c1,,,2026-11-01\n"
        + f"{voider},StatementRef,ann@x.com,{VOIDED},{target},,,2026-11-02\n"
        + f"{third},StatementRef,ann@x.com,{VOIDED},{voider},,,2026-11-03\n",
    )
    assert errors(run["run_id"]) == [(4, "Id", "voids_voider", True)]
    assert sql("SELECT id::text, voided FROM lms.xapi_statements ORDER BY id") == [(target, True), (voider, False)]


def test_completions_on_courses_reach_progress_and_skills_forward_only(pipeline: Pipeline) -> None:
    people(pipeline)
    c1 = course_with_skill("P1", "https://x.test/c1")
    c2 = course_with_skill("P2", "https://x.test/other-url", skill="Writing")
    connect(extra='activity_map = { "https://lrs.test/act/2" = "hmm:P2" }')
    run = drop_and_run(
        pipeline,
        "a.csv",
        CSV_HEADER
        + f"ann@x.com,{COMPLETED},https://x.test/c1,0.8,true,2026-11-01T09:00:00Z\n"
        + "ann@x.com,http://adlnet.gov/expapi/verbs/passed,https://lrs.test/act/2,,,2026-11-02\n"
        + f"bob@x.com,{EXPERIENCED},https://x.test/c1,,,2026-11-03\n"  # not a completion verb
        + f"carol@x.com,{COMPLETED},https://x.test/c1,,,2026-11-03\n"  # unknown learner: a warning
        + f"bob@x.com,{COMPLETED},https://x.test/not-a-course,,,2026-11-03\n",
    )
    assert run["status"] == "completed_with_errors", run
    assert errors(run["run_id"]) == [(5, "Email", "unknown_learner", False)]
    assert run["content"]["progress_written"] == 2
    assert sql(
        "SELECT u.email, p.course_id, p.status, p.completed_on::text, p.score FROM lms.learner_progress p"
        " JOIN lms.users u ON u.id = p.user_id ORDER BY p.course_id"
    ) == [("ann@x.com", c1, "completed", "2026-11-01", 80), ("ann@x.com", c2, "completed", "2026-11-02", None)]
    assert sql("SELECT s.name FROM lms.user_skills us JOIN lms.skills s ON s.id = us.skill_id ORDER BY 1") == [
        ("Listening",),
        ("Writing",),
    ]
    assert len(stored()) == 5  # every valid statement is stored, course or not


def test_voiding_a_completion_keeps_progress_unless_voiding_reverts(pipeline: Pipeline) -> None:
    for reverts in (False, True):
        sql("TRUNCATE lms.xapi_statements, lms.learner_progress, lms.user_skills")
        people(pipeline)
        if reverts is False:
            course_with_skill("P1", "https://x.test/c1")
        connect(
            extra=f"voiding_reverts = {str(reverts).lower()}",
            more='"id" = { column = "Id" }\n"object.objectType" = { column = "Type" }',
        )
        header = "Id,Type," + CSV_HEADER
        target = "11111111-1111-4111-8111-111111111111"
        drop_and_run(
            pipeline,
            f"a{reverts}.csv",
            header + f"{target},Activity,ann@x.com,{COMPLETED},https://x.test/c1,,,2026-11-01\n",
        )
        assert sql("SELECT status FROM lms.learner_progress") == [("completed",)]
        drop_and_run(
            pipeline,
            f"b{reverts}.csv",
            header + f"22222222-2222-4222-8222-22222222222{int(reverts)},StatementRef,ann@x.com,{VOIDED},{target},,,"
            "2026-11-02\n",
        )
        expected = [("in_progress", 0)] if reverts else [("completed", 1)]
        assert sql("SELECT p.status, (SELECT count(*) FROM lms.user_skills) FROM lms.learner_progress p") == expected


FILTER_ROWS = (
    "Email,Verb,Activity,Score\n"
    f"ann@x.com,{COMPLETED},https://x.test/c1,10\n"
    f"bob@x.com,{EXPERIENCED},https://x.test/c2,9\n"
    f"ann@x.com,{EXPERIENCED},https://x.test/c3,\n"
)


@pytest.mark.parametrize(
    ("op", "value", "kept"),
    [
        ("eq", f'"{COMPLETED}"', [2]),
        ("ne", f'"{COMPLETED}"', [3, 4]),
        ("contains", '"c2"', [3]),
        ("gt", "9", [2]),
        ("gte", "9", [2, 3]),
        ("lt", "10", [3]),
        ("lte", "10", [2, 3]),
        ("in", '["https://x.test/c1", "https://x.test/c3"]', [2, 4]),
        ("empty", None, [4]),
        ("not_empty", None, [2, 3]),
    ],
)
def test_filters_of_each_op_keep_only_rows_where_they_hold(
    pipeline: Pipeline, op: str, value: str | None, kept: list[int]
) -> None:
    column = {"eq": "Verb", "ne": "Verb", "contains": "Activity", "in": "Activity"}.get(op, "Score")
    toml = f"""
[[connections]]
name = "lrs"
kind = "xapi"

[[connections.filters]]
name = "f"
column = "{column}"
op = "{op}"
{"" if value is None else f"value = {value}"}

[connections.xapi]
"actor.mbox" = {{ column = "Email" }}
"verb.id" = {{ column = "Verb" }}
"object.id" = {{ column = "Activity" }}
"""
    apply_connections(load_connections_toml(toml))
    run = drop_and_run(pipeline, "f.csv", FILTER_ROWS)
    assert run["status"] == "completed", run
    assert [r["line"] for r in stored()] == kept
    assert run["content"]["statements_filtered"] == 3 - len(kept)


def test_a_file_not_named_as_the_source_file_is_refused(pipeline: Pipeline) -> None:
    connect(extra='source_file = "activity.csv"')
    run = drop_and_run(pipeline, "other.csv", CSV_HEADER + f"ann@x.com,{COMPLETED},https://x.test/c1,,,\n")
    assert run["status"] == "failed"
    assert "activity.csv" in (run["error"] or "")
    ok = drop_and_run(pipeline, "activity.csv", CSV_HEADER + f"ann@x.com,{COMPLETED},https://x.test/c1,,,\n")
    assert ok["status"] == "completed", ok
