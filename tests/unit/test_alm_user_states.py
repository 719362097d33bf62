"""ALM's userState in a users feed: a person the feed brings for the first time already DELETED is
counted as deactivated, not created; the exports keep DELETED apart from SUSPENDED (a person
deactivated otherwise), and a person the feed has active again is ACTIVE."""

from __future__ import annotations

from datetime import date

from producers import queries
from producers.commands import apply_connections
from schemas.connections import load_connections_toml
from schemas.settings import get_settings
from tests.conftest import sql
from tests.stubpipeline import HEADER, USERS_TOML, Pipeline
from tests.unit.exportdata import exported, read_rows

INBOX = "import/user/internal"
STATE_TOML = USERS_TOML.replace('department = "Department"', 'department = "Department"\nstate = "State"')
STATE_HEADER = HEADER.rstrip("\n") + ",State\n"


def test_people_a_feed_brings_already_deleted_are_counted_deactivated_and_exported_as_deleted(
    pipeline: Pipeline,
) -> None:
    apply_connections(
        load_connections_toml(STATE_TOML.replace('kind = "users"', 'kind = "users"\nmax_deactivate = "90%"'))
    )
    first = pipeline.import_files(
        (
            f"{INBOX}/monday.csv",
            STATE_HEADER + "ann@x.com,Ann,Ames,,Sales,ACTIVE\nbob@x.com,Bob,Berg,,Sales,DELETED\n"
            "cid@x.com,Cid,Cole,,Sales,DELETED\ndan@x.com,Dan,Dunn,,Sales,ACTIVE\n",
        )
    )
    run = queries.run_detail(first)
    assert run is not None and run["status"] == "completed", run
    assert (run["counts"]["created"], run["counts"]["deactivated"]) == (2, 2)
    assert run["counts"]["unchanged"] == 0, "people who arrive inactive are inserted, not unchanged"
    # Tuesday: Dan is SUSPENDED, Cid is back.
    pipeline.import_files(
        (
            f"{INBOX}/tuesday.csv",
            STATE_HEADER + "cid@x.com,Cid,Cole,,Sales,ACTIVE\ndan@x.com,Dan,Dunn,,Sales,SUSPENDED\n",
        )
    )
    apply_export()
    sql(
        """INSERT INTO lms.courses (provider, external_id, title) VALUES ('hmm', 'P1', 'Time Management');
           INSERT INTO lms.learner_progress (user_id, course_id, status, updated_at)
           SELECT u.id, c.id, 'not_started', '2026-11-20T10:00:00Z' FROM lms.users u, lms.courses c"""
    )
    states = {r["email"]: r["userState"] for r in read_rows(exported(pipeline, pipeline.sync("t", date(2026, 11, 1))))}
    assert states == {"ann@x.com": "ACTIVE", "bob@x.com": "DELETED", "cid@x.com": "ACTIVE", "dan@x.com": "SUSPENDED"}
    get_settings.cache_clear()


def apply_export() -> None:
    apply_connections(load_connections_toml('[[connections]]\nname = "t"\nkind = "transcript_export"'))
