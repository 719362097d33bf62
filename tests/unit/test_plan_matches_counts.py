"""The plan and the counts agree, for every kind: each number a dry run's plan states (the kind's
``PLAN_COUNTS``) is what the same delivery, loaded, counts. A held users run's plan is what
happened once approved (rows rejected, people created, updated and deactivated, manager moves);
people a feed brings already DELETED are planned, as counted, as deactivated, not created."""

from __future__ import annotations

from typing import Any

from producers import commands, queries
from producers.commands import apply_connections
from schemas.connections import load_connections_toml
from tests.conftest import sql
from tests.data import apply, people
from tests.kindsamples import SAMPLES
from tests.kindsuite import deliver
from tests.stubpipeline import HEADER, USERS_TOML, Pipeline
from workers.connectors.contract import ImportKind

USERS = "import/user/internal/"


def planned(plan: dict[str, Any], key: str) -> int:
    """A number the plan states: ``creates``, or ``units.creates`` inside a part."""
    part, _, name = key.rpartition(".")
    where = plan[part] if part else plan
    return int(where[name])


def counted(run_id: int, keys: tuple[str, ...]) -> int:
    r = queries.run_detail(run_id)
    assert r is not None
    done = r["counts"] | r["details"]
    return sum(int(done.get(k, 0)) for k in keys)


def test_each_number_a_kinds_plan_states_is_what_the_run_counts(kind: ImportKind, pipeline: Pipeline) -> None:
    sample = SAMPLES[kind.NAME]
    assert any(key == "rows_read" for key, _ in kind.PLAN_COUNTS)
    seen: set[str] = set()
    # Each delivery planned by a dry run, then loaded: one that creates, one that changes what the
    # first wrote, one with a bad row.
    for files in (sample.first, sample.second, sample.bad_row):
        dry = deliver(pipeline, sample, files, dry_run=True)
        ((plan,),) = sql("SELECT plan FROM sync.runs WHERE id = %s", (dry,))
        run_id = deliver(pipeline, sample, files)
        said = {key: planned(plan, key) for key, _ in kind.PLAN_COUNTS}
        done = {key: counted(run_id, keys) for key, keys in kind.PLAN_COUNTS}
        assert said == done, (files, plan)
        seen |= {key for key, n in said.items() if n}
    assert {"rows_read", "rows_rejected"} <= seen  # the deliveries read rows, and rejected one


def test_the_plan_of_a_held_users_run_matches_its_counts_once_approved(pipeline: Pipeline) -> None:
    team = "a@x.com,A,A,,S\nb@x.com,B,B,a@x.com,S\nc@x.com,C,C,,S\nd@x.com,D,D,a@x.com,S\n"
    pipeline.import_files((USERS + "day1.csv", people(10) + team.replace(HEADER, "")))
    apply("full_feed = true\n")
    # Day 2: the ten are gone (held: over the 10% deactivation threshold), b and d move to c, e is
    # new (with c as manager: no move), b's name changes, and one row is no e-mail at all (rejected).
    day2 = HEADER + "a@x.com,A,A,,S\nb@x.com,Bee,B,c@x.com,S\nc@x.com,C,C,,S\nd@x.com,D,D,c@x.com,S\n"
    day2 += "e@x.com,E,E,c@x.com,S\nnot-an-email,X,Y,,S\n"
    held = pipeline.import_files((USERS + "day2.csv", day2))
    ((status, plan),) = sql("SELECT status, plan FROM sync.runs WHERE id = %s", (held,))
    assert status == "awaiting_approval"
    commands.approve(held, "checked")
    pipeline.drain()
    r = queries.run_detail(held)
    assert r is not None and r["status"] == "completed_with_errors"
    said = {key: plan[key] for key in ("rows_read", "rows_rejected", "creates", "updates", "deactivations")}
    said["manager_moves"] = plan["manager_moves"]
    done = {
        "rows_read": counted(held, ("read",)),
        "rows_rejected": counted(held, ("rejected",)),
        "creates": counted(held, ("created",)),
        "updates": counted(held, ("updated",)),
        "deactivations": counted(held, ("deactivated",)),
        "manager_moves": counted(held, ("manager_moves",)),
    }
    assert said == done
    assert done == {
        "rows_read": 6,
        "rows_rejected": 1,
        "creates": 1,
        "updates": 2,
        "deactivations": 10,
        "manager_moves": 2,
    }


STATE_TOML = USERS_TOML.replace('department = "Department"', 'department = "Department"\nstate = "State"')


def test_people_a_feed_brings_already_deleted_are_planned_as_deactivated_as_they_are_counted(
    pipeline: Pipeline,
) -> None:
    apply_connections(load_connections_toml(STATE_TOML))
    feed = HEADER.rstrip("\n") + ",State\nann@x.com,Ann,Ames,,Sales,ACTIVE\nbob@x.com,Bob,Berg,,Sales,DELETED\n"
    feed += "cid@x.com,Cid,Cole,,Sales,DELETED\ndan@x.com,Dan,Dunn,,Sales,SUSPENDED\n"
    users = SAMPLES["users"]
    dry = deliver(pipeline, users, {"monday.csv": feed}, dry_run=True)
    ((plan,),) = sql("SELECT plan FROM sync.runs WHERE id = %s", (dry,))
    assert (plan["creates"], plan["deactivations"]) == (1, 3)
    assert set(plan["deactivations_sample"]) == {"bob@x.com", "cid@x.com", "dan@x.com"}
    # No active person is lost: a deactivation threshold does not hold the run for them.
    apply_connections(load_connections_toml(STATE_TOML.replace('kind = "users"', 'kind = "users"\nmax_deactivate = 1')))
    run_id = deliver(pipeline, users, {"monday.csv": feed})
    r = queries.run_detail(run_id)
    assert r is not None and r["status"] == "completed", r
    assert (r["counts"]["created"], r["counts"]["deactivated"]) == (1, 3)
