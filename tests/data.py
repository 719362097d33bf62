"""Shared builders for the tests: the users feed of tests/stubpipeline.py as connections and files,
the hierarchy bundle (units, positions, people and group rules), runs with row errors, and the
console's audit rows. Test modules import these from here, never from one another."""

from __future__ import annotations

from datetime import date
from typing import Any

from producers.commands import apply_connections
from schemas.connections import load_connections_toml
from schemas.rules import load_rules_toml
from tests.conftest import sql
from tests.stubpipeline import HEADER, USERS_TOML, Pipeline
from workers.rules import apply_rules

MAPPINGS = """
[connections.files.org.mapping]
key = "Unit ID"
name = "Unit"
parent = "Parent ID"
region = "Region"

[connections.files.pos.mapping]
key = "Position ID"
name = "Position"

[connections.files.user.mapping]
key = "Employee ID"
email = "Email"
first_name = "First"
last_name = "Last"
unit = "Unit ID"
position = "Position ID"
manager = "Manager ID"
country = "Country"
"""


RULES = """
[[rules]]
group = "Sales and below"
unit = "SALES"
descendants = true
programs = ["Sales onboarding"]

[[rules]]
group = "Team of boss2"
manager = "boss2"
"""


ORG = "Unit ID,Unit,Parent ID,Region\n"


POS = "Position ID,Position\n"


USER = "Employee ID,Email,First,Last,Unit ID,Position ID,Manager ID,Country\n"


# Parents after their children on purpose: order within a file does not matter.
UNITS = ORG + "EAST-1,East One,EAST,EU\nEAST,East,SALES,EU\nSALES,Sales,,\nOPS,Operations,,\n"


POSITIONS = POS + "REP,Sales rep\nMGR,Manager\n"


def person(key: str, unit: str, manager: str = "", position: str = "REP") -> str:
    return f"{key},{key}@x.com,{key.title()},Doe,{unit},{position},{manager},NZ\n"


PEOPLE = (
    USER
    + person("e1", "EAST-1", "m1")
    + person("m1", "EAST", "boss1", "MGR")
    + person("boss1", "SALES", "", "MGR")
    + person("boss2", "OPS", "", "MGR")
    + person("m2", "OPS", "boss2", "MGR")
)


def connect(extra: str = "", mappings: str = MAPPINGS, rules: str = RULES) -> None:
    apply_connections(load_connections_toml(f'[[connections]]\nname = "hr"\nkind = "hierarchy"\n{extra}\n{mappings}'))
    apply_rules(load_rules_toml(rules))


def sync(pipeline: Pipeline, files: dict[str, str]) -> dict[str, Any]:
    for name, text in files.items():
        pipeline.drop(f"import/hierarchy/{name}", text)
    return pipeline.sync("hr")


def apply(extra: str = "", mapping_extra: str = "") -> None:
    top, mapping = USERS_TOML.split("[connections.mapping]")
    apply_connections(load_connections_toml(top + extra + "\n[connections.mapping]" + mapping + mapping_extra))


def people(n: int, start: int = 0, tag: str = "S") -> str:
    return HEADER + "".join(f"p{i}@x.com,P{i},L,,{tag}\n" for i in range(start, start + n))


def active() -> int:
    return int(sql("SELECT count(*) FROM lms.users WHERE active")[0][0])


SINCE = date(2026, 11, 1)


FEED = HEADER + "a@x.com,A,A,,S\nb@x.com,B,B,a@x.com,S\n"


def a_run(settings: Any, file_name: str = "import/user/internal/a.csv") -> int:
    """A finished run that read one file, as the history keeps it."""
    apply_connections(load_connections_toml(USERS_TOML))
    ((conn_id,),) = sql("SELECT id FROM sync.connections")
    ((file_id,),) = sql(
        """INSERT INTO sync.feed_files (connection_id, original_path, stored_path, sha256, size_bytes, status)
           VALUES (%s, %s, 'gone', 'x', 1, 'imported') RETURNING id""",
        (conn_id, file_name),
    )
    ((run_id,),) = sql(
        """INSERT INTO sync.runs (connection_id, connection_name, kind, trigger, status, config,
                                  started_at, finished_at)
           VALUES (%s, 'hr-users', 'users', 'file_drop', 'completed_with_errors', '{}', now(), now())
           RETURNING id""",
        (conn_id,),
    )
    sql("INSERT INTO sync.run_files (run_id, file_id, ordinal, status) VALUES (%s, %s, 0, 'parsed')", (run_id, file_id))
    return int(run_id)


def row_error(run_id: int, file_name: str, message: str, value: str | None, column: str = "Email") -> None:
    sql(
        """INSERT INTO sync.row_errors (run_id, file_name, line, column_no, column_name, code, message, value, rejected)
           VALUES (%s, %s, 2, 1, %s, 'invalid_email', %s, %s, true)""",
        (run_id, file_name, column, message, value),
    )


def audit_rows() -> list[tuple[Any, ...]]:
    return sql("SELECT admin, action, target, outcome FROM sync.audit ORDER BY id")


def second_users_connection(name: str = "crm-users", folder: str = "import/crm") -> str:
    """Another users connection like hr-users, reading ``folder``; returns the folder's drop path prefix."""
    text = USERS_TOML.replace('name = "hr-users"', f'name = "{name}"').replace(
        "import/user/internal/*.csv", f"{folder}/*.csv"
    )
    apply_connections(load_connections_toml(text))
    return folder + "/"
