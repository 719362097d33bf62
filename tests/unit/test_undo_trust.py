"""Undo an admin can trust: an undo's restores are not conflicts (undo run 2, then run 1, finds
none), conflicts and plan lines name people and records as the admin knows them, and the dry run
counts each person once."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from producers.cli import cli
from producers.commands import CommandError
from producers.undo import preview, preview_lines, start_undo
from tests.conftest import sql
from tests.data import apply, people
from tests.stubpipeline import HEADER, Pipeline
from tests.undoing import FEED, snapshot, undo, user


def test_undo_of_the_first_import_after_a_later_run_and_its_undo_finds_no_false_conflicts(pipeline: Pipeline) -> None:
    apply()
    pipeline.import_files((FEED + "day0.csv", people(2, start=10)))  # people the two runs never touch
    before = snapshot("users")
    one = pipeline.import_files((FEED + "day1.csv", people(4)))  # creates p0..p3
    two = pipeline.import_files((FEED + "day2.csv", people(4, tag="B")))  # changes every one of them
    assert undo(pipeline, two)["status"] == "completed"
    p = preview(one)
    assert (p["conflicts"], p["conflicts_sample"]) == (0, []), "the undo of run 2 gave the rows back: no conflict"
    u = undo(pipeline, one)
    assert u["status"] == "completed", u
    assert u["details"]["conflicts_skipped"] == 0
    now = snapshot("users")
    for key, row in before.items():
        assert now[key] == row
    assert sql("SELECT count(*) FROM lms.users WHERE active AND email LIKE 'p_@x.com'") == [(0,)]


def test_a_later_run_that_is_still_in_place_is_a_conflict_and_an_undo_of_its_undo_too(pipeline: Pipeline) -> None:
    apply()
    one = pipeline.import_files((FEED + "day1.csv", people(2)))
    two = pipeline.import_files((FEED + "day2.csv", HEADER + "p1@x.com,P1,L,,B\n"))
    with pytest.raises(CommandError, match=rf"person p1@x\.com \(changed by run {two}\)"):
        start_undo(one)
    u = undo(pipeline, two)
    assert preview(one)["conflicts"] == 0
    # Undoing the undo puts run 2's change back: a conflict again, named by the run that made it.
    uu = undo(pipeline, u["run_id"])
    assert uu["status"] == "completed", uu
    with pytest.raises(CommandError, match=rf"person p1@x\.com \(changed by run {uu['run_id']}\)"):
        start_undo(one)


def test_a_row_changed_outside_any_run_after_an_undo_is_still_a_conflict(pipeline: Pipeline) -> None:
    apply()
    one = pipeline.import_files((FEED + "day1.csv", people(2)))
    two = pipeline.import_files((FEED + "day2.csv", people(2, tag="B")))
    undo(pipeline, two)
    sql("UPDATE lms.users SET first_name = 'Outside' WHERE email = 'p0@x.com'")
    with pytest.raises(CommandError) as refused:
        start_undo(one)
    assert "person p0@x.com (changed outside feedsync's runs)" in str(refused.value)
    assert "lms.users" not in str(refused.value)


def test_the_dry_run_counts_each_person_once_and_names_no_table(pipeline: Pipeline) -> None:
    apply('full_feed = true\nmax_deactivate = "90%"\n')
    pipeline.import_files((FEED + "day1.csv", people(6)))
    gone = pipeline.import_files((FEED + "day2.csv", people(2, tag="T")))  # p2..p5 deactivated, p0, p1 -> T
    assert sql("SELECT count(*) FROM lms.users WHERE NOT active") == [(4,)]
    lines = preview_lines(preview(gone))
    assert "  people: restore 2, reactivate 4" in lines, lines
    out = CliRunner().invoke(cli, ["undo", str(gone), "--dry-run"])
    assert out.exit_code == 0, out.output
    assert out.output.splitlines() == lines
    assert "lms." not in out.output


def test_conflicts_on_learning_records_name_the_person_and_the_course(pipeline: Pipeline) -> None:
    from tests.contentdata import META_HEADER, PROGRESS_HEADER, course, progress, setup

    setup(pipeline)
    pipeline.drop("import/hmm/hmm12_metadata.csv", META_HEADER + course("P1", "Time Management"))
    pipeline.drop("import/hmm/client_hmm12_20240501.csv", PROGRESS_HEADER + progress("bob@x.com", "P1", "", "5/1/2024"))
    pipeline.sync("hmm")
    # Run a renames P1 and moves Bob's record on; then both are changed by hand, outside any run.
    pipeline.drop("import/hmm/hmm12_metadata.csv", META_HEADER + course("P1", "Time Mastery"))
    pipeline.drop(
        "import/hmm/client_hmm12_20240601.csv",
        PROGRESS_HEADER + progress("bob@x.com", "P1", "", "5/1/2024", "6/1/2024"),
    )
    a = pipeline.sync("hmm")["run_id"]
    sql("UPDATE lms.courses SET title = 'Renamed by hand' WHERE external_id = 'P1'")
    sql("UPDATE lms.learner_progress SET updated_at = now() - interval '1 day'")
    with pytest.raises(CommandError) as refused:
        start_undo(a)
    text = str(refused.value)
    assert "course P1 (changed outside feedsync's runs)" in text
    assert "learning record of bob@x.com on course P1 (changed outside feedsync's runs)" in text
    assert user("bob@x.com")["active"] is True
