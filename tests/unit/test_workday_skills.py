"""Skills out to Workday: a skills_export run with [connections.workday] sends exactly the window's
achievements through Talent's Manage_Skills, one request a person, to a tenant of ours that records
what it is sent; a worker Workday does not know is a row error of the run, not a failed run; one
export run per Workday tenant at a time."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from producers.commands import apply_connections, start_sync
from schemas.connections import load_connections_toml
from schemas.workday import WorkdayConfig
from tests.conftest import sql
from tests.data import SINCE
from tests.stubpipeline import HEADER, Pipeline
from tests.waiting import poll_until
from tests.workday_server import PASSWORD, TENANT, USER, Served, Tenant
from tests.workday_talent import Talent
from workers import store
from workers.stages.export_workday import tenant_lock

IN_WINDOW, BEFORE = "2026-11-20T10:00:00Z", "2026-10-15T10:00:00Z"


def skills_toml(url: str) -> str:
    return f"""
[[connections]]
name = "skills-wd"
kind = "skills_export"

[connections.workday]
base_url = "{url}"
tenant = "{TENANT}"
username = "{USER}"
password_env = "WORKDAY_PASSWORD"
batch_size = 2
max_retries = 0
"""


@pytest.fixture
def talent(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Served, Talent]]:
    monkeypatch.setenv("WORKDAY_PASSWORD", PASSWORD)
    handler = Talent(known={"21001", "21002"})
    with Served(Tenant(people=[], talent=handler)) as served:
        yield served, handler


def achievements(pipeline: Pipeline) -> None:
    """Ann (21001) and Zoë (21002) are workers; Bob's 99999 is unknown to Workday; Cat has no employee_id."""
    pipeline.import_files(
        (
            "import/user/internal/people.csv",
            HEADER
            + "ann@x.com,Ann,A,,Sales\nzoe@x.com,Zoë,Z,ann@x.com,R&D\nbob@x.com,Bob,B,,R&D\ncat@x.com,Cat,C,,R&D\n",
        )
    )
    sql(
        """UPDATE lms.users u SET attributes = u.attributes || jsonb_build_object('employee_id', v.id)
           FROM (VALUES ('ann@x.com', '21001'), ('zoe@x.com', '21002'), ('bob@x.com', '99999')) v(email, id)
           WHERE u.email = v.email"""
    )
    sql("INSERT INTO lms.courses (provider, external_id, title) VALUES ('hmm', 'P1', 'Leading')")
    sql("INSERT INTO lms.skills (name) VALUES ('Coaching'), ('Feedback'), ('Negotiation')")
    sql(
        """INSERT INTO lms.user_skills (user_id, skill_id, course_id, achieved_on, updated_at)
           SELECT u.id, s.id, c.id, '2026-10-03', v.at::timestamptz
           FROM (VALUES ('ann@x.com', 'Coaching', %(in)s), ('ann@x.com', 'Feedback', %(in)s),
                        ('zoe@x.com', 'Negotiation', %(in)s), ('zoe@x.com', 'Coaching', %(before)s),
                        ('bob@x.com', 'Feedback', %(in)s), ('cat@x.com', 'Coaching', %(in)s)) v(email, skill, at)
           JOIN lms.users u ON u.email = v.email JOIN lms.skills s ON s.name = v.skill, lms.courses c""",
        {"in": IN_WINDOW, "before": BEFORE},
    )


