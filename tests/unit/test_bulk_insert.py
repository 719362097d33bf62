"""A first import of many people builds lms.users' e-mail and manager indexes after the rows
(workers/connectors/people_bulk.py): the store ends exactly as the row-by-row insert leaves it,
the indexes as the migrations define them; a store being read, or a person created meanwhile,
sends the batch the usual way."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from producers import queries
from producers.commands import approve
from tests.conftest import DATABASE_URL, sql
from tests.data import PEOPLE as PEOPLE_FILE
from tests.data import POSITIONS, UNITS, apply, connect, sync
from tests.stubpipeline import HEADER, Pipeline
from workers.connectors import people_bulk as bulk

FEED = (
    HEADER + "".join(f"p{i}@x.com,P{i},L,{'boss@x.com' if i else ''},S\n" for i in range(5)) + "boss@x.com,Boss,B,,S\n"
)
NAMES = tuple(name for name, _ in bulk.INDEXES)


@pytest.fixture
def bulk_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Any batch is big enough (set before the pipeline reads its settings)."""
    monkeypatch.setenv("FEEDSYNC_LOAD_BULK_ROWS", "1")
    monkeypatch.setenv("FEEDSYNC_LOAD_BULK_LOCK_S", "0.2")
    yield


def index_oids() -> dict[str, int]:
    return dict(sql("SELECT relname, oid::bigint FROM pg_class WHERE relname = ANY(%s)", (list(NAMES),)))


def index_defs() -> dict[str, str]:
    return dict(sql("SELECT indexname, indexdef FROM pg_indexes WHERE indexname = ANY(%s)", (list(NAMES),)))


def people() -> list[tuple[Any, ...]]:
    return sql(
        """SELECT u.email, m.email, u.active FROM lms.users u LEFT JOIN lms.users m ON m.id = u.manager_id
           ORDER BY u.email"""
    )


def keys() -> list[tuple[Any, ...]]:
    """lms.users' primary key and every foreign key pointing at it, as the catalog defines them."""
    return sql(
        """SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), convalidated FROM pg_constraint
           WHERE conrelid = 'lms.users'::regclass AND contype = 'p' OR confrelid = 'lms.users'::regclass
           ORDER BY 1, 2"""
    )


def test_the_rebuilt_indexes_are_the_migrations_own(settings: Any) -> None:
    defs = index_defs()
    assert set(defs) == set(NAMES)
    for name, create in bulk.INDEXES:
        assert defs[name].replace(" USING btree", "") == create.as_string(), name
    (pkey,) = [k for k in keys() if k[1] == "users_pkey"]
    assert bulk.PRIMARY_KEY.as_string() == f"ALTER TABLE lms.users ADD CONSTRAINT users_pkey {pkey[2]}"


def test_a_first_import_builds_the_indexes_after_the_rows_and_ends_as_the_usual_insert(
    bulk_on: None, pipeline: Pipeline
) -> None:
    apply()
    oids, defs, constraints = index_oids(), index_defs(), keys()
    assert len(constraints) > 5, "the primary key and the foreign keys of the tables about people"
    pkey = sql("SELECT oid::bigint FROM pg_class WHERE relname = 'users_pkey'")
    run_id = pipeline.import_files(("import/user/internal/day1.csv", FEED))
    run = queries.run_detail(run_id)
    assert run is not None and run["status"] == "completed", run
    assert run["counts"]["created"] == 6
    assert people() == [("boss@x.com", None, True)] + [
        (f"p{i}@x.com", "boss@x.com" if i else None, True) for i in range(5)
    ]
    assert index_defs() == defs
    assert keys() == constraints, "the primary key and every foreign key are back as they were"
    assert all(index_oids()[n] != oids[n] for n in NAMES), "built anew"
    assert sql("SELECT oid::bigint FROM pg_class WHERE relname = 'users_pkey'") != pkey, "the key too"
    with pytest.raises(psycopg.errors.ForeignKeyViolation):  # the foreign keys hold again
        sql("INSERT INTO lms.deleted_people (user_id) VALUES (-1)")
    # The run journal has the new people as the insert trigger keeps them (one range of ids), and
    # the trigger is on again.
    assert sql("SELECT key, op FROM sync.journal WHERE run_id = %s AND tbl = 'users'", (run_id,)) == [(["1", "6"], "R")]
    assert sql("SELECT tgenabled FROM pg_trigger WHERE tgname = 'journal_i' AND tgrelid = 'lms.users'::regclass") == [
        ("O",)
    ]
    with pytest.raises(psycopg.errors.UniqueViolation):  # the rebuilt index holds
        sql("INSERT INTO lms.users (email) VALUES ('P1@X.com')")

    # A second day into a store as big as it brings: the usual insert, indexes untouched.
    oids = index_oids()
    pipeline.import_files(("import/user/internal/day2.csv", FEED + "new@x.com,N,N,,S\n"))
    assert index_oids() == oids
    assert ("new@x.com", None, True) in people()


