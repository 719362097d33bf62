"""The assign step: a kind that changes people (users, hierarchy) evaluates the group rules again
after its load, so groups follow the people with no other command; the run counts the changes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from producers import queries, registry
from producers.cli import cli
from producers.commands import apply_connections, approve, start_sync
from producers.undo import start_undo
from schemas.connections import load_connections_toml
from schemas.rules import load_rules_toml
from schemas.states import AccessMode
from tests.conftest import DATABASE_URL, sql
from tests.stubpipeline import HEADER, USERS_TOML, Pipeline
from workers import connectors
from workers.connectors import tables
from workers.connectors.contract import ASSIGN_COUNTS, ImportKind
from workers.rules import apply_rules

#: The connections file an admin applies: the stub pipeline's users connection and two rules.
CONNECTIONS = (
    USERS_TOML
    + """
[[rules]]
group = "Sales"
attributes = { department = "Sales" }
programs = ["Sales onboarding"]

[[rules]]
group = "Below Ann"
manager = "ann@x.com"
"""
)

DAY1 = HEADER + "ann@x.com,Ann,A,,Sales\nbob@x.com,Bob,B,ann@x.com,Sales\ncy@x.com,Cy,C,bob@x.com,Ops\n"
#: Bob moves to Ops; nobody else's row changes.
DAY2 = HEADER + "ann@x.com,Ann,A,,Sales\nbob@x.com,Bob,B,ann@x.com,Ops\ncy@x.com,Cy,C,bob@x.com,Ops\n"


def apply_file(text: str) -> None:
    """What `feedsync connections apply FILE` does with a file: its connections, then its rules."""
    apply_connections(load_connections_toml(text))
    apply_rules(load_rules_toml(text))


def members(group: str) -> list[str]:
    return [
        e
        for (e,) in sql(
            """SELECT u.email FROM lms.group_members gm JOIN lms.groups g ON g.id = gm.group_id
               JOIN lms.users u ON u.id = gm.user_id WHERE g.name = %s ORDER BY u.email""",
            (group,),
        )
    ]


def shown(run_id: int) -> dict[str, Any]:
    (run,) = [r for r in queries.history("hr-users") if r["run_id"] == run_id]
    return run


def sync(pipeline: Pipeline, name: str, body: str, **options: Any) -> int:
    pipeline.drop(f"import/user/internal/{name}", body)
    registry.scan(pipeline.settings, announce=False)
    run_id = start_sync(pipeline.settings, "hr-users", **options)
    pipeline.drain()
    return run_id


def memberships() -> list[tuple[Any, ...]]:
    return sql("SELECT group_id, user_id FROM lms.group_members ORDER BY 1, 2")


def test_every_kind_that_assigns_groups_declares_what_the_rules_write_and_their_counts() -> None:
    assigning = [k for k in connectors.kinds() if isinstance(k, ImportKind) and k.ASSIGNS_GROUPS]
    assert {k.NAME for k in assigning} >= {"users", "hierarchy"}
    for k in assigning:
        assert set(tables.RULES) <= set(k.TABLES), k.NAME
        assert set(ASSIGN_COUNTS) <= set(k.HISTORY_COUNTS), k.NAME


def test_a_users_import_after_rules_exist_changes_group_membership_with_no_other_command(
    pipeline: Pipeline,
) -> None:
    apply_file(CONNECTIONS)
    assert members("Sales") == [] and members("Below Ann") == []

    first = pipeline.import_files(("import/user/internal/day1.csv", DAY1))
    assert members("Sales") == ["ann@x.com", "bob@x.com"]
    assert members("Below Ann") == ["bob@x.com", "cy@x.com"]
    assert sql("SELECT u.email, a.program FROM lms.assignments a JOIN lms.users u ON u.id = a.user_id ORDER BY 1") == [
        ("ann@x.com", "Sales onboarding"),
        ("bob@x.com", "Sales onboarding"),
    ]
    assert shown(first)["status"] == "completed"
    assert shown(first)["content"] == {"memberships_added": 4, "memberships_removed": 0}

    second = pipeline.import_files(("import/user/internal/day2.csv", DAY2))
    assert members("Sales") == ["ann@x.com"]
    assert members("Below Ann") == ["bob@x.com", "cy@x.com"]
    assert shown(second)["content"] == {"memberships_added": 0, "memberships_removed": 1}
    # The run's page (feedsync run) names the change; the programs stay with the person who left.
    detail = queries.run_detail(second)
    assert detail is not None
    assert [(m["group"], m["change"], m["people"]) for m in detail["memberships"]] == [("Sales", "removed", 1)]
    assert ("bob@x.com", "Sales onboarding") in sql(
        "SELECT u.email, a.program FROM lms.assignments a JOIN lms.users u ON u.id = a.user_id"
    )


def test_a_manager_change_moves_the_whole_team_below_them(pipeline: Pipeline) -> None:
    apply_file(CONNECTIONS)
    dan = "dan@x.com,Dan,D,cy@x.com,Ops\n"
    pipeline.import_files(("import/user/internal/day1.csv", DAY1 + dan))
    assert members("Below Ann") == ["bob@x.com", "cy@x.com", "dan@x.com"]
    # Cy now reports to nobody under Ann; Dan's own row is as it was, yet Dan is no longer below Ann.
    moved = HEADER + "ann@x.com,Ann,A,,Sales\nbob@x.com,Bob,B,ann@x.com,Sales\ncy@x.com,Cy,C,eve@x.com,Ops\n"
    run_id = pipeline.import_files(
        ("import/user/internal/day2.csv", moved + "eve@x.com,Eve,E,,Ops\n" + dan),
    )
    assert members("Below Ann") == ["bob@x.com"]
    assert shown(run_id)["content"] == {"memberships_added": 0, "memberships_removed": 2}


def test_a_person_a_full_feed_deactivates_leaves_their_groups(pipeline: Pipeline) -> None:
    apply_file(CONNECTIONS.replace('kind = "users"', 'kind = "users"\nfull_feed = true\nmax_deactivate = 5'))
    pipeline.import_files(("import/user/internal/day1.csv", DAY1))
    run_id = pipeline.import_files(("import/user/internal/day2.csv", HEADER + "ann@x.com,Ann,A,,Sales\n"))
    assert sql("SELECT email FROM lms.users WHERE NOT active ORDER BY 1") == [("bob@x.com",), ("cy@x.com",)]
    assert members("Sales") == ["ann@x.com"] and members("Below Ann") == []
    assert shown(run_id)["content"] == {"memberships_added": 0, "memberships_removed": 3}


@pytest.mark.parametrize("access", [AccessMode.ONLINE, AccessMode.EXCLUSIVE])
def test_a_run_whose_deactivations_wait_for_approval_assigns_before_and_after_them(
    pipeline: Pipeline, access: AccessMode
) -> None:
    held = 'kind = "users"\nfull_feed = true\nmax_deactivate = 1\non_threshold = "skip_deactivations"'
    apply_file(CONNECTIONS.replace('kind = "users"', held))
    pipeline.import_files(("import/user/internal/day1.csv", DAY1))
    # Dan is new in Sales; Bob and Cy are gone from the full feed: two deactivations, over the limit.
    run_id = sync(pipeline, "day2.csv", HEADER + "ann@x.com,Ann,A,,Sales\ndan@x.com,Dan,D,,Sales\n", access=access)
    assert shown(run_id)["status"] == "awaiting_approval"
    assert members("Sales") == ["ann@x.com", "bob@x.com", "dan@x.com"]  # the applied part was assigned

    approve(run_id)
    pipeline.drain()
    assert shown(run_id)["status"] == "completed"
    assert members("Sales") == ["ann@x.com", "dan@x.com"] and members("Below Ann") == []
    # Both parts' changes, counted once: Dan added; Bob twice and Cy once removed.
    assert shown(run_id)["content"] == {"memberships_added": 1, "memberships_removed": 3}


def test_a_dry_run_changes_no_membership(pipeline: Pipeline) -> None:
    apply_file(CONNECTIONS)
    pipeline.import_files(("import/user/internal/day1.csv", DAY1))
    before = memberships(), sql("SELECT count(*) FROM sync.membership_changes")
    run_id = sync(pipeline, "day2.csv", DAY2, dry_run=True)
    assert shown(run_id)["status"] == "completed" and shown(run_id)["dry_run"]
    assert (memberships(), sql("SELECT count(*) FROM sync.membership_changes")) == before
    assert members("Sales") == ["ann@x.com", "bob@x.com"]


@pytest.mark.parametrize("access", [AccessMode.ONLINE, AccessMode.EXCLUSIVE])
def test_a_load_delivered_twice_at_once_assigns_and_counts_once(pipeline: Pipeline, access: AccessMode) -> None:
    """The load message published twice: two worker threads take the copies together."""
    apply_file(CONNECTIONS)
    real = pipeline.broker.enqueue
    twice = []

    def enqueue(message, *, delay=None):  # type: ignore[no-untyped-def]
        if message.actor_name == "load_run":
            twice.append(message.actor_name)
            real(message.copy(), delay=delay)
        return real(message, delay=delay)

    pipeline.broker.enqueue = enqueue  # type: ignore[method-assign]
    try:
        run_id = sync(pipeline, "day1.csv", DAY1, access=access)
    finally:
        pipeline.broker.enqueue = real  # type: ignore[method-assign]
    assert twice
    assert shown(run_id)["status"] == "completed"
    assert shown(run_id)["content"] == {"memberships_added": 4, "memberships_removed": 0}
    assert sql("SELECT change, count(*) FROM sync.membership_changes WHERE run_id = %s GROUP BY 1", (run_id,)) == [
        ("added", 4)
    ]
    assert members("Sales") == ["ann@x.com", "bob@x.com"]


def test_undo_of_a_users_import_gives_the_memberships_back(pipeline: Pipeline) -> None:
    apply_file(CONNECTIONS)
    pipeline.import_files(("import/user/internal/day1.csv", DAY1))
    before = memberships()
    run_id = pipeline.import_files(("import/user/internal/day2.csv", DAY2))
    assert memberships() != before
    undo_id = start_undo(run_id)
    pipeline.drain()
    assert sql("SELECT status FROM sync.runs WHERE id = %s", (undo_id,)) == [("completed",)]
    assert memberships() == before


def test_the_history_table_shows_the_membership_changes(pipeline: Pipeline) -> None:
    apply_file(CONNECTIONS)
    pipeline.import_files(("import/user/internal/day1.csv", DAY1))
    out = CliRunner().invoke(cli, ["history", "hr-users"])
    assert out.exit_code == 0, out.output
    header, row = out.output.splitlines()[:2]
    assert "COUNTS" in header.split() and "memberships: 4 added" in row
    run_id = row.split()[0]
    detail = CliRunner().invoke(cli, ["run", run_id])
    assert detail.exit_code == 0, detail.output
    assert "memberships_added=4" in detail.output and "group memberships changed:" in detail.output


# A first evaluation of the group rules for many people checks the memberships' foreign keys once,
# after all groups (workers/rules.py, workers/fkeys.py): the same memberships, assignments and changes
# as row by row, and the constraints back as the catalog defined them; a membership table in use sends
# the evaluation the usual way.


@pytest.fixture
def bulk_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Any evaluation is big enough (set before the pipeline reads its settings)."""
    monkeypatch.setenv("FEEDSYNC_LOAD_BULK_ROWS", "1")
    monkeypatch.setenv("FEEDSYNC_LOAD_BULK_LOCK_S", "0.2")
    yield


