"""Column names are the file's text: a '%', a quote or a brace in one must reach the row errors as
it is and never break the statement that checks the rows (psycopg reads '%' as a placeholder)."""

from __future__ import annotations

from producers import queries
from producers.commands import apply_connections
from schemas.connections import load_connections_toml
from tests.conftest import sql
from tests.contentdata import META_HEADER, PROGRESS_HEADER, course, progress
from tests.data import connect
from tests.stubpipeline import HEADER, Pipeline

USERS = """
[[connections]]
name = "pct"
kind = "users"
path = "import/user/pct/*.csv"
required = ["email", "score"]

[connections.mapping]
email = "E-mail (100%)"
manager = "Manager {%s}"
score = "Assessment Score (%)"
fte = "FTE %"
"""


def errors(run_id: int) -> list[tuple[int | None, str | None, str]]:
    return [(e["line"], e["column_name"], e["code"]) for e in queries.errors(run_id)]


def test_a_users_mapping_with_percent_signs_in_column_names_imports_and_reports_rows(pipeline: Pipeline) -> None:
    apply_connections(load_connections_toml(USERS))
    feed = (
        "E-mail (100%),Manager {%s},Assessment Score (%),FTE %\n"
        "a@x.com,,90,50\n"
        "not-an-email,,80,50\n"  # line 3: invalid e-mail, reported under its column
        "b@x.com,B@x.com,,100\n"  # line 4: score required but empty; own manager
    )
    run_id = pipeline.import_files(("import/user/pct/a.csv", feed))
    run = queries.history()[0]
    assert run["status"] == "completed_with_errors", run["error"]
    assert sql("SELECT email, attributes FROM lms.users") == [("a@x.com", {"score": "90", "fte": "50"})]
    assert errors(run_id) == [(3, "E-mail (100%)", "invalid_email"), (4, "Assessment Score (%)", "required")]


def test_a_hierarchy_mapping_with_percent_signs_in_column_names_imports_and_reports_rows(pipeline: Pipeline) -> None:
    connect(
        'parts = ["user"]',
        mappings="""
[connections.files.user.mapping]
key = "Employee ID (%)"
email = "Email %"
fte = "FTE %"
""",
        rules="",
    )
    pipeline.drop("import/hierarchy/user.csv", "Employee ID (%),Email %,FTE %\ne1,e1@x.com,50\n,e2@x.com,100\n")
    run = pipeline.sync("hr")
    assert run["status"] == "completed_with_errors", run["error"]
    assert sql("SELECT external_id, attributes FROM lms.users") == [("e1", {"fte": "50"})]
    assert errors(run["run_id"]) == [(3, "Employee ID (%)", "required")]
    assert "'Employee ID (%)' is empty" in queries.errors(run["run_id"])[0]["message"]


def test_a_content_mapping_renaming_a_column_with_a_percent_sign_imports_and_reports_rows(pipeline: Pipeline) -> None:
    apply_connections(
        load_connections_toml(
            '[[connections]]\nname = "hmm"\nkind = "hmm"\ntrigger = "on_schedule"\n'
            '[connections.mapping]\nscore = "Assessment Score (%)"\n'
        )
    )
    pipeline.import_files(("import/user/internal/people.csv", HEADER + "ann@x.com,Ann,A,,S\n"))
    pipeline.drop("import/hmm/hmm12_metadata.csv", META_HEADER + course("P1", "Time Management"))
    pipeline.drop(
        "import/hmm/client_hmm12_20240601.csv",
        PROGRESS_HEADER.replace("Assessment Score", "Assessment Score (%)")
        + progress("ann@x.com", "P1", "6/1/2024")
        + "ann@x.com,P1,6/2/2024,Some Title,,,6/2/2024,lots,,,U,L,ann@x.com\n",  # line 3: the score is not a number
    )
    run = pipeline.sync("hmm")
    assert run["status"] == "completed_with_errors", run["error"]
    assert run["content"]["progress_written"] == 1
    assert errors(run["run_id"]) == [(3, "Assessment Score (%)", "invalid_number")]