def test_a_store_being_read_is_not_locked_the_batch_goes_the_usual_way(bulk_on: None, pipeline: Pipeline) -> None:
    apply()
    oids = index_oids()
    with psycopg.connect(DATABASE_URL) as reader:
        reader.execute("SELECT count(*) FROM lms.users").fetchall()  # holds its lock until it ends
        run_id = pipeline.import_files(("import/user/internal/day1.csv", FEED))
        run = queries.run_detail(run_id)
        assert run is not None and run["status"] == "completed", run
        assert index_oids() == oids, "the indexes were kept: the reader was not made to wait or fail"
    assert len(people()) == 6


def test_the_primary_key_stays_when_the_tables_pointing_at_it_hold_more_than_the_batch(
    bulk_on: None, pipeline: Pipeline
) -> None:
    apply()
    # One person in ten groups: ten memberships to check again, for a batch of six new people.
    ((uid,),) = sql("INSERT INTO lms.users (email) VALUES ('old@x.com') RETURNING id")
    sql("""INSERT INTO lms.groups (name, rule) SELECT 'G' || i, '{}' FROM generate_series(1, 10) i""")
    sql("INSERT INTO lms.group_members (group_id, user_id) SELECT id, %s FROM lms.groups", (uid,))
    sql("ANALYZE lms.group_members")
    (pkey,) = sql("SELECT oid::bigint FROM pg_class WHERE relname = 'users_pkey'")
    oids, constraints = index_oids(), keys()
    run_id = pipeline.import_files(("import/user/internal/day1.csv", FEED))
    run = queries.run_detail(run_id)
    assert run is not None and run["status"] == "completed", run
    assert run["counts"]["created"] == 6
    assert all(index_oids()[n] != oids[n] for n in NAMES), "the e-mail and manager indexes were built after"
    assert sql("SELECT oid::bigint FROM pg_class WHERE relname = 'users_pkey'") == [pkey], "the key was kept"
    assert keys() == constraints


def test_without_the_journal_trigger_the_first_import_journals_nothing(bulk_on: None, pipeline: Pipeline) -> None:
    apply()
    sql("DROP TRIGGER journal_i ON lms.users")  # as the bench's journal case measures the store
    try:
        run_id = pipeline.import_files(("import/user/internal/day1.csv", FEED))
        run = queries.run_detail(run_id)
        assert run is not None and run["status"] == "completed", run
        assert len(people()) == 6
        assert sql("SELECT count(*) FROM sync.journal WHERE run_id = %s AND tbl = 'users'", (run_id,)) == [(0,)]
    finally:
        sql(
            """CREATE TRIGGER journal_i AFTER INSERT ON lms.users REFERENCING NEW TABLE AS n
               FOR EACH STATEMENT EXECUTE FUNCTION sync.journal_insert('ARRAY[r.id::text]')"""
        )


def test_a_table_pointing_at_the_store_being_written_sends_the_batch_the_usual_way(
    bulk_on: None, pipeline: Pipeline
) -> None:
    apply()
    oids, constraints = index_oids(), keys()
    with psycopg.connect(DATABASE_URL) as writer:
        # An xAPI load between its statements: it holds its table until it commits.
        writer.execute("LOCK TABLE lms.xapi_statements IN ROW EXCLUSIVE MODE")
        run_id = pipeline.import_files(("import/user/internal/day1.csv", FEED))
        run = queries.run_detail(run_id)
        assert run is not None and run["status"] == "completed", run
        assert index_oids() == oids, "nothing was dropped: the writer was not made to wait or fail"
    assert keys() == constraints
    assert len(people()) == 6


