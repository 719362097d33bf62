"""`feedsync undo RUN_ID`: the run journal restores every row a run changed, compared as whole
rows; rows changed since by another run are conflicts; people are deactivated, never deleted; the
undo is a run of its own (thresholds, approval, history) and can itself be undone."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from producers import queries
from producers.cli import cli
from producers.commands import CommandError, approve
from producers.undo import start_undo
from tests.conftest import sql
from tests.data import PEOPLE, POSITIONS, UNITS, apply, connect, people, sync
from tests.stubpipeline import HEADER, Pipeline
from tests.undoing import FEED, TABLES, snapshot, undo, user


def test_run_a_then_undo_a_gives_every_row_back_as_before_a(pipeline: Pipeline) -> None:
    apply('full_feed = true\nmax_deactivate = "50%"\n')
    pipeline.import_files((FEED + "day1.csv", people(6)))
    before = snapshot("users")
    # Run A: p1 renamed and moved under p2 as manager, p5 gone (deactivated), p9 new.
    day2 = (
        HEADER
        + "p0@x.com,P0,L,,S\np1@x.com,Renamed,L,p2@x.com,T\np2@x.com,P2,L,,S\np3@x.com,P3,L,,S\np4@x.com,P4,L,,S\n"
        + "p9@x.com,P9,L,p0@x.com,S\n"
    )
    a = pipeline.import_files((FEED + "day2.csv", day2))
    assert sql("SELECT status FROM sync.runs WHERE id = %s", (a,)) == [("completed",)]
    assert user("p5@x.com")["active"] is False and user("p1@x.com")["first_name"] == "Renamed"

    u = undo(pipeline, a)
    assert u["status"] == "completed", u
    after = snapshot("users")
    for key, row in before.items():
        assert after[key] == row, f"user {key} is not as before run A"
    # The person run A created is still there, deactivated: people are never deleted.
    p9 = user("p9@x.com")
    assert p9["active"] is False and p9["deactivated_at"] is not None
    assert (u["counts"]["deactivated"], u["details"]["reactivated"]) == (1, 1)
    # The history says run A was undone, and by which run.
    (hist,) = [r for r in queries.history() if r["run_id"] == a]
    assert hist["undone_by"] == u["run_id"]
    (hu,) = [r for r in queries.history() if r["run_id"] == u["run_id"]]
    assert (hu["trigger"], hu["undo_of"]) == ("undo", a)


def test_an_undo_is_refused_naming_a_row_another_run_changed_since_and_skips_it_when_asked(
    pipeline: Pipeline,
) -> None:
    apply()
    pipeline.import_files((FEED + "day1.csv", people(3)))
    before = snapshot("users")
    a = pipeline.import_files((FEED + "day2.csv", people(3, tag="A")))  # everyone's department -> A
    b = pipeline.import_files((FEED + "day3.csv", HEADER + "p1@x.com,P1,L,,B\n"))  # p1 -> B
    p1 = (user("p1@x.com")["id"],)
    with pytest.raises(CommandError) as refused:
        start_undo(a)
    assert f"person p1@x.com (changed by run {b})" in str(refused.value)
    assert "--skip-conflicts" in str(refused.value)
    assert sql("SELECT count(*) FROM sync.runs WHERE trigger = 'undo'") == [(0,)], "nothing queued"

    u = undo(pipeline, a, skip_conflicts=True)
    assert u["status"] == "completed" and u["details"]["conflicts_skipped"] == 1
    after = snapshot("users")
    assert after[p1] != before[p1] and user("p1@x.com")["attributes"] == {"department": "B"}
    for key, row in before.items():
        if key != p1:
            assert after[key] == row


def test_a_row_changed_outside_any_run_is_a_conflict_too(pipeline: Pipeline) -> None:
    apply()
    pipeline.import_files((FEED + "day1.csv", people(2)))
    a = pipeline.import_files((FEED + "day2.csv", people(2, tag="A")))
    sql("UPDATE lms.users SET first_name = 'Outside' WHERE email = 'p0@x.com'")  # no run: no journal
    with pytest.raises(CommandError) as refused:
        start_undo(a)
    assert "person p0@x.com (changed outside feedsync's runs)" in str(refused.value)


def test_undo_of_an_undo_gives_back_what_the_first_run_did(pipeline: Pipeline) -> None:
    apply('full_feed = true\nmax_deactivate = "50%"\n')
    pipeline.import_files((FEED + "day1.csv", people(4)))
    a = pipeline.import_files((FEED + "day2.csv", people(3, tag="A") + "p7@x.com,P7,L,,A\n"))
    after_a = snapshot("users")
    u = undo(pipeline, a)
    assert u["status"] == "completed"
    uu = undo(pipeline, u["run_id"])
    assert uu["status"] == "completed", uu
    now = snapshot("users")
    strip = {"updated_at", "deactivated_at"}  # the undo of a creation deactivates it anew
    for key, row in after_a.items():
        assert [kv for kv in now[key] if kv[0] not in strip] == [kv for kv in row if kv[0] not in strip]
    assert user("p7@x.com")["active"] is True and user("p3@x.com")["active"] is False
    with pytest.raises(CommandError, match=f"was undone by run {u['run_id']}"):
        start_undo(a)


def test_undo_of_a_hierarchy_run_with_unit_and_manager_moves_restores_tree_chains_and_groups(
    pipeline: Pipeline,
) -> None:
    connect()
    sync(pipeline, {"org.csv": UNITS, "pos.csv": POSITIONS, "user.csv": PEOPLE})
    before = {t: snapshot(t) for t in TABLES}
    moved_units = UNITS.replace("EAST,East,SALES,EU", "EAST,East,OPS,EU") + "NEW,New unit,OPS,\n"
    moved_people = PEOPLE.replace("m1,m1@x.com,M1,Doe,EAST,MGR,boss1", "m1,m1@x.com,M1,Doe,EAST,MGR,boss2").replace(
        "m2,m2@x.com,M2,Doe,OPS,", "m2,m2@x.com,M2,Doe,SALES,"
    )
    a = sync(pipeline, {"org.csv": moved_units, "pos.csv": POSITIONS, "user.csv": moved_people})
    assert a["status"] == "completed" and (a["details"]["units_moved"], a["details"]["manager_moves"]) == (1, 1)

    u = undo(pipeline, a["run_id"])
    assert u["status"] == "completed", u
    for t in TABLES:
        now = snapshot(t)
        for key, row in before[t].items():
            assert now.get(key) == row, f"lms.{t} {key} is not as before the run"
    assert set(snapshot("group_members")) == set(before["group_members"])
    (new_unit,) = sql("SELECT active FROM lms.org_units WHERE external_id = 'NEW'")
    assert new_unit == (False,), "a unit the run created is deactivated, never deleted"


def test_dry_run_prints_what_would_change_and_the_conflicts_and_changes_nothing(pipeline: Pipeline) -> None:
    apply()
    pipeline.import_files((FEED + "day1.csv", people(3)))
    a = pipeline.import_files((FEED + "day2.csv", people(3, tag="A") + "p8@x.com,P8,L,,A\n"))
    b = pipeline.import_files((FEED + "day3.csv", HEADER + "p2@x.com,P2,L,,B\n"))
    before = snapshot("users")
    journal = sql("SELECT count(*) FROM sync.journal")
    out = CliRunner().invoke(cli, ["undo", str(a), "--dry-run"])
    assert out.exit_code == 0, out.output
    assert f"person p2@x.com (changed by run {b})" in out.output and "people: restore 2, deactivate 1" in out.output
    as_json = json.loads(CliRunner().invoke(cli, ["undo", str(a), "--dry-run", "--json"]).output)
    assert (as_json["conflicts"], as_json["people"]["deactivations"]) == (1, 1)
    assert snapshot("users") == before and sql("SELECT count(*) FROM sync.journal") == journal
    assert sql("SELECT count(*) FROM sync.runs WHERE trigger = 'undo'") == [(0,)]
    assert sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'stage' AND tablename LIKE 'undo%'") == [(0,)]


def test_an_undo_over_a_threshold_waits_for_approval_then_applies(pipeline: Pipeline) -> None:
    apply("max_change = 2\n")
    pipeline.import_files((FEED + "day1.csv", people(2)))
    a = pipeline.import_files((FEED + "day2.csv", people(3, start=2)))  # three new people
    u_id = start_undo(a)  # would deactivate the three: a change over max_change = 2
    pipeline.drain()
    held = queries.run_detail(u_id)
    assert held is not None and held["status"] == "awaiting_approval"
    assert held["plan"]["held_because"] == ["it would change 3 of 5 people (max_change = 2)"]
    assert sql("SELECT count(*) FROM lms.users WHERE active") == [(5,)]
    approve(u_id)
    pipeline.drain()
    done = queries.run_detail(u_id)
    assert done is not None and done["status"] == "completed"
    assert sql("SELECT count(*) FROM lms.users WHERE active") == [(2,)]
    assert sql("SELECT count(*) FROM lms.users") == [(5,)], "deactivated, not deleted"


@pytest.mark.parametrize("status", ["dry_run", "not_journaled", "export"])
def test_only_completed_journaled_runs_of_import_kinds_can_be_undone(pipeline: Pipeline, status: str) -> None:
    apply()
    a = pipeline.import_files((FEED + "day1.csv", people(2)))
    if status == "dry_run":
        sql("UPDATE sync.runs SET dry_run = true WHERE id = %s", (a,))
        match = "was a dry run"
    elif status == "not_journaled":
        sql("UPDATE sync.runs SET journaled = false WHERE id = %s", (a,))
        match = "without the run journal"
    else:
        sql("UPDATE sync.runs SET status = 'failed' WHERE id = %s", (a,))
        match = "only completed runs"
    with pytest.raises(CommandError, match=match):
        start_undo(a)


def test_the_history_table_json_and_run_page_say_a_run_was_undone(pipeline: Pipeline) -> None:
    apply()
    pipeline.import_files((FEED + "day1.csv", people(2)))
    a = pipeline.import_files((FEED + "day2.csv", people(2, tag="A")))
    u = undo(pipeline, a)["run_id"]
    table = CliRunner().invoke(cli, ["history", "hr-users"])
    assert table.exit_code == 0, table.output
    rows = {line.split()[0]: line for line in table.output.splitlines()[1:]}
    assert f"undo of {a}" in rows[str(u)] and f"completed, undone by {u}" in rows[str(a)]
    as_json = {r["run_id"]: r for r in json.loads(CliRunner().invoke(cli, ["history", "--json"]).output)}
    assert (as_json[a]["undone_by"], as_json[u]["undo_of"], as_json[u]["type"]) == (u, a, "undo")
    shown = CliRunner().invoke(cli, ["run", str(a)])
    assert f"undone by run {u}" in shown.output
    actions = CliRunner().invoke(cli, ["run", str(a), "--json"])
    assert [x["action"] for x in json.loads(actions.output)["actions"]] == ["undo"]


def test_feedsync_undo_runs_the_undo_and_refuses_with_the_rows_named(pipeline: Pipeline) -> None:
    apply()
    pipeline.import_files((FEED + "day1.csv", people(2)))
    a = pipeline.import_files((FEED + "day2.csv", people(2, tag="A")))
    b = pipeline.import_files((FEED + "day3.csv", HEADER + "p1@x.com,P1,L,,B\n"))
    refused = CliRunner().invoke(cli, ["undo", str(a)])
    assert refused.exit_code != 0 and f"(changed by run {b})" in refused.output
    done = CliRunner().invoke(cli, ["undo", str(a), "--skip-conflicts", "--wait"])
    assert done.exit_code == 0, done.output
    assert "completed" in done.output
    assert user("p0@x.com")["attributes"] == {"department": "S"}
    assert user("p1@x.com")["attributes"] == {"department": "B"}


@pytest.mark.parametrize(
    ("status", "hint"),
    [
        (None, "feedsync history"),
        ("in_progress", "wait for it to end"),
        ("awaiting_approval", "feedsync reject"),
        ("cancelled", "import the feed"),
        ("not_journaled", "import the feed"),
    ],
)
def test_a_refused_undo_says_what_to_do(pipeline: Pipeline, status: str | None, hint: str) -> None:
    apply()
    a = pipeline.import_files((FEED + "day1.csv", people(2)))
    if status == "not_journaled":
        sql("UPDATE sync.runs SET journaled = false WHERE id = %s", (a,))
    elif status is not None:
        sql("UPDATE sync.runs SET status = %s WHERE id = %s", (status, a))
    refused = CliRunner().invoke(cli, ["undo", str(a if status else a + 100)])
    assert refused.exit_code != 0 and hint in refused.output, refused.output


def test_a_run_journal_is_removed_after_its_retention_and_the_run_can_no_longer_be_undone(
    pipeline: Pipeline,
) -> None:
    from datetime import UTC, datetime, timedelta

    from schemas.settings import get_settings
    from workers.runs import retention

    apply()
    a = pipeline.import_files((FEED + "day1.csv", people(3)))
    b = pipeline.import_files((FEED + "day2.csv", people(4)))
    days = get_settings().journal_retention_days
    ((b_end,),) = sql("SELECT finished_at FROM sync.runs WHERE id = %s", (b,))
    a_end = b_end - timedelta(days=1)
    sql("UPDATE sync.runs SET finished_at = %s WHERE id = %s", (a_end, a))
    # A day before A's journal is due nothing goes; once it is, A's goes and B's (a day younger) stays.
    retention.sweep(at=a_end + timedelta(days=days - 1))
    assert sql("SELECT DISTINCT run_id FROM sync.journal ORDER BY 1") == [(a,), (b,)]
    retention.sweep(at=a_end + timedelta(days=days, seconds=1))
    assert sql("SELECT DISTINCT run_id FROM sync.journal ORDER BY 1") == [(b,)]
    ((purged_on,),) = sql("SELECT journal_purged_at FROM sync.runs WHERE id = %s", (a,))
    assert purged_on is not None and purged_on > datetime.now(UTC)  # on the (test) database clock
    with pytest.raises(CommandError, match=f"run {a}'s journal was removed on .* can no longer be undone"):
        start_undo(a)
    assert undo(pipeline, b)["status"] == "completed"


def test_feedsync_undo_json_gives_the_undo_runs_id_and_status(pipeline: Pipeline) -> None:
    apply()
    pipeline.import_files((FEED + "day1.csv", people(2)))
    a = pipeline.import_files((FEED + "day2.csv", people(2, tag="A")))
    out = CliRunner().invoke(cli, ["undo", str(a), "--json"])
    assert out.exit_code == 0, out.output
    got = json.loads(out.stdout)  # the logs go to stderr
    assert got["status"] == "completed" and got["error"] is None
    assert sql("SELECT undo_of FROM sync.runs WHERE id = %s", (got["run_id"],)) == [(a,)]


def test_a_row_put_back_that_clashes_with_a_later_one_fails_the_undo_naming_table_and_constraint(
    pipeline: Pipeline,
) -> None:
    connect()
    sync(pipeline, {"org.csv": UNITS, "pos.csv": POSITIONS, "user.csv": PEOPLE})
    # Run A gives e1 another e-mail; run B gives e1's old address to a new person, z9.
    a = sync(pipeline, {"org.csv": UNITS, "pos.csv": POSITIONS, "user.csv": PEOPLE.replace("e1@x.com", "e1b@x.com")})
    z9 = "z9,e1@x.com,Z,Doe,EAST-1,REP,,NZ\n"
    sync(pipeline, {"org.csv": UNITS, "pos.csv": POSITIONS, "user.csv": PEOPLE.replace("e1@x.com", "e1b@x.com") + z9})
    before = snapshot("users")
    undo_id = start_undo(a["run_id"])
    pipeline.drain(expect_failures=True)
    u = queries.run_detail(undo_id)
    assert u is not None and u["status"] == "failed"
    assert f"undoing run {a['run_id']} would put back a row of lms.users that clashes" in u["error"]
    assert "constraint users_email_key" in u["error"] and "e1@x.com" not in u["error"]
    assert snapshot("users") == before
