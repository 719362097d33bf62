"""A held users run's plan and the counts of the same run once approved agree: what the admin
approved is what happened (rows rejected, people created, updated and deactivated, manager moves)."""

from __future__ import annotations

from producers import commands, queries
from tests.conftest import sql
from tests.data import apply, people
from tests.stubpipeline import HEADER, Pipeline

USERS = "import/user/internal/"


def test_the_plan_of_a_held_users_run_matches_its_counts_once_approved(pipeline: Pipeline) -> None:
    team = "a@x.com,A,A,,S\nb@x.com,B,B,a@x.com,S\nc@x.com,C,C,,S\nd@x.com,D,D,a@x.com,S\n"
    pipeline.import_files((USERS + "day1.csv", people(10) + team.replace(HEADER, "")))
    apply("full_feed = true\n")
    # Day 2: the ten are gone (held: over the 10% deactivation threshold), b and d move to c, e is
    # new, b's name changes, and one row is no e-mail at all (rejected).
    day2 = HEADER + "a@x.com,A,A,,S\nb@x.com,Bee,B,c@x.com,S\nc@x.com,C,C,,S\nd@x.com,D,D,c@x.com,S\n"
    day2 += "e@x.com,E,E,c@x.com,S\nnot-an-email,X,Y,,S\n"
    held = pipeline.import_files((USERS + "day2.csv", day2))
    ((status, plan),) = sql("SELECT status, plan FROM sync.runs WHERE id = %s", (held,))
    assert status == "awaiting_approval"
    commands.approve(held, "checked")
    pipeline.drain()
    r = queries.run_detail(held)
    assert r is not None and r["status"] == "completed_with_errors"
    counts = r["counts"] | r["details"]
    planned = {
        "rows read": plan["rows_read"],
        "rows rejected": plan["rows_rejected"],
        "created": plan["creates"],
        "updated": plan["updates"],
        "deactivated": plan["deactivations"],
        "manager moves": plan["manager_moves"],
    }
    done = {
        "rows read": counts["read"],
        "rows rejected": counts["rejected"],
        "created": counts["created"],
        "updated": counts["updated"],
        "deactivated": counts["deactivated"],
        "manager moves": counts.get("manager_moves", 0),
    }
    assert planned == done
    assert done == {
        "rows read": 6,
        "rows rejected": 1,
        "created": 1,
        "updated": 2,
        "deactivated": 10,
        "manager moves": 3,
    }
