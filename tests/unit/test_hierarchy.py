"""Org units, positions and users as one bundle: dependency order whatever the arrival order, the
sanity check (cycles with their chains), moves, users-only mode and rule-based groups."""

from __future__ import annotations

from producers import queries, registry
from tests.conftest import sql
from tests.data import MAPPINGS, ORG, PEOPLE, POSITIONS, UNITS, USER, connect, person, sync
from tests.stubpipeline import Pipeline


def ancestors(unit: str) -> list[str]:
    rows = sql(
        """WITH RECURSIVE up(id, parent_id, external_id, depth) AS (
               SELECT id, parent_id, external_id, 0 FROM lms.org_units WHERE external_id = %s
               UNION ALL SELECT o.id, o.parent_id, o.external_id, up.depth + 1
               FROM lms.org_units o JOIN up ON o.id = up.parent_id)
           SELECT external_id FROM up WHERE depth > 0 ORDER BY depth""",
        (unit,),
    )
    return [r[0] for r in rows]


def reports(manager: str) -> list[tuple[str, int]]:
    return [
        (r[0], r[1])
        for r in sql(
            """SELECT u.external_id, r.depth FROM lms.reports r JOIN lms.users u ON u.id = r.user_id
               JOIN lms.users m ON m.id = r.manager_id WHERE m.external_id = %s ORDER BY 1""",
            (manager,),
        )
    ]


def members(group: str) -> list[str]:
    rows = sql(
        """SELECT u.external_id FROM lms.group_members gm JOIN lms.groups g ON g.id = gm.group_id
           JOIN lms.users u ON u.id = gm.user_id WHERE g.name = %s ORDER BY 1""",
        (group,),
    )
    return [r[0] for r in rows]


def test_a_bundle_dropped_in_reverse_order_waits_and_imports_in_dependency_order(pipeline: Pipeline) -> None:
    connect()
    for name, text in (("user.csv", PEOPLE), ("pos.csv", POSITIONS)):
        pipeline.drop(f"import/hierarchy/{name}", text)
        registry.scan(pipeline.settings)
        pipeline.drain()
    waiting = queries.history("hr")
    assert [(h["status"], h["note"]) for h in waiting] == [
        ("queued", "waiting for the bundle: org.csv not arrived yet")
    ]
    assert sql("SELECT count(*) FROM lms.users")[0][0] == 0

    pipeline.drop("import/hierarchy/org.csv", UNITS)
    registry.scan(pipeline.settings)
    pipeline.drain()
    (run,) = queries.history("hr")
    assert (run["run_id"], run["status"]) == (waiting[0]["run_id"], "completed"), [
        (e["line"], e["code"], e["message"]) for e in queries.errors(run["run_id"])
    ]
    assert run["note"] == "bundle complete: every expected file arrived"
    phases = sql("SELECT phase FROM sync.load_batches WHERE run_id = %s ORDER BY batch_no", (run["run_id"],))
    assert [p for (p,) in phases] == [
        "apply_tree", "apply_tree", "apply_users", "apply_managers", "apply_deactivations", "assign",
    ]  # fmt: skip
    assert ancestors("EAST-1") == ["EAST", "SALES"]
    assert sql(
        """SELECT u.external_id, o.external_id, p.external_id, m.external_id, u.attributes ->> 'country'
           FROM lms.users u JOIN lms.org_units o ON o.id = u.org_unit_id JOIN lms.positions p ON p.id = u.position_id
           LEFT JOIN lms.users m ON m.id = u.manager_id ORDER BY 1"""
    ) == [
        ("boss1", "SALES", "MGR", None, "NZ"),
        ("boss2", "OPS", "MGR", None, "NZ"),
        ("e1", "EAST-1", "REP", "m1", "NZ"),
        ("m1", "EAST", "MGR", "boss1", "NZ"),
        ("m2", "OPS", "MGR", "boss2", "NZ"),
    ]
    assert sql("SELECT attributes FROM lms.org_units WHERE external_id = 'EAST'") == [({"region": "EU"},)]
    assert reports("boss1") == [("e1", 2), ("m1", 1)]
    assert members("Sales and below") == ["boss1", "e1", "m1"]
    assert sql("SELECT u.external_id, a.program FROM lms.assignments a JOIN lms.users u ON u.id = a.user_id"
               " ORDER BY 1") == [("boss1", "Sales onboarding"), ("e1", "Sales onboarding"),
                                  ("m1", "Sales onboarding")]  # fmt: skip
    detail = queries.run_detail(run["run_id"])
    assert detail is not None and detail["counts"]["created"] == 5
    assert {(m["group"], m["change"], m["people"]) for m in detail["memberships"]} == {
        ("Sales and below", "added", 3),
        ("Team of boss2", "added", 1),
    }


