"""Two connections bringing the same new person: the load's classification may be old news by the
time it applies (a run approved hours later, two loads at once). The person is adopted, never a
UniqueViolation retried with the same stale plan until it is dead-lettered."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
from psycopg.rows import dict_row
from structlog.testing import capture_logs

from producers import queries
from producers.commands import apply_connections, approve
from schemas.connections import load_connections_toml
from tests.conftest import DATABASE_URL, sql
from tests.data import PEOPLE, POSITIONS, UNITS, connect, people, sync
from tests.stubpipeline import HEADER, USERS_TOML, Pipeline
from tests.waiting import poll_until
from workers.connectors import hierarchy, users
from workers.rows import RunRow, read_run

FULL = USERS_TOML.replace('kind = "users"', 'kind = "users"\nfull_feed = true')
TWO = FULL + FULL.replace("hr-users", "crm-users").replace("import/user/internal", "import/user/crm")
HR, CRM = "import/user/internal/", "import/user/crm/"


def held_with_new_person(pipeline: Pipeline, folder: str, tag: str, start: int = 0) -> int:
    """A run of its own ten people holding for approval (half of them missing) that would create
    x@x.com, and y-<tag>@x.com reporting to x."""
    pipeline.import_files((folder + "day1.csv", people(10, start, tag=tag)))
    new = f"X@x.com,X,{tag},,{tag}\ny-{tag}@x.com,Y,{tag},x@x.com,{tag}\n"
    run_id = pipeline.import_files((folder + "day2.csv", people(5, start, tag=tag) + new))
    assert queries.run_detail(run_id)["status"] == "awaiting_approval"  # type: ignore[index]
    return run_id


def test_approving_a_held_run_after_another_connection_created_its_new_person_adopts_them(
    pipeline: Pipeline,
) -> None:
    apply_connections(load_connections_toml(TWO))
    held = held_with_new_person(pipeline, HR, "hr")
    pipeline.import_files((CRM + "x.csv", HEADER + "x@X.com,X,Crm,,crm\n"))  # created by the other connection
    with capture_logs() as logs:
        approve(held)
        pipeline.drain()
    run = queries.run_detail(held)
    assert run is not None and run["status"] == "completed", run
    assert sql("SELECT count(*) FROM sync.dead_letters")[0][0] == 0
    assert (run["counts"]["created"], run["counts"]["deactivated"]) == (1, 5)
    ((x_id, source, last_name),) = sql(
        """SELECT u.id, c.name, u.last_name FROM lms.users u JOIN sync.connections c ON c.id = u.source_connection_id
           WHERE u.email_key = 'x@x.com'"""
    )
    assert (source, last_name) == ("hr-users", "hr"), "adopted by the feed that brings them, as an update would"
    assert sql("SELECT manager_id FROM lms.users WHERE email = 'y-hr@x.com'") == [(x_id,)]
    assert any(e["event"].startswith("people another connection created") for e in logs)
    assert "x@x.com" not in str(logs).lower(), "never an e-mail in a log line"


def _waiting_for_a_lock(pid: int, timeout_s: float = 30) -> None:
    """Until backend ``pid`` waits on a row lock (the other insert's uncommitted row)."""
    poll_until(
        lambda: sql("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)) == [("Lock",)],
        timeout=timeout_s,
        interval=0.01,
        message=f"backend {pid} never waited for the other insert",
    )


def test_two_loads_inserting_the_same_new_person_at_once_end_with_one_person_and_no_error(
    pipeline: Pipeline,
) -> None:
    apply_connections(load_connections_toml(TWO))
    run_of = {
        name: sql_run(held_with_new_person(pipeline, folder, name, start))
        for name, folder, start in (("hr", HR, 0), ("crm", CRM, 100))
    }
    result: dict[str, Any] = {}
    with psycopg.connect(DATABASE_URL) as crm, psycopg.connect(DATABASE_URL) as hr:
        result["crm"] = users.insert_people(crm, run_of["crm"], 0, users.BUCKETS - 1)  # not committed yet

        def hr_insert() -> None:
            result["hr"] = users.insert_people(hr, run_of["hr"], 0, users.BUCKETS - 1)

        racer = threading.Thread(target=hr_insert)
        racer.start()
        _waiting_for_a_lock(hr.info.backend_pid)  # hr's insert waits on crm's uncommitted x
        crm.commit()
        racer.join(timeout=30)
        assert not racer.is_alive()
        hr.commit()
    assert result["crm"] == {"created": 2, "deactivated": 0, "arrived_inactive": 0}
    assert result["hr"] == {"created": 1, "updated": 1, "manager_moves": 0, "deactivated": 0, "arrived_inactive": 0}
    assert sql("SELECT count(*) FROM lms.users WHERE email_key = 'x@x.com'") == [(1,)]
    ((x_id, last_name),) = sql("SELECT id, last_name FROM lms.users WHERE email_key = 'x@x.com'")
    assert last_name == "hr"
    # Both y's report to the one x, whichever load drew an id for them first.
    assert sql("SELECT email, manager_id FROM lms.users WHERE email LIKE 'y-%%' ORDER BY 1") == [
        ("y-crm@x.com", x_id),
        ("y-hr@x.com", x_id),
    ]


def test_a_bundle_and_a_users_load_inserting_the_same_new_person_at_once_end_with_one_person(
    pipeline: Pipeline,
) -> None:
    apply_connections(load_connections_toml(TWO))
    connect("full_feed = true")
    sync(pipeline, {"org.csv": UNITS, "pos.csv": POSITIONS, "user.csv": PEOPLE})
    # Two of five people missing: the bundle holds, with x (id x1) to create.
    kept = "".join(line + "\n" for line in PEOPLE.splitlines()[:4])
    bundle = sync(pipeline, {"user.csv": kept + "x1,x@x.com,X,Bundle,SALES,REP,,NZ\n"})
    assert bundle["status"] == "awaiting_approval"
    users_run = sql_run(held_with_new_person(pipeline, HR, "hr"))
    result: dict[str, Any] = {}
    with psycopg.connect(DATABASE_URL) as feed, psycopg.connect(DATABASE_URL) as hr:
        result["users"] = users.insert_people(feed, users_run, 0, users.BUCKETS - 1)  # not committed yet

        def bundle_insert() -> None:
            result["bundle"] = hierarchy.apply_users(hr, sql_run(bundle["run_id"]))

        racer = threading.Thread(target=bundle_insert)
        racer.start()
        _waiting_for_a_lock(hr.info.backend_pid)
        feed.commit()
        racer.join(timeout=30)
        assert not racer.is_alive()
        hr.commit()
    assert result["bundle"] == {"created": 0, "updated": 1}
    assert sql("SELECT external_id, last_name FROM lms.users WHERE email_key = 'x@x.com'") == [("x1", "Bundle")]


def sql_run(run_id: int) -> RunRow:
    with psycopg.connect(DATABASE_URL, row_factory=dict_row) as conn:
        run = read_run(conn, run_id)
    assert run is not None
    return run