def test_exactly_the_windows_achievements_are_sent_and_an_unknown_worker_is_a_row_error(
    pipeline: Pipeline, talent: tuple[Served, Talent]
) -> None:
    served, handler = talent
    apply_connections(load_connections_toml(skills_toml(served.url)))
    achievements(pipeline)

    run = pipeline.sync("skills-wd", SINCE)

    assert run["status"] == "completed_with_errors", run
    # Zoë's Coaching changed before the window: not sent. Bob's request was refused, Cat's never sent.
    assert handler.received == {"21001": ["Coaching", "Feedback"], "21002": ["Negotiation"]}
    assert handler.requests == 3 and handler.problems == []
    results = sql(
        """SELECT u.email, r.worker_id, r.skills, r.status, r.code FROM sync.workday_skill_results r
           JOIN lms.users u ON u.id = r.user_id ORDER BY u.email"""
    )
    assert results == [
        ("ann@x.com", "21001", 2, "sent", None),
        ("bob@x.com", "99999", 1, "unknown_worker", "Client.validationError"),
        ("cat@x.com", None, 1, "no_worker_id", None),
        ("zoe@x.com", "21002", 1, "sent", None),
    ]
    errors = sql("SELECT file_name, code, value, rejected FROM sync.row_errors ORDER BY code")
    assert errors == [
        ("workday:Manage_Skills", "workday_no_worker_id", None, True),
        ("workday:Manage_Skills", "workday_unknown_worker", "99999", True),
    ]
    ((counts,),) = sql("SELECT counts FROM sync.runs WHERE kind = 'skills_export'")
    assert {k: v for k, v in counts.items() if k.startswith("workday_")} == {
        "workday_sent": 2,
        "workday_unknown_worker": 1,
        "workday_rejected": 0,
        "workday_no_worker_id": 1,
    }


def test_a_refused_password_fails_the_run_with_one_sentence_and_records_nothing(
    pipeline: Pipeline, talent: tuple[Served, Talent], monkeypatch: pytest.MonkeyPatch
) -> None:
    served, handler = talent
    apply_connections(load_connections_toml(skills_toml(served.url)))
    achievements(pipeline)
    monkeypatch.setenv("WORKDAY_PASSWORD", "wrong")

    run_id = start_sync(pipeline.settings, "skills-wd", since=SINCE)
    pipeline.drain(expect_failures=True)

    (status, error) = sql("SELECT status, error FROM sync.runs WHERE id = %s", (run_id,))[0]
    assert status == "failed"
    assert error == (
        "skills-wd: Workday refused the user ISU_feedsync@contoso4 or its password (SOAP fault "
        "Client.authenticationError): check username and the password in WORKDAY_PASSWORD"
    )
    assert handler.received == {} and sql("SELECT count(*) FROM sync.workday_skill_results") == [(0,)]


def test_one_skills_export_per_tenant_at_a_time(settings: object) -> None:
    cfg = WorkdayConfig(base_url="https://wd3.example.com", tenant=TENANT, username=USER, password_env="P")  # noqa: S106 -- a variable name
    other = cfg.model_copy(update={"tenant": "other"})
    with store.connect() as holder, store.connect() as second:
        assert tenant_lock(holder, cfg)
        assert not tenant_lock(second, cfg), "a second run for the same tenant must wait"
        assert tenant_lock(second, other), "another tenant is not held up"
        holder.rollback()  # the first run's transaction ends: its lock goes with it
        second.rollback()
        assert tenant_lock(second, cfg)


def test_a_second_export_to_the_same_tenant_waits_for_the_first_to_end(
    pipeline: Pipeline, talent: tuple[Served, Talent]
) -> None:
    served, handler = talent
    apply_connections(load_connections_toml(skills_toml(served.url)))
    achievements(pipeline)
    cfg = WorkdayConfig(base_url=served.url, tenant=TENANT, username=USER, password_env="WORKDAY_PASSWORD")  # noqa: S106
    with store.connect() as holder:  # another account's run, mid-export to this tenant
        assert tenant_lock(holder, cfg)
        run_id = start_sync(pipeline.settings, "skills-wd", since=SINCE)

        def release_once_it_waited() -> None:
            poll_until(
                lambda: sql(
                    "SELECT 1 FROM sync.stage_runs WHERE run_id = %s AND stage = 'export' AND error LIKE %s",
                    (run_id, "%another skills export to the Workday tenant contoso4 is running%"),
                ),
                timeout=30,
                message="the export to wait for the tenant's lock",
            )
            assert handler.requests == 0, "nothing is sent while the tenant is held"
            holder.rollback()

        releaser = threading.Thread(target=release_once_it_waited)
        releaser.start()
        pipeline.drain(expect_failures=True)
        releaser.join()

    ((status,),) = sql("SELECT status FROM sync.runs WHERE id = %s", (run_id,))
    assert status == "completed_with_errors"
    assert handler.requests == 3 and sorted(handler.received) == ["21001", "21002"]