def test_a_unit_cycle_and_a_manager_cycle_are_reported_with_their_chains_and_only_those_rows_skipped(
    pipeline: Pipeline,
) -> None:
    connect()
    units = ORG + "A,Alpha,C,\nB,Beta,A,\nC,Gamma,B,\nD,Delta,,\nE,Epsilon,D,\n"
    people = (
        USER
        + person("u1", "D", "u2")
        + person("u2", "D", "u3")
        + person("u3", "D", "u1")
        + person("u4", "E", "u5")
        + person("u5", "E")
        + person("u6", "E", "u6")
    )
    run = sync(pipeline, {"org.csv": units, "pos.csv": POSITIONS, "user.csv": people})
    assert run["status"] == "completed_with_errors"
    errors = {
        (e["file"].rsplit("/", 1)[1], e["line"]): (e["code"], e["message"]) for e in queries.errors(run["run_id"])
    }
    assert {k: v[0] for k, v in errors.items()} == {
        ("org.csv", 2): "cycle",
        ("org.csv", 3): "cycle",
        ("org.csv", 4): "cycle",
        ("user.csv", 2): "cycle",
        ("user.csv", 3): "cycle",
        ("user.csv", 4): "cycle",
        ("user.csv", 7): "self_manager",
    }
    assert "the unit chain has a cycle: A → C → B → A" in errors[("org.csv", 2)][1]
    assert "the unit chain has a cycle: B → A → C → B" in errors[("org.csv", 3)][1]
    assert "the manager chain has a cycle: u1 → u2 → u3 → u1" in errors[("user.csv", 2)][1]
    assert "the manager chain has a cycle: u3 → u1 → u2 → u3" in errors[("user.csv", 4)][1]
    assert [r[0] for r in sql("SELECT external_id FROM lms.org_units ORDER BY 1")] == ["D", "E"]
    assert sql("SELECT u.external_id, m.external_id FROM lms.users u LEFT JOIN lms.users m ON m.id = u.manager_id"
               " ORDER BY 1") == [("u4", "u5"), ("u5", None)]  # fmt: skip


def test_unknown_references_are_row_errors_and_what_depends_on_a_rejected_row_falls_too(pipeline: Pipeline) -> None:
    connect()
    units = ORG + "A,Alpha,,\nB,Beta,NOPE,\nC,Gamma,B,\n"
    people = USER + person("u1", "A", "ghost") + person("u2", "A", "u1") + person("u3", "ZZ") + person("u4", "A")
    run = sync(pipeline, {"org.csv": units, "pos.csv": POSITIONS, "user.csv": people})
    errors = {
        (e["file"].rsplit("/", 1)[1], e["line"], e["column_name"], e["code"]) for e in queries.errors(run["run_id"])
    }
    assert errors == {
        ("org.csv", 3, "Parent ID", "unknown_parent"),
        ("org.csv", 4, "Parent ID", "unknown_parent"),  # its parent B was rejected
        ("user.csv", 2, "Manager ID", "unknown_manager"),
        ("user.csv", 3, "Manager ID", "unknown_manager"),  # its manager u1 was rejected
        ("user.csv", 4, "Unit ID", "unknown_unit"),
    }
    messages = {e["line"]: e["message"] for e in queries.errors(run["run_id"]) if e["file"].endswith("user.csv")}
    assert "the manager u1 was rejected (see its row)" in messages[3]
    assert [r[0] for r in sql("SELECT external_id FROM lms.users")] == ["u4"]


