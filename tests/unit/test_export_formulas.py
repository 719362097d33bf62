"""Exports and CSV injection: a learner's name, a course title, a skill or a profile attribute that
starts with ``= + - @``, tab or CR reaches the transcript, skills and xAPI files with a leading ``'``
(as the error CSV's cells do), numbers stay numbers, and ``escape_formulas = false`` gives the
values as stored."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg import sql as psql

from producers.commands import apply_connections
from schemas.connections import load_connections_toml
from tests.conftest import sql
from tests.data import SINCE
from tests.stubpipeline import Pipeline
from tests.unit.exportdata import EXPORTS_TOML, exported, learning, people, read_rows
from workers.files.cells import csv_cell, sql_cell

#: Values a spreadsheet would run, one per starting character of the rule.
FIRST = '=HYPERLINK("http://evil.test")'
LAST = "+1+cmd|' /C calc'!A0"
TITLE = "-2+3"
SKILL = "@SUM(A1:A9)"
DEPARTMENT = "\t=1+1"
MANAGER_FIRST = "\r=2"


def feed_values() -> None:
    """Zoë's name, her manager's, her department, a course title and a skill, all formulas; Zoë's
    quiz score is negative (a number: left alone)."""
    sql(
        "UPDATE lms.users SET first_name = %s, last_name = %s, attributes = jsonb_build_object('department', %s::text)"
        " WHERE email = 'zoe@x.com'",
        (FIRST, LAST, DEPARTMENT),
    )
    sql("UPDATE lms.users SET first_name = %s WHERE email = 'ann@x.com'", (MANAGER_FIRST,))
    sql("UPDATE lms.courses SET title = %s WHERE external_id = 'P1'", (TITLE,))
    sql("UPDATE lms.skills SET name = %s WHERE name = 'Coaching'", (SKILL,))
    sql("UPDATE lms.learner_progress SET score = -5")


def export_three(pipeline: Pipeline, extra: str = "") -> dict[str, list[dict[str, str]]]:
    toml = EXPORTS_TOML.replace('kind = "xapi_export"', 'kind = "xapi_export"' + extra)
    for kind in ("transcript_export", "skills_export"):
        toml = toml.replace(f'kind = "{kind}"', f'kind = "{kind}"' + extra)
    apply_connections(load_connections_toml(toml))
    people(pipeline)
    learning()
    feed_values()
    files = {}
    for name in ("transcripts", "skills", "xapi"):
        run = pipeline.sync(name, SINCE)
        assert run["status"] == "completed", run
        files[name] = read_rows(exported(pipeline, run))
    return files


def zoe(rows: list[dict[str, str]], email_column: str = "email") -> dict[str, str]:
    """Zoë's row; in the skills file, the one of the skill renamed SKILL."""
    (row,) = [r for r in rows if r[email_column] == "zoe@x.com" and r.get("Skill", SKILL).endswith(SKILL)]
    return row


def test_formula_cells_in_the_transcript_skills_and_xapi_exports_get_a_leading_quote(pipeline: Pipeline) -> None:
    files = export_three(pipeline)
    name, manager = f"'{FIRST} {LAST}", f"'{MANAGER_FIRST} Archer"
    t = zoe(files["transcripts"])
    assert (t["Name"], t["Course"], t["LP/Certification/Course"]) == (name, f"'{TITLE}", f"'{TITLE}")
    assert (t["department"], t["Manager Name"]) == (f"'{DEPARTMENT}", manager)
    assert t["Quiz Score"] == "-5", "a number is not a formula: left as it is, as the error CSV leaves it"
    s = zoe(files["skills"])
    assert (s["Name"], s["Skill"], s["department"], s["Manager Name"]) == (name, f"'{SKILL}", f"'{DEPARTMENT}", manager)
    x = zoe(files["xapi"], "User Email")
    assert (x["User Name"], x["department"], x["Manager Name"]) == (name, f"'{DEPARTMENT}", manager)
    # Nothing else moved: a cell that starts harmlessly is as stored.
    assert (t["email"], t["Status"], t["userState"]) == ("zoe@x.com", "Completed", "ACTIVE")


def test_escape_formulas_false_writes_the_values_as_stored(pipeline: Pipeline) -> None:
    files = export_three(pipeline, "\nescape_formulas = false")
    t = zoe(files["transcripts"])
    assert (t["Name"], t["Course"], t["department"]) == (f"{FIRST} {LAST}", TITLE, DEPARTMENT)
    assert zoe(files["skills"])["Skill"] == SKILL
    assert zoe(files["xapi"], "User Email")["Manager Name"] == f"{MANAGER_FIRST} Archer"


def test_a_profile_attribute_named_like_a_formula_is_quoted_in_the_header_too(pipeline: Pipeline) -> None:
    apply_connections(load_connections_toml(EXPORTS_TOML))
    people(pipeline)
    learning()
    sql("""UPDATE lms.users SET attributes = attributes || '{"=cost()": "x"}'""")
    run = pipeline.sync("transcripts", SINCE)
    header = exported(pipeline, run).read_text(encoding="utf-8").split("\n", 1)[0].split(",")
    assert "'=cost()" in header and "=cost()" not in header


# Any text PostgreSQL can hold (no NUL, no lone surrogate), and text starting with each character.
_chars = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
_cells = st.one_of(
    st.text(alphabet=_chars, max_size=12),
    st.sampled_from(["=", "+", "-", "@", "\t", "\r"]).flatmap(
        lambda c: st.text(alphabet=_chars, max_size=5).map(lambda s: c + s)
    ),
)


@pytest.mark.usefixtures("database")  # it asks PostgreSQL itself, with no tables of its own
@given(value=_cells)
@settings(max_examples=150, deadline=None)
def test_the_sql_form_of_the_rule_gives_what_csv_cell_gives_for_any_text(value: str) -> None:
    ((got,),) = sql(psql.SQL("SELECT {}").format(sql_cell(psql.SQL("%(v)s::text"))), {"v": value})
    assert got == csv_cell(value)


@pytest.mark.usefixtures("database")  # it asks PostgreSQL itself, with no tables of its own
def test_the_sql_form_leaves_numbers_and_nulls_as_they_are() -> None:
    row: Any = sql(
        psql.SQL("SELECT {}, {}, {}").format(
            sql_cell(psql.SQL("(-5)::numeric")), sql_cell(psql.SQL("-3")), sql_cell(psql.SQL("NULL"))
        )
    )
    assert row == [("-5", "-3", None)]
