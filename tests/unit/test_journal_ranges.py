"""Inserts into a table keyed by a drawn id are journaled as ranges of consecutive ids
(schemas/sql/046_journal_ranges.sql); sync.journal_rows reads them back as one insert per id, and
a table keyed otherwise keeps a journal row per insert."""

from __future__ import annotations

from tests.conftest import sql
from tests.data import apply, people
from tests.stubpipeline import Pipeline


def test_a_first_import_is_journaled_as_ranges_that_read_back_as_its_people(pipeline: Pipeline) -> None:
    apply()
    run_id = pipeline.import_files(("import/user/internal/day1.csv", people(50)))
    ranges = sql("SELECT op, key FROM sync.journal WHERE run_id = %s AND tbl = 'users'", (run_id,))
    assert ranges and all(op == "R" for op, _ in ranges)
    assert len(ranges) < 50, "consecutive ids make ranges, not a row each"
    inserted = sql(
        "SELECT key[1]::bigint FROM sync.journal_rows WHERE run_id = %s AND tbl = 'users' AND op = 'I' ORDER BY 1",
        (run_id,),
    )
    assert inserted == sql("SELECT id FROM lms.users ORDER BY id")


def test_ids_with_gaps_make_one_range_per_run_of_consecutive_ids(pipeline: Pipeline) -> None:
    apply()
    # A table keyed by id, written in one statement of a journaled run: ids 1-3, 7, 9-10.
    rows = sql(
        """WITH s AS (SELECT set_config('feedsync.run_id', '424242', true)),
                ins AS (INSERT INTO lms.org_units (id, external_id, name)
                        OVERRIDING SYSTEM VALUE
                        SELECT i, 'U' || i, 'Unit ' || i FROM s, unnest(ARRAY[1, 2, 3, 7, 9, 10]) i RETURNING id)
           SELECT count(*) FROM ins"""
    )
    assert rows == [(6,)]
    assert sql("SELECT key FROM sync.journal WHERE run_id = 424242 AND op = 'R' ORDER BY key[1]::int") == [
        (["1", "3"],),
        (["7", "7"],),
        (["9", "10"],),
    ]
    assert sql("SELECT key[1] FROM sync.journal_rows WHERE run_id = 424242 ORDER BY key[1]::int") == [
        ("1",),
        ("2",),
        ("3",),
        ("7",),
        ("9",),
        ("10",),
    ]