def test_moves_carry_descendants_and_update_both_manager_chains_and_group_rules(pipeline: Pipeline) -> None:
    connect()
    sync(pipeline, {"org.csv": UNITS, "pos.csv": POSITIONS, "user.csv": PEOPLE})
    assert reports("boss2") == [("m2", 1)] and members("Team of boss2") == ["m2"]

    # EAST moves under OPS (EAST-1 goes with it); m1 (and e1 below) now reports to boss2; m2 moves
    # from OPS to SALES.
    moved_units = UNITS.replace("EAST,East,SALES,EU", "EAST,East,OPS,EU")
    moved_people = PEOPLE.replace("m1,m1@x.com,M1,Doe,EAST,MGR,boss1", "m1,m1@x.com,M1,Doe,EAST,MGR,boss2").replace(
        "m2,m2@x.com,M2,Doe,OPS,", "m2,m2@x.com,M2,Doe,SALES,"
    )
    run = sync(pipeline, {"org.csv": moved_units, "pos.csv": POSITIONS, "user.csv": moved_people})
    assert run["status"] == "completed", queries.errors(run["run_id"])
    assert ancestors("EAST-1") == ["EAST", "OPS"]
    assert reports("boss1") == []
    assert reports("boss2") == [("e1", 2), ("m1", 1), ("m2", 1)]
    # The same, walking down from one manager (what a manager's report asks).
    assert sql(
        """SELECT u.external_id, r.depth FROM lms.reports_of((SELECT id FROM lms.users WHERE external_id = 'boss2')) r
           JOIN lms.users u ON u.id = r.user_id ORDER BY 1"""
    ) == [("e1", 2), ("m1", 1), ("m2", 1)]
    assert members("Sales and below") == ["boss1", "m2"]
    assert members("Team of boss2") == ["e1", "m1", "m2"]
    assert (run["details"]["units_moved"], run["details"]["manager_moves"]) == (1, 1)
    assert {(m["group"], m["change"], m["people"]) for m in run["memberships"]} == {
        ("Sales and below", "removed", 2),
        ("Sales and below", "added", 1),
        ("Team of boss2", "added", 2),
    }
    # Programs stay with the people who left the group: their learning record is theirs.
    assert sql("SELECT count(*) FROM lms.assignments")[0][0] == 4


def test_users_only_mode_leaves_units_and_positions_untouched(pipeline: Pipeline) -> None:
    connect()
    sync(pipeline, {"org.csv": UNITS, "pos.csv": POSITIONS, "user.csv": PEOPLE})
    units_before = sql("SELECT external_id, name, parent_id, active, updated_at FROM lms.org_units ORDER BY 1")
    positions_before = sql("SELECT external_id, name, active, updated_at FROM lms.positions ORDER BY 1")
    user_only = MAPPINGS.split("[connections.files.user.mapping]")[1]
    connect('parts = ["user"]\nfull_feed = true', "[connections.files.user.mapping]" + user_only)
    # org.csv and pos.csv are not files of this connection any more: dropped, they are refused.
    run = sync(
        pipeline,
        {"org.csv": ORG + "SALES,Renamed,,\n", "user.csv": PEOPLE + person("e2", "EAST-1", "m1")},
    )
    assert sql("SELECT external_id, name, parent_id, active, updated_at FROM lms.org_units ORDER BY 1") == units_before
    assert sql("SELECT external_id, name, active, updated_at FROM lms.positions ORDER BY 1") == positions_before
    assert sql("SELECT o.external_id FROM lms.users u JOIN lms.org_units o ON o.id = u.org_unit_id"
               " WHERE u.external_id = 'e2'") == [("EAST-1",)]  # fmt: skip
    refused = next(f for f in run["files"] if f["file"].endswith("org.csv"))
    assert refused["status"] == "rejected" and "is not a file of this bundle; it takes user.csv" in refused["error"]
    assert "e2" in members("Sales and below")


