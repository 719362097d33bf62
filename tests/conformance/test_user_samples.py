"""Real user feeds from the products we replace (../shared/samples, see its SOURCES.md), imported
through mappings as their admins would configure them. Read in place, never copied into the repo."""

from __future__ import annotations

import shutil
from typing import Any

import pytest

from producers import queries
from producers.commands import apply_connections
from schemas.connections import load_connections_toml
from tests.conftest import SAMPLES, sql
from tests.stubpipeline import Pipeline

pytestmark = pytest.mark.conformance

ALM = SAMPLES / "alm" / "user-import"
MOODLE = SAMPLES / "moodle" / "uploaduser"


def connection(name: str, path: str, mapping: dict[str, str]) -> None:
    lines = [f'[[connections]]\nname = "{name}"\nkind = "users"\npath = "{path}"\n[connections.mapping]']
    lines += [f'{k} = "{v}"' for k, v in mapping.items()]
    apply_connections(load_connections_toml("\n".join(lines)))


def import_sample(pipeline: Pipeline, src: Any, rel: str) -> int:
    dst = pipeline.settings.drop_dir / rel
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    from producers import registry

    registry.scan(pipeline.settings)
    pipeline.drain()
    return int(sql("SELECT max(id) FROM sync.runs")[0][0])


def store() -> dict[str, tuple[Any, ...]]:
    rows = sql(
        """SELECT u.email, u.first_name, u.last_name, m.email, u.attributes
           FROM lms.users u LEFT JOIN lms.users m ON m.id = u.manager_id"""
    )
    return {r[0]: r[1:] for r in rows}


def test_alm_sample_with_cr_line_breaks_and_a_company_name_as_the_top_manager(pipeline: Pipeline) -> None:
    connection(
        "alm",
        "alm/*.csv",
        {
            "email": "Employee's Email",
            "full_name": "Employee's Name",
            "designation": "Employee's Profile/Designation",
            "manager": "Manager's ID / Email",
        },
    )
    run_id = import_sample(pipeline, ALM / "LearningManagerSampleCSV.csv", "alm/LearningManagerSampleCSV.csv")
    assert store() == {
        "howardwaltersprime@gmail.com": (
            None,
            None,
            None,
            {"full_name": "Howard Walters", "designation": "Head of Training"},
        ),
        "jimsmithprime@gmail.com": (
            None,
            None,
            "howardwaltersprime@gmail.com",
            {"full_name": "Jim Smith", "designation": "CEO"},
        ),
        "elainegoodmanprime@gmail.com": (
            None,
            None,
            "howardwaltersprime@gmail.com",
            {"full_name": "Elaine Goodman", "designation": "Instructional Designer"},
        ),
        "barabarajonesprime@gmail.com": (
            None,
            None,
            "elainegoodmanprime@gmail.com",
            {"full_name": "Barabara Jones", "designation": "Director Design"},
        ),
        "lauravidalprime@gmail.com": (
            None,
            None,
            "elainegoodmanprime@gmail.com",
            {"full_name": "Laura Vidal", "designation": "Designer"},
        ),
    }
    errors = queries.errors(run_id)
    assert [(e["line"], e["column"], e["code"], e["value"]) for e in errors] == [
        (2, 4, "invalid_manager", "Company name")  # as the file has it
    ]
    assert queries.history()[0]["status"] == "completed_with_errors"


def test_alm_zip_member_and_bom_email_list(pipeline: Pipeline) -> None:
    connection(
        "captivate",
        "captivate/*.csv",
        {
            "email": "Employee's E-mail",
            "full_name": "Employee Name",
            "manager": "Email of the Employee's Manager",
        },
    )
    import_sample(
        pipeline,
        ALM / "learning-manager-sample-csv_unzipped" / "Captivate-Prime-Sample-CSV.csv",
        "captivate/sample.csv",
    )
    assert len(store()) == 5 and store()["lauravidalprime@gmail.com"][2] == "elainegoodmanprime@gmail.com"

    connection("emails", "emails/*.csv", {"email": "Email"})
    run_id = import_sample(pipeline, ALM / "userEmail.csv", "emails/userEmail.csv")
    run = queries.history()[0]
    assert run["run_id"] == run_id and run["status"] == "completed"
    assert run["counts"]["created"] == 6 and "abc@gmail.com" in store()


def test_alm_users_csv_with_blank_header_columns_root_managers_and_deleted_people(pipeline: Pipeline) -> None:
    connection(
        "kb-users",
        "kb/*.csv",
        {
            "email": "email",
            "full_name": "name",
            "manager": "manager",
            "job": "job",
            "state": "User Registration State",
        },
    )
    run_id = import_sample(pipeline, ALM / "users_unzipped" / "Users.csv", "kb/Users.csv")
    s = store()
    active = dict(sql("SELECT email, active FROM lms.users"))
    assert {e: (m, a["full_name"], active[e]) for e, (_f, _l, m, a) in s.items()} == {
        "primeconnector+user35@gmail.com": (None, "User1", True),
        "user2@xyz.com": ("user3@xyz.com", "User2", False),  # DELETED in the sample
        "user3@xyz.com": (None, "User3", True),
        "user4@xyz.com": ("user3@xyz.com", "User4", True),
        "user5@xyz.com": ("user3@xyz.com", "User5", True),
    }
    assert not any("state" in a for *_, a in s.values()), "the state is the person's, not a profile attribute"
    assert [(e["line"], e["code"], e["value"]) for e in queries.errors(run_id)] == [
        (2, "invalid_manager", "ROOT"),
        (4, "invalid_manager", "ROOT"),
    ]


# An empty list would make pytest skip the test in silence: no samples is one failing case instead.
MOODLE_FILES: list[str | None] = [*sorted(p.name for p in MOODLE.glob("*.csv"))] or [None]


@pytest.mark.parametrize("name", MOODLE_FILES)
def test_every_moodle_upload_user_file_imports_without_its_passwords(pipeline: Pipeline, name: str | None) -> None:
    assert name is not None, f"no Moodle upload-user samples in {MOODLE}"
    connection(
        "moodle",
        "moodle/*.csv",
        {
            "email": "email",
            "first_name": "firstname",
            "last_name": "lastname",
            "username": "username",
        },
    )
    import_sample(pipeline, MOODLE / name, f"moodle/{name}")
    run = queries.history()[0]
    with open(MOODLE / name, encoding="utf-8-sig") as f:
        data_rows = [ln for ln in f.read().splitlines()[1:] if ln.strip()]
    assert run["status"] == "completed", queries.errors(run["run_id"])
    assert run["counts"]["created"] == len(data_rows)
    for email, (first, last, _mgr, attrs) in store().items():
        assert first and last and set(attrs) == {"username"}, email
    assert not sql("SELECT 1 FROM lms.users WHERE attributes::text ILIKE '%secret%'")
