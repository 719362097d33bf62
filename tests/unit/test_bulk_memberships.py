"""A first evaluation of the group rules for many people checks the memberships' foreign keys once,
after all groups (workers/rules.py, workers/fkeys.py): the same memberships, assignments and
changes as row by row, and the constraints back as the catalog defined them; a membership table in
use sends the evaluation the usual way."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.conftest import DATABASE_URL, sql
from tests.stubpipeline import Pipeline
from tests.unit.test_assign import CONNECTIONS, DAY1, DAY2, apply_file, members


@pytest.fixture
def bulk_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Any evaluation is big enough (set before the pipeline reads its settings)."""
    monkeypatch.setenv("FEEDSYNC_LOAD_BULK_ROWS", "1")
    monkeypatch.setenv("FEEDSYNC_LOAD_BULK_LOCK_S", "0.2")
    yield


def keys() -> list[tuple[Any, ...]]:
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
    before = keys()
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
    after = keys()
    assert [k[:4] for k in after] == [k[:4] for k in before], "every key back as it was, validated"
    assert sum(a[4] != b[4] for a, b in zip(after, before, strict=True)) == 6, "all but the one to sync.runs, anew"
    with pytest.raises(psycopg.errors.ForeignKeyViolation):  # they hold again
        sql("INSERT INTO lms.group_members (group_id, user_id) SELECT id, -1 FROM lms.groups LIMIT 1")

    # The next day's tables hold more than its three people: row by row, keys untouched.
    after = keys()
    pipeline.import_files(("import/user/internal/day2.csv", DAY2))
    assert members("Sales") == ["ann@x.com"]
    assert keys() == after


def test_a_membership_table_in_use_sends_the_evaluation_the_usual_way(bulk_on: None, pipeline: Pipeline) -> None:
    apply_file(CONNECTIONS)
    before = keys()
    with psycopg.connect(DATABASE_URL) as reader:
        reader.execute("SELECT count(*) FROM lms.assignments").fetchall()  # holds its lock until it ends
        pipeline.import_files(("import/user/internal/day1.csv", DAY1))
        assert keys() == before, "nothing was dropped: the reader was not made to wait or fail"
    assert members("Below Ann") == ["bob@x.com", "cy@x.com"]