def test_a_full_feed_deactivates_missing_units_and_reports_those_still_holding_people(pipeline: Pipeline) -> None:
    connect('full_feed = true\nmax_deactivate = "25%"')  # one unit of four: more than the default 10%
    sync(pipeline, {"org.csv": UNITS, "pos.csv": POSITIONS, "user.csv": PEOPLE})
    without_ops = UNITS.replace("OPS,Operations,,\n", "")
    run = sync(pipeline, {"org.csv": without_ops, "pos.csv": POSITIONS, "user.csv": PEOPLE})
    assert sql("SELECT active FROM lms.org_units WHERE external_id = 'OPS'") == [(False,)]
    assert run["details"]["units_deactivated"] == 1
    (warning,) = [e for e in queries.errors(run["run_id"]) if e["code"] == "deactivated_unit_has_people"]
    assert (
        "the unit OPS (Operations) is missing from the full feed and was deactivated, but 2 active people"
        in (warning["message"])
    )
    assert sql("SELECT count(*) FROM lms.users WHERE active")[0][0] == 5, "people are never emptied out of a unit"


def test_an_on_demand_run_takes_the_files_present_and_says_which_were_missing(pipeline: Pipeline) -> None:
    connect()
    run = sync(pipeline, {"org.csv": UNITS, "user.csv": USER + person("u1", "SALES", position="")})
    assert run["status"] == "completed", queries.errors(run["run_id"])
    assert run["note"] == "bundle incomplete: took org.csv, user.csv; pos.csv had not arrived"
    assert sql("SELECT external_id FROM lms.users") == [("u1",)]


def test_a_full_feed_missing_too_many_units_waits_for_approval(pipeline: Pipeline) -> None:
    connect('full_feed = true\nmax_deactivate = "25%"')
    sync(pipeline, {"org.csv": UNITS, "pos.csv": POSITIONS, "user.csv": PEOPLE})
    half = ORG + "SALES,Sales,,\nOPS,Operations,,\n"
    people = PEOPLE.replace("EAST-1", "SALES").replace(",EAST,", ",SALES,")
    run = sync(pipeline, {"org.csv": half, "pos.csv": POSITIONS, "user.csv": people})
    assert run["status"] == "awaiting_approval"
    assert run["plan"]["held_because"] == ["it would deactivate 2 of 4 units (max_deactivate = 25%)"]
    assert run["plan"]["units"]["deactivations_sample"] == ["EAST", "EAST-1"]
    assert sql("SELECT count(*) FROM lms.org_units WHERE active")[0][0] == 4


def test_a_manager_cycle_closed_through_people_already_in_the_store_is_reported_with_its_chain(
    pipeline: Pipeline,
) -> None:
    connect()
    sync(pipeline, {"org.csv": UNITS, "pos.csv": POSITIONS, "user.csv": PEOPLE})  # boss1 ← m1 ← e1
    run = sync(pipeline, {"user.csv": USER + person("boss1", "SALES", "e1", "MGR")})
    errors = [(e["line"], e["code"], e["message"]) for e in queries.errors(run["run_id"])]
    assert [(line, code) for line, code, _ in errors] == [(2, "cycle")], errors
    assert "the manager chain has a cycle: boss1 → e1 → m1 → boss1" in errors[0][2]
    assert sql("SELECT m.external_id FROM lms.users u LEFT JOIN lms.users m ON m.id = u.manager_id"
               " WHERE u.external_id = 'boss1'") == [(None,)]  # fmt: skip
