"""The pipeline end to end on the stub broker: what lands in lms.users, the history and the errors."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import sql as q

from producers import queries
from tests.conftest import sql
from tests.stubpipeline import HEADER, Pipeline

FEED = HEADER + (
    'boss@x.com,Bea,Boss,,Board\nann@x.com,Ann,Anders,boss@x.com,"Sales, EMEA"\nbob@x.com,Bob,Berg,ann@x.com,Sales\n'
)


def users() -> dict[str, dict[str, Any]]:
    rows = sql(
        """SELECT u.email, u.first_name, u.last_name, m.email, u.attributes, u.active
           FROM lms.users u LEFT JOIN lms.users m ON m.id = u.manager_id"""
    )
    return {r[0]: {"first": r[1], "last": r[2], "manager": r[3], "attrs": r[4], "active": r[5]} for r in rows}


def codes(run_id: int) -> list[tuple[int | None, str]]:
    return [(e["line"], e["code"]) for e in queries.errors(run_id)]


def test_a_feed_creates_users_with_manager_links_and_profile_attributes(pipeline: Pipeline) -> None:
    run_id = pipeline.import_files(("import/user/internal/users.csv", FEED))
    run = queries.history()[0]
    assert run["run_id"] == run_id and run["status"] == "completed" and run["type"] == "file_drop"
    assert run["counts"] == {"read": 3, "created": 3, "updated": 0, "unchanged": 0, "deactivated": 0, "rejected": 0}
    u = users()
    assert u["bob@x.com"]["manager"] == "ann@x.com" and u["ann@x.com"]["manager"] == "boss@x.com"
    assert u["ann@x.com"]["attrs"] == {"department": "Sales, EMEA"}
    assert u["boss@x.com"]["manager"] is None


def test_an_unchanged_feed_rewrites_nobody_and_a_changed_row_is_the_only_update(pipeline: Pipeline) -> None:
    pipeline.import_files(("import/user/internal/day1.csv", FEED))
    stamps = dict(sql("SELECT email, updated_at FROM lms.users"))
    # Same people, different bytes (a trailing blank line), so the file is not a duplicate.
    pipeline.import_files(("import/user/internal/day2.csv", FEED + "\n"))
    assert queries.history()[0]["counts"]["unchanged"] == 3
    assert dict(sql("SELECT email, updated_at FROM lms.users")) == stamps
    pipeline.import_files(("import/user/internal/day3.csv", FEED.replace("Bob,Berg", "Bob,Bergström")))
    counts = queries.history()[0]["counts"]
    assert (counts["updated"], counts["unchanged"]) == (1, 2)
    assert users()["bob@x.com"]["last"] == "Bergström"


def test_a_value_moving_to_the_next_empty_column_is_a_change(pipeline: Pipeline) -> None:
    # The row hash must not read "Lee" then empty the same as empty then "Lee".
    pipeline.import_files(("import/user/internal/day1.csv", HEADER + "lee@x.com,Lee,,,Sales\n"))
    pipeline.import_files(("import/user/internal/day2.csv", HEADER + "lee@x.com,,Lee,,Sales\n"))
    assert queries.history()[0]["counts"]["updated"] == 1
    assert users()["lee@x.com"]["last"] == "Lee"


def test_the_same_bytes_dropped_again_are_a_duplicate_not_a_second_import(pipeline: Pipeline) -> None:
    pipeline.import_files(("import/user/internal/a.csv", FEED))
    pipeline.import_files(("import/user/internal/b.csv", FEED))
    assert [(h["type"], h["run_id"]) for h in queries.history()] == [("duplicate", None), ("file_drop", 1)]
    assert sql("SELECT path, duplicate FROM sync.file_drops ORDER BY id") == [
        ("import/user/internal/a.csv", False),
        ("import/user/internal/b.csv", True),
    ]
    assert not (pipeline.settings.drop_dir / "import/user/internal/b.csv").exists()


def test_bad_rows_are_reported_with_line_and_column_and_the_rest_imports(pipeline: Pipeline) -> None:
    feed = HEADER + (
        "boss@x.com,Bea,Boss,,Board\n"
        "not-an-email,Ann,Anders,boss@x.com,Sales\n"  # line 3: invalid e-mail
        ",Nobody,Here,boss@x.com,Sales\n"  # line 4: missing e-mail
        "self@x.com,Sam,Self,SELF@x.com,Sales\n"  # line 5: own manager (warning)
        "orphan@x.com,Olga,Orphan,ghost@x.com,Sales\n"  # line 6: unknown manager (warning)
        "weird@x.com,Wes,Weird,Company name,Sales\n"  # line 7: manager not an e-mail (warning)
    )
    run_id = pipeline.import_files(("import/user/internal/users.csv", feed))
    assert sorted(codes(run_id)) == [
        (3, "invalid_email"),
        (4, "required"),
        (5, "self_manager"),
        (6, "unknown_manager"),
        (7, "invalid_manager"),
    ]
    errs = {e["line"]: e for e in queries.errors(run_id)}
    assert (errs[3]["column"], errs[3]["column_name"]) == (1, "Email")
    assert (errs[6]["column"], errs[6]["column_name"]) == (4, "Manager Email")
    run = queries.history()[0]
    assert run["status"] == "completed_with_errors" and run["has_errors"]
    assert run["counts"]["rejected"] == 2 and run["counts"]["created"] == 4
    assert set(users()) == {"boss@x.com", "self@x.com", "orphan@x.com", "weird@x.com"}
    assert users()["self@x.com"]["manager"] is None


def test_a_duplicate_email_differing_only_in_case_is_an_error_on_both_rows(pipeline: Pipeline) -> None:
    feed = HEADER + "ann@x.com,Ann,A,,S\nbob@x.com,Bob,B,,S\nANN@X.COM,Annie,A,,S\n"
    run_id = pipeline.import_files(("import/user/internal/users.csv", feed))
    assert sorted(codes(run_id)) == [(2, "duplicate_user"), (4, "duplicate_user")]
    assert "line 2" in queries.errors(run_id)[0]["message"] and "line 4" in queries.errors(run_id)[0]["message"]
    assert set(users()) == {"bob@x.com"}


def test_a_person_listed_twice_is_refused_even_when_both_rows_match_the_store(pipeline: Pipeline) -> None:
    # Rows that match the store skip validation; the duplicate check still sees them.
    pipeline.import_files(("import/user/internal/day1.csv", FEED))
    day2 = FEED + "bob@x.com,Bob,Berg,ann@x.com,Sales\n"  # bob's row again, unchanged, on line 5
    run_id = pipeline.import_files(("import/user/internal/day2.csv", day2))
    assert sorted(codes(run_id)) == [(4, "duplicate_user"), (5, "duplicate_user")]
    assert queries.history()[0]["counts"]["unchanged"] == 2
    assert users()["bob@x.com"]["active"]


def test_a_user_in_two_files_of_one_run_is_an_error_in_both(pipeline: Pipeline) -> None:
    pipeline.drop("import/user/internal/a.csv", HEADER + "ann@x.com,Ann,A,,S\ncat@x.com,Cat,C,,S\n")
    pipeline.drop("import/user/internal/b.csv", HEADER + "dan@x.com,Dan,D,,S\nAnn@x.com,Ann,A,,S\n")
    from producers.commands import start_sync

    run_id = start_sync(pipeline.settings, "hr-users")
    pipeline.drain()
    errs = sorted((e["file"], e["line"], e["code"]) for e in queries.errors(run_id))
    assert errs == [
        ("import/user/internal/a.csv", 2, "duplicate_user"),
        ("import/user/internal/b.csv", 3, "duplicate_user"),
    ]
    assert set(users()) == {"cat@x.com", "dan@x.com"}
    assert queries.history()[0]["type"] == "on_demand" and queries.history()[0]["counts"]["read"] == 4


def test_a_file_lacking_a_mapped_column_is_rejected_naming_it_and_the_other_file_imports(pipeline: Pipeline) -> None:
    pipeline.drop("import/user/internal/good.csv", FEED)
    pipeline.drop("import/user/internal/bad.csv", "Email,First Name,Last Name,Department\na@x.com,A,B,C\n")
    from producers.commands import start_sync

    run_id = start_sync(pipeline.settings, "hr-users")
    pipeline.drain()
    run = queries.run_detail(run_id)
    assert run is not None and run["status"] == "completed_with_errors"
    bad = next(f for f in run["files"] if f["file"].endswith("bad.csv"))
    assert bad["status"] == "rejected" and "lacks the mapped column 'Manager Email'" in bad["error"]
    assert set(users()) == {"boss@x.com", "ann@x.com", "bob@x.com"}


def test_a_run_whose_only_file_is_bad_fails_with_one_sentence(pipeline: Pipeline) -> None:
    for name, content in [
        ("empty.csv", b""),
        ("binary.csv", b"\x00\x01\x02\xff" * 100),
        ("header-only.csv", HEADER.encode()),
    ]:
        run_id = pipeline.import_files((f"import/user/internal/{name}", content))
        run = queries.history()[0]
        assert run["run_id"] == run_id and run["status"] == "failed", name
        assert run["error"].startswith(f"import/user/internal/{name}: "), run["error"]
        assert codes(run_id) == [(None, "bad_file")]
    assert users() == {}


def test_every_malformed_line_is_reported_and_nothing_else_is_lost(pipeline: Pipeline) -> None:
    feed = (
        b"\xef\xbb\xbf"
        + HEADER.encode().replace(b"\n", b"\r\n")
        + b"a@x.com,Ann,A,,S\r\n"
        + b"b@x.com,Bob,B,,S,extra\r\n"  # line 3: too many fields
        + b"c@x.com,Ren\xe9e,C,,S\r\n"  # line 4: invalid UTF-8
        + b"d@x.com,Dan,D,,S\r\n"
        + b'e@x.com,"Eve,E,,S\r\n'  # line 6: unclosed quote to the end of the file
        + b"f@x.com,Fay,F,,S\r\n"
    )
    run_id = pipeline.import_files(("import/user/internal/messy.csv", feed))
    assert codes(run_id) == [(3, "field_count"), (4, "bad_encoding"), (6, "unclosed_quote")]
    assert set(users()) == {"a@x.com", "d@x.com", "f@x.com"}
    assert queries.history()[0]["counts"]["read"] == 6


def test_dont_import_from_source_and_empty_cells_keep_what_the_platform_has(pipeline: Pipeline) -> None:
    pipeline.import_files(("import/user/internal/a.csv", FEED))
    sql("""UPDATE lms.users SET attributes = attributes || '{"nickname": "Annie"}' WHERE email = 'ann@x.com'""")
    # Nickname column present in the feed but mapped DontImportFromSource; first name left empty.
    feed = "Email,First Name,Last Name,Manager Email,Department,Nickname\nann@x.com,,Anders,boss@x.com,Ops,Zed\n"
    pipeline.import_files(("import/user/internal/b.csv", feed))
    ann = users()["ann@x.com"]
    assert ann["first"] == "Ann" and ann["attrs"] == {"department": "Ops", "nickname": "Annie"}


def test_chunks_fan_out_and_fan_in_to_one_load(pipeline: Pipeline, monkeypatch: Any) -> None:
    pipeline.settings.chunk_rows = 100
    lines = "".join(f"u{i}@x.com,U{i},L{i},{'u0@x.com' if i else ''},S\n" for i in range(1050))
    run_id = pipeline.import_files(("import/user/internal/big.csv", HEADER + lines))
    stages = sql("SELECT stage, count(*) FROM sync.stage_runs WHERE run_id = %s GROUP BY stage", (run_id,))
    assert dict(stages) == {"plan": 1, "parse": 1, "transform": 11, "load": 1, "finalize": 1}
    assert sql("SELECT count(*) FROM lms.users WHERE manager_id IS NOT NULL")[0][0] == 1049
    assert sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'stage'")[0][0] == 0


def test_rows_people_refer_to_cannot_be_deleted(pipeline: Pipeline) -> None:
    # lms.users has no per-row foreign keys; what they guarded is forbidden instead.
    pipeline.import_files(("import/user/internal/users.csv", FEED))
    sql("INSERT INTO lms.org_units (external_id, name) VALUES ('U1', 'Unit')")
    for schema, table in (("sync", "connections"), ("lms", "org_units"), ("lms", "positions")):
        with pytest.raises(psycopg.errors.RaiseException, match="never deleted"):
            sql(q.SQL("DELETE FROM {}").format(q.Identifier(schema, table)))
    assert sql("SELECT count(*) FROM sync.connections")[0][0] == 1