def test_a_person_created_since_the_plan_is_adopted_and_the_indexes_are_back(bulk_on: None, pipeline: Pipeline) -> None:
    apply("max_create = 1")  # the run holds after its plan, with everyone new
    held = pipeline.import_files(("import/user/internal/day1.csv", FEED))
    assert queries.run_detail(held)["status"] == "awaiting_approval"  # type: ignore[index]
    sql("INSERT INTO lms.users (email, last_name) VALUES ('Boss@x.com', 'Other')")  # another writer, meanwhile
    oids = index_oids()
    approve(held)
    pipeline.drain()
    run = queries.run_detail(held)
    assert run is not None and run["status"] == "completed", run
    assert (run["counts"]["created"], run["counts"]["updated"]) == (5, 1)
    ((boss, last),) = sql("SELECT id, last_name FROM lms.users WHERE email_key = 'boss@x.com'")
    assert last == "B", "adopted and updated by the feed that brings them"
    assert sql("SELECT count(*) FROM lms.users WHERE manager_id = %s", (boss,)) == [(4,)]
    assert index_oids() == oids, "the dropped indexes came back with the savepoint"


def bundle_people() -> list[tuple[Any, ...]]:
    return sql(
        """SELECT u.external_id, m.external_id, u.active FROM lms.users u LEFT JOIN lms.users m ON m.id = u.manager_id
           ORDER BY 1"""
    )


BUNDLE_PEOPLE = [
    ("boss1", None, True),
    ("boss2", None, True),
    ("e1", "m1", True),
    ("m1", "boss1", True),
    ("m2", "boss2", True),
]


def test_a_first_bundle_builds_the_indexes_after_its_people_and_ends_as_the_usual_insert(
    bulk_on: None, pipeline: Pipeline
) -> None:
    connect()
    oids, defs, constraints = index_oids(), index_defs(), keys()
    run = sync(pipeline, {"org.csv": UNITS, "pos.csv": POSITIONS, "user.csv": PEOPLE_FILE})
    assert run["status"] == "completed", run
    assert run["counts"]["created"] == 5, run["counts"]
    assert bundle_people() == BUNDLE_PEOPLE
    assert index_defs() == defs
    assert keys() == constraints, "the primary key and every foreign key are back as they were"
    assert all(index_oids()[n] != oids[n] for n in NAMES), "built anew"
    with pytest.raises(psycopg.errors.ForeignKeyViolation):  # the foreign keys hold again
        sql("INSERT INTO lms.deleted_people (user_id) VALUES (-1)")
    # The new people were noted for the group rules, as the careful insert notes them.
    assert sql(
        """SELECT u.external_id FROM lms.group_members gm JOIN lms.groups g ON g.id = gm.group_id
           JOIN lms.users u ON u.id = gm.user_id WHERE g.name = 'Sales and below' ORDER BY 1"""
    ) == [("boss1",), ("e1",), ("m1",)]


def test_a_person_created_while_the_bundle_was_held_is_matched_and_the_others_go_in_bulk(
    bulk_on: None, pipeline: Pipeline
) -> None:
    """The bundle matches its people when it applies them, not when it plans: someone created while
    it waited for approval is taken over, and the four new ones (a store no bigger than they) are
    inserted before the indexes are built."""
    connect("max_create = 1")
    held = sync(pipeline, {"org.csv": UNITS, "pos.csv": POSITIONS, "user.csv": PEOPLE_FILE})
    assert held["status"] == "awaiting_approval", held
    sql("INSERT INTO lms.users (email, last_name) VALUES ('Boss1@x.com', 'Other')")  # another writer, meanwhile
    oids = index_oids()
    approve(held["run_id"])
    pipeline.drain()
    run = queries.run_detail(held["run_id"])
    assert run is not None and run["status"] == "completed", run
    assert (run["counts"]["created"], run["counts"]["updated"]) == (4, 1)
    assert bundle_people() == BUNDLE_PEOPLE
    assert sql("SELECT last_name FROM lms.users WHERE external_id = 'boss1'") == [("Doe",)]
    assert all(index_oids()[n] != oids[n] for n in NAMES), "built anew"
    with pytest.raises(psycopg.errors.UniqueViolation):  # the rebuilt index holds
        sql("INSERT INTO lms.users (email) VALUES ('E1@X.com')")