def membership_keys() -> list[tuple[Any, ...]]:
    """Every foreign key of the membership tables, as the catalog defines it, with its oid."""
    return sql(
        """SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), convalidated, oid::bigint
           FROM pg_constraint
           WHERE contype = 'f'
             AND conrelid = ANY('{lms.group_members,sync.membership_changes,lms.assignments}'::regclass[])
           ORDER BY 1, 2"""
    )


def outcome() -> tuple[list[str], list[str], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    return (
        members("Sales"),
        members("Below Ann"),
        sql("SELECT u.email, a.program FROM lms.assignments a JOIN lms.users u ON u.id = a.user_id ORDER BY 1, 2"),
        sql(
            """SELECT g.name, u.email, m.change FROM sync.membership_changes m JOIN lms.groups g ON g.id = m.group_id
               JOIN lms.users u ON u.id = m.user_id ORDER BY 1, 2, 3"""
        ),
    )


def test_a_first_evaluation_checks_the_keys_once_and_ends_as_row_by_row(bulk_on: None, pipeline: Pipeline) -> None:
    apply_file(CONNECTIONS)
    before = membership_keys()
    assert len(before) == 7
    pipeline.import_files(("import/user/internal/day1.csv", DAY1))
    sales, below, assigned, changes = outcome()
    assert (sales, below) == (["ann@x.com", "bob@x.com"], ["bob@x.com", "cy@x.com"])
    assert assigned == [("ann@x.com", "Sales onboarding"), ("bob@x.com", "Sales onboarding")]
    assert changes == [
        ("Below Ann", "bob@x.com", "added"),
        ("Below Ann", "cy@x.com", "added"),
        ("Sales", "ann@x.com", "added"),
        ("Sales", "bob@x.com", "added"),
    ]
    after = membership_keys()
    assert [k[:4] for k in after] == [k[:4] for k in before], "every key back as it was, validated"
    assert sum(a[4] != b[4] for a, b in zip(after, before, strict=True)) == 6, "all but the one to sync.runs, anew"
    with pytest.raises(psycopg.errors.ForeignKeyViolation):  # they hold again
        sql("INSERT INTO lms.group_members (group_id, user_id) SELECT id, -1 FROM lms.groups LIMIT 1")

    # The next day's tables hold more than its three people: row by row, keys untouched.
    after = membership_keys()
    pipeline.import_files(("import/user/internal/day2.csv", DAY2))
    assert members("Sales") == ["ann@x.com"]
    assert membership_keys() == after


def test_a_membership_table_in_use_sends_the_evaluation_the_usual_way(bulk_on: None, pipeline: Pipeline) -> None:
    apply_file(CONNECTIONS)
    before = membership_keys()
    with psycopg.connect(DATABASE_URL) as reader:
        reader.execute("SELECT count(*) FROM lms.assignments").fetchall()  # holds its lock until it ends
        pipeline.import_files(("import/user/internal/day1.csv", DAY1))
        assert membership_keys() == before, "nothing was dropped: the reader was not made to wait or fail"
    assert members("Below Ann") == ["bob@x.com", "cy@x.com"]
