"""The guards beside max_deactivate and max_change: max_create and max_reject_share hold a run for
approval; on_threshold = "skip_deactivations" applies creates and updates at once and holds only
the deactivations, which the run's approval then applies."""

from __future__ import annotations

from typing import Any

import pytest

from producers import queries, registry
from producers.commands import approve, reject, start_sync
from schemas.states import AccessMode
from tests.conftest import sql
from tests.data import active, apply, people
from tests.stubpipeline import Pipeline

FEED = "import/user/internal/"


def detail(run_id: int) -> dict[str, Any]:
    run = queries.run_detail(run_id)
    assert run is not None
    return run


def test_max_create_as_a_count_holds_a_run_bringing_more_new_people(pipeline: Pipeline) -> None:
    apply("max_create = 2\n")
    pipeline.import_files((FEED + "day1.csv", people(2)))  # the first import: 2 new, within the limit
    held = detail(pipeline.import_files((FEED + "day2.csv", people(5))))
    assert held["status"] == "awaiting_approval"
    assert held["plan"]["held_because"] == ["it would create 3 people beside 2 (max_create = 2)"]
    assert sql("SELECT count(*) FROM lms.users") == [(2,)]


def test_max_create_as_a_share_of_the_connections_people(pipeline: Pipeline) -> None:
    apply('max_create = "50%"\n')
    pipeline.import_files((FEED + "day1.csv", people(4)))
    within = detail(pipeline.import_files((FEED + "day2.csv", people(6))))  # 2 of 4: 50%, not over
    assert within["status"] == "completed"
    held = detail(pipeline.import_files((FEED + "day3.csv", people(10))))  # 4 of 6
    assert held["plan"]["held_because"] == ["it would create 4 people beside 6 (max_create = 50%)"]


def test_max_reject_share_holds_a_feed_whose_rows_are_mostly_refused(pipeline: Pipeline) -> None:
    apply('max_reject_share = "20%"\n')
    ok = detail(pipeline.import_files((FEED + "day1.csv", people(9) + ",NoMail,L,,S\n")))  # 1 of 10
    assert ok["status"] == "completed_with_errors"
    bad = people(7, start=20) + ",A,L,,S\n,B,L,,S\n,C,L,,S\n"  # 3 of 10 rejected
    held = detail(pipeline.import_files((FEED + "day2.csv", bad)))
    assert held["status"] == "awaiting_approval"
    assert held["plan"]["held_because"] == ["3 of 10 rows read were rejected (max_reject_share = 20%)"]
    assert sql("SELECT count(*) FROM lms.users") == [(9,)]
    reject(held["run_id"])


def test_a_reject_share_must_be_a_percentage() -> None:
    from pydantic import ValidationError

    from schemas.kinds import UsersConnection

    with pytest.raises(ValidationError, match="not a share"):
        UsersConnection.model_validate({"name": "x", "kind": "users", "mapping": {"email": "E"}, "max_reject_share": 5})


def _day2(pipeline: Pipeline, access: AccessMode) -> int:
    """p0-p2 change department, p9 is new, p3 and p4 are gone from the full feed."""
    pipeline.drop(FEED + "day2.csv", people(3, tag="T") + "p9@x.com,P9,L,,T\n")
    registry.scan(pipeline.settings, announce=False)
    run_id = start_sync(pipeline.settings, "hr-users", access=access)
    pipeline.drain()
    return run_id


@pytest.mark.parametrize("access", [AccessMode.ONLINE, AccessMode.EXCLUSIVE])
def test_skip_deactivations_applies_creates_and_updates_and_holds_only_the_deactivations(
    pipeline: Pipeline, access: AccessMode
) -> None:
    apply('full_feed = true\nmax_deactivate = 1\non_threshold = "skip_deactivations"\n')
    pipeline.import_files((FEED + "day1.csv", people(5)))
    run_id = _day2(pipeline, access)
    held = detail(run_id)
    assert held["status"] == "awaiting_approval" and held["plan"]["held_deactivations"] is True
    assert held["plan"]["held_because"] == ["it would deactivate 2 of 5 people (max_deactivate = 1)"]
    # Applied: the new person and the changes; held: the two deactivations.
    assert sql("SELECT email FROM lms.users WHERE NOT active") == []
    assert sql("SELECT count(*) FROM lms.users WHERE attributes ->> 'department' = 'T'") == [(4,)]

    approve(run_id)
    pipeline.drain()
    done = detail(run_id)
    assert done["status"] == "completed"
    assert sorted(e for (e,) in sql("SELECT email FROM lms.users WHERE NOT active")) == ["p3@x.com", "p4@x.com"]
    assert (done["counts"]["created"], done["counts"]["updated"], done["counts"]["deactivated"]) == (1, 3, 2)


