"""Totara's HR Import fixtures (../shared/samples/totara, see SOURCES.md) imported as hierarchy
bundles through mappings of Totara's columns: units and positions with parents, users with
their details, the sanity check's refusals, a manager cycle, Windows-1250, a BOM and tabs."""

from __future__ import annotations

import csv
import shutil
from typing import Any

import pytest
from psycopg import sql as q

from producers import queries
from producers.commands import apply_connections
from schemas.connections import load_connections_toml
from tests.conftest import SAMPLES, sql
from tests.stubpipeline import Pipeline

pytestmark = pytest.mark.conformance

TOTARA = SAMPLES / "totara" / "totara12.9.1"
TREE = """
[connections.files.{part}]
name = "{name}"
[connections.files.{part}.mapping]
key = "idnumber"
name = "fullname"
parent = "parentidnumber"
framework = "frameworkidnumber"
"""
USERS = """
[connections.files.user]
name = "{name}"
{options}
[connections.files.user.mapping]
key = "idnumber"
email = "email"
first_name = "firstname"
last_name = "lastname"
username = "username"
{extra}
"""


def bundle(pipeline: Pipeline, files: dict[str, str], **user: str) -> dict[str, Any]:
    """One connection whose parts are the given files (part -> Totara fixture), then one sync."""
    toml = f'[[connections]]\nname = "totara"\nkind = "hierarchy"\nparts = {list(files)!r}\n'.replace("'", '"')
    for part, name in files.items():
        if part == "user":
            toml += USERS.format(name=name, options=user.get("options", ""), extra=user.get("extra", ""))
        else:
            toml += TREE.format(part=part, name=name)
        dst = pipeline.settings.drop_dir / "import" / "hierarchy" / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(TOTARA / name, dst)
    apply_connections(load_connections_toml(toml))
    return pipeline.sync("totara")


def rows(name: str, encoding: str = "utf-8-sig", delimiter: str = ",") -> list[dict[str, str]]:
    with open(TOTARA / name, encoding=encoding, newline="") as f:
        return [{k.strip().strip('"'): v for k, v in r.items()} for r in csv.DictReader(f, delimiter=delimiter)]


def tree(table: str) -> dict[str, tuple[Any, ...]]:
    """``table`` as schema.name, e.g. lms.org_units."""
    query = q.SQL(
        """SELECT t.external_id, t.name, p.external_id, t.attributes ->> 'framework', t.active
           FROM {table} t LEFT JOIN {table} p ON p.id = t.parent_id"""
    ).format(table=q.Identifier(*table.split(".")))
    return {r[0]: r[1:] for r in sql(query)}


def test_organisations_positions_and_users_as_one_bundle(pipeline: Pipeline) -> None:
    run = bundle(
        pipeline,
        {
            "org": "organisations_parent_sanity_check_5.csv",
            "pos": "positions_parent_sanity_check_5.csv",
            "user": "users.01.csv",
        },
        extra='city = "city"\ncountry = "country"',
    )
    assert run["status"] == "completed", queries.errors(run["run_id"])
    for table, name in (("lms.org_units", "organisations_parent_sanity_check_5.csv"),
                        ("lms.positions", "positions_parent_sanity_check_5.csv")):  # fmt: skip
        assert tree(table) == {
            r["idnumber"]: (r["fullname"], r["parentidnumber"] or None, r["frameworkidnumber"], True)
            for r in rows(name)
        }
    assert {
        r[0]: r[1:]
        for r in sql("SELECT external_id, email, first_name, last_name, attributes FROM lms.users WHERE active")
    } == {
        r["idnumber"]: (
            r["email"],
            r["firstname"],
            r["lastname"],
            {"username": r["username"], "city": r["city"], "country": r["country"]},
        )
        for r in rows("users.01.csv")
    }


def test_the_sanity_check_refuses_a_unit_whose_parent_exists_nowhere(pipeline: Pipeline) -> None:
    run = bundle(pipeline, {"org": "organisations_parent_sanity_check_4.csv"})
    assert run["status"] == "completed_with_errors"
    (error,) = queries.errors(run["run_id"])
    assert (error["line"], error["column_name"], error["code"], error["value"]) == (6, "parentidnumber",
                                                                                    "unknown_parent", "O6")  # fmt: skip
    assert "no parent unit has the id O6 in this bundle or in the platform" in error["message"]
    assert sorted(tree("lms.org_units")) == ["O1", "O2", "O3", "O4"]


def test_circular_management_is_refused_with_its_chain(pipeline: Pipeline) -> None:
    run = bundle(pipeline, {"user": "user_circular_management_1.csv"}, extra='manager = "manageridnumber"')
    errors = {e["line"]: e for e in queries.errors(run["run_id"])}
    assert sorted(errors) == [3, 4]
    assert "the manager chain has a cycle: imp002 → imp003 → imp002" in errors[3]["message"]
    assert "the manager chain has a cycle: imp003 → imp002 → imp003" in errors[4]["message"]
    assert sql("SELECT external_id FROM lms.users") == [("imp001",)]


@pytest.mark.parametrize(
    ("name", "options", "encoding", "delimiter"),
    [
        ("user_win1250.csv", 'encoding = "cp1250"', "cp1250", ","),
        ("user_utf8_bom.csv", "", "utf-8-sig", ","),
        ("users-with-tab-delimiter.csv", 'delimiter = "\\t"', "utf-8", "\t"),
    ],
)
def test_encodings_byte_order_marks_and_tabs(
    pipeline: Pipeline, name: str, options: str, encoding: str, delimiter: str
) -> None:
    run = bundle(pipeline, {"user": name}, options=options)
    assert run["status"] == "completed", queries.errors(run["run_id"])
    expected = {r["idnumber"]: (r["email"], r["firstname"], r["lastname"]) for r in rows(name, encoding, delimiter)}
    assert {r[0]: r[1:] for r in sql("SELECT external_id, email, first_name, last_name FROM lms.users")} == expected
    assert any(not v[1].isascii() for v in expected.values()) or delimiter == "\t"
