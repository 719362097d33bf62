"""xAPI rows that once failed their whole file (retried, then dead-lettered, no line named): an
instant that leaves years 1..9999 when moved to UTC, JSON nested thousands of levels, a NUL or a
lone surrogate PostgreSQL's jsonb refuses, numbers JSON has no room for. Each is now one row error
on its line and column, on the vector path as on the row path, and the rest of the file imports.
Also the spec's comparison of ids (as UUIDs), and the warning for an actor without an mbox."""

from __future__ import annotations

import json
from typing import Any

import pytest

from producers.commands import apply_connections
from schemas.connections import load_connections_toml
from tests.conftest import sql
from tests.stubpipeline import HEADER, Pipeline
from tests.xapidata import COMPLETED, CSV_HEADER, connect, course_with_skill, drop_and_run, errors

WHOLE = """
[[connections]]
name = "lrs-whole"
kind = "xapi"
statement_column = "Statement JSON"
"""
GOOD = {"actor": {"mbox": "mailto:ann@x.com"}, "verb": {"id": COMPLETED}, "object": {"id": "https://x.test/c1"}}


def cell(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def with_extension(value_json: str) -> str:
    """GOOD with one context extension whose value is the given JSON text (written by hand)."""
    return json.dumps(GOOD)[:-1] + ',"context":{"extensions":{"https://x.test/ext":' + value_json + "}}}"


@pytest.mark.parametrize("vector", [True, False], ids=["vector_path", "row_path"])
@pytest.mark.parametrize(
    ("when", "score", "column", "code"),
    [
        ("0001-01-01T00:30:00+01:00", "0.5", "When", "invalid_date"),  # year 0 in UTC
        ("9999-12-31T23:30:00-01:00", "0.5", "When", "invalid_date"),  # year 10000 in UTC
        ("2026-11-01T10:00:00Z", "1e400", "Raw", "invalid_number"),  # JSON has no Infinity
    ],
)
def test_a_mapped_value_beyond_what_the_store_holds_is_one_row_error_and_the_rest_imports(
    pipeline: Pipeline, vector: bool, when: str, score: str, column: str, code: str
) -> None:
    pipeline.settings.vector_transform = vector
    connect(more='"result.score.raw" = { column = "Raw", type = "number" }')
    run = drop_and_run(
        pipeline,
        "a.csv",
        CSV_HEADER.replace("\n", ",Raw\n")
        + f"ann@x.com,{COMPLETED},https://x.test/c1,0.5,true,{when},{score}\n"
        + f"bob@x.com,{COMPLETED},https://x.test/c1,0.5,true,2026-11-01T10:00:00Z,3\n",
    )
    assert run["status"] == "completed_with_errors", run
    assert errors(run["run_id"]) == [(2, column, code, True)]
    assert sql("SELECT source_line, actor_email FROM lms.xapi_statements") == [(3, "bob@x.com")]
    (message,) = sql("SELECT message FROM sync.row_errors")[0]
    assert column in message and when not in message and score not in message


@pytest.mark.parametrize(
    ("statement", "code", "says"),
    [
        (json.dumps({**GOOD, "timestamp": "0001-01-01T00:30:00+01:00"}), "invalid_statement", "years 1 and 9999"),
        (json.dumps({**GOOD, "timestamp": "9999-12-31T23:30:00-01:00"}), "invalid_statement", "years 1 and 9999"),
        (with_extension("[" * 5000 + "]" * 5000), "invalid_json", "levels deep"),
        (with_extension("[" * 150 + "]" * 150), "invalid_json", "levels deep"),
        (json.dumps({**GOOD, "result": {"response": "a\u0000b"}}), "invalid_statement", "NUL"),
        (with_extension('{"a\\u0000": 1}'), "invalid_statement", "NUL"),
        (with_extension('"\\ud800"'), "invalid_statement", "surrogate"),
        (with_extension("NaN"), "invalid_json", "not valid JSON"),
        (with_extension("1e400"), "invalid_json", "double"),
        (with_extension("0e-20000"), "invalid_json", "double"),
        (with_extension("9" * 400), "invalid_json", "double"),
        (with_extension("-" + "9" * 5000), "invalid_json", "double"),
    ],
    ids=[
        "year_0",
        "year_10000",
        "nested_5000",
        "nested_150",
        "nul",
        "nul_key",
        "surrogate",
        "nan",
        "1e400",
        "0e-20000",
        "int_400_digits",
        "int_5000_digits",
    ],
)
def test_a_whole_statement_the_store_or_the_validator_cannot_take_is_one_row_error(
    pipeline: Pipeline, statement: str, code: str, says: str
) -> None:
    apply_connections(load_connections_toml(WHOLE))
    body = "Statement JSON\n" + cell(statement) + "\n" + cell(json.dumps(GOOD)) + "\n"
    run = drop_and_run(pipeline, "a.csv", body)
    assert run["status"] == "completed_with_errors", run
    assert errors(run["run_id"]) == [(2, "Statement JSON", code, True)]
    (message, column_no) = sql("SELECT message, column_no FROM sync.row_errors")[0]
    assert says in message and column_no == 1
    assert sql("SELECT source_line FROM lms.xapi_statements") == [(3,)]


def test_the_same_statement_with_its_id_in_upper_case_is_unchanged_not_a_conflict(pipeline: Pipeline) -> None:
    connect(more='"id" = { column = "Id" }')
    header = "Id," + CSV_HEADER
    sid = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
    row = f"ann@x.com,{COMPLETED},https://x.test/c1,0.5,true,2026-11-01\n"
    drop_and_run(pipeline, "a.csv", header + f"{sid},{row}")
    # Again in upper case, in another file and twice within one: the same UUID, the same statement.
    run = drop_and_run(pipeline, "b.csv", header + f"{sid.upper()},{row}" + f"{sid.upper()},{row}")
    assert errors(run["run_id"]) == []
    assert run["status"] == "completed", run
    assert run["counts"]["unchanged"] == 2
    assert sql("SELECT id::text, source_line FROM lms.xapi_statements") == [(sid, 2)]


def test_a_completion_by_an_actor_without_an_mbox_says_so(pipeline: Pipeline) -> None:
    pipeline.import_files(("import/user/internal/people.csv", HEADER + "ann@x.com,Ann,A,,S\n"))
    course_with_skill("P1", "https://x.test/c1")
    apply_connections(load_connections_toml(WHOLE))
    by_account: dict[str, Any] = {
        **GOOD,
        "actor": {"account": {"homePage": "https://lms.x.test", "name": "ann"}},
    }
    by_stranger = {**GOOD, "actor": {"mbox": "mailto:carol@x.com"}}
    body = "Statement JSON\n" + cell(json.dumps(by_account)) + "\n" + cell(json.dumps(by_stranger)) + "\n"
    run = drop_and_run(pipeline, "a.csv", body)
    assert errors(run["run_id"]) == [
        (2, "Statement JSON", "unknown_learner", False),
        (3, "Statement JSON", "unknown_learner", False),
    ]
    account, stranger = (m for (m,) in sql("SELECT message FROM sync.row_errors ORDER BY line"))
    assert "has no mbox" in account and "e-mail" not in account.split(";")[0].replace("by e-mail", "")
    assert "no learner has this actor's e-mail" in stranger