def test_skip_deactivations_rejected_keeps_what_was_applied_and_deactivates_nobody(pipeline: Pipeline) -> None:
    apply('full_feed = true\nmax_deactivate = 1\non_threshold = "skip_deactivations"\n')
    pipeline.import_files((FEED + "day1.csv", people(5)))
    run_id = _day2(pipeline, AccessMode.ONLINE)
    reject(run_id)
    pipeline.drain()
    assert detail(run_id)["status"] == "rejected"
    assert active() == 6 and sql("SELECT count(*) FROM lms.users WHERE email = 'p9@x.com'") == [(1,)]


def test_skip_deactivations_holds_the_whole_run_when_its_changes_alone_exceed_a_threshold(
    pipeline: Pipeline,
) -> None:
    apply('full_feed = true\nmax_deactivate = 1\non_threshold = "skip_deactivations"\n')
    pipeline.import_files((FEED + "day1.csv", people(5)))
    apply('full_feed = true\nmax_deactivate = 1\nmax_create = 0\non_threshold = "skip_deactivations"\n')
    held = detail(_day2(pipeline, AccessMode.ONLINE))
    assert held["status"] == "awaiting_approval" and held["plan"]["held_deactivations"] is False
    assert sql("SELECT count(*) FROM lms.users WHERE active AND attributes ->> 'department' = 'T'") == [(0,)]


def test_hold_is_the_default_and_applies_nothing_until_approved(pipeline: Pipeline) -> None:
    apply("full_feed = true\nmax_deactivate = 1\n")
    pipeline.import_files((FEED + "day1.csv", people(5)))
    run_id = _day2(pipeline, AccessMode.ONLINE)
    held = detail(run_id)
    assert held["status"] == "awaiting_approval" and held["plan"]["held_deactivations"] is False
    assert sql("SELECT count(*) FROM lms.users") == [(5,)] and active() == 5
    approve(run_id)
    pipeline.drain()
    assert detail(run_id)["status"] == "completed" and active() == 4


def test_skip_deactivations_in_a_hierarchy_bundle_moves_people_now_and_deactivates_units_once_approved(
    pipeline: Pipeline,
) -> None:
    from tests.data import ORG, PEOPLE, POSITIONS, UNITS, connect, sync

    connect('full_feed = true\nmax_deactivate = "25%"\non_threshold = "skip_deactivations"')
    sync(pipeline, {"org.csv": UNITS, "pos.csv": POSITIONS, "user.csv": PEOPLE})
    half = ORG + "SALES,Sales,,\nOPS,Operations,,\n"
    moved = PEOPLE.replace("EAST-1", "SALES").replace(",EAST,", ",SALES,")
    run = sync(pipeline, {"org.csv": half, "pos.csv": POSITIONS, "user.csv": moved})
    assert run["status"] == "awaiting_approval" and run["plan"]["held_deactivations"] is True
    sales = (
        "SELECT count(*) FROM lms.users u JOIN lms.org_units o ON o.id = u.org_unit_id WHERE o.external_id = 'SALES'"
    )
    assert sql(sales) == [(3,)], "the people moved at once"
    assert sql("SELECT count(*) FROM lms.org_units WHERE active") == [(4,)], "the units wait"
    approve(run["run_id"])
    pipeline.drain()
    done = detail(run["run_id"])
    assert done["status"] == "completed" and done["details"]["units_deactivated"] == 2
    assert sql("SELECT external_id FROM lms.org_units WHERE NOT active ORDER BY 1") == [("EAST",), ("EAST-1",)]


def test_the_applied_part_of_a_rejected_skip_deactivations_run_can_be_undone(pipeline: Pipeline) -> None:
    """Rejecting the held deactivations keeps the creates and updates already applied: undo is how
    the admin takes those back too."""
    from producers.undo import start_undo

    apply('full_feed = true\nmax_deactivate = 1\non_threshold = "skip_deactivations"\n')
    pipeline.import_files((FEED + "day1.csv", people(5)))
    run_id = _day2(pipeline, AccessMode.ONLINE)
    reject(run_id)
    pipeline.drain()
    undo_id = start_undo(run_id)
    pipeline.drain()
    assert detail(undo_id)["status"] == "completed"
    assert sql("SELECT count(*) FROM lms.users WHERE active AND attributes ->> 'department' = 'T'") == [(0,)]
    assert sql("SELECT active FROM lms.users WHERE email = 'p9@x.com'") == [(False,)], "deactivated, not deleted"
    assert active() == 5
