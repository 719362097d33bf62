"""The vectorised path (a clean block read, validated, mapped and hashed by pyarrow in the worker)
and the per-row SQL path give the same store, the same row errors and the same run counts, row by
row, on a generated feed with bad rows of every kind; with one or two worker threads, online or
exclusive. A row hashes the same on both: a feed imported by one path and read again by the other
changes nobody.

The old path stays selectable (FEEDSYNC_VECTOR_TRANSFORM=false) because it is also the fallback
for every block the worker leaves to PostgreSQL, so the comparison is against code that still runs."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker

import workers.actors
from producers import queries, registry
from producers.commands import apply_connections, start_sync
from schemas.connections import load_connections_toml
from schemas.kinds import connection_from_json
from schemas.states import AccessMode
from tests.conftest import _truncate, sql
from tests.stubpipeline import Pipeline
from workers import store
from workers.connectors.checks import Chunk
from workers.connectors.contract import RawBlock
from workers.connectors.users import blockwrite
from workers.connectors.users import vector as users_vector

TOML = """
[[connections]]
name = "hr-users"
kind = "users"
path = "import/user/internal/*.csv"
full_feed = true
required = ["email", "last_name"]
no_manager_values = ["ROOT"]

[connections.mapping]
email = "Email"
first_name = "First Name"
last_name = "Last Name"
manager = "Manager Email"
state = "Status"
department = "Department"
title = "Title"
"""
HEADER = ["Email", "First Name", "Last Name", "Manager Email", "Status", "Department", "Title"]
N = 240


def _row(i: int, day: int) -> list[str]:
    return [
        f"p{i}@x.com",
        f"First{i}",
        f"Last{i}",
        f"p{(i - 1) // 4}@x.com" if i else "",
        "Active",
        f"Dept {i % 7}" if day == 1 or i % 10 else f"Moved {i}",  # day 2: every tenth person changes
        "Engineer, Senior" if i % 3 else "",
    ]


def feed(day: int, *, reverse: bool = False) -> bytes:
    """Day 1: bad rows of every kind, by validation and by CSV; day 2: readable, a tenth changed, five
    gone. ``reverse``: the same people bottom up (other bytes, so not set aside as a file seen before)."""
    rows = {i: _row(i, day) for i in range(N) if day == 1 or i < N - 5}
    if day == 1:
        rows[3][0] = "  P3@X.COM  "  # the key is the trimmed lower-case address
        rows[5][0] = ""  # required
        rows[7][0] = "bad@"  # invalid_email
        rows[9][0] = "a..b@x.com"
        rows[11][0] = "x" * 250 + "@x.com"  # longer than 254
        rows[13][3] = "p13@x.com"  # self_manager (a warning)
        rows[15][4] = "Sabbatical"  # invalid_state: refused, the person kept
        rows[17][2] = "  "  # last_name required
        rows[19][3] = "nobody@x.com"  # unknown_manager
        rows[21][3] = "not-an-email"  # invalid_manager
        rows[23][3] = "root"  # no manager
        rows[25][4] = " inactive "  # deactivated by state
        rows[27][5] = 'back\\slash "quoted" \t tab'
        rows[29][0] = "P28@x.com"  # duplicate_user, both rows
        rows[31][5] = "Ünïcödé, comma"
        rows[33][1] = "  Spaced  "
        rows[35][5] = ""
        rows[37][5] = "ctl\x01char"  # a control character: that block takes the SQL path
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(HEADER)
    lines = [out.getvalue().encode()]
    for i in sorted(rows, reverse=reverse):
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerow(rows[i])
        lines.append(out.getvalue().encode())
    if day == 1:  # lines the Python reader reports, in blocks of their own
        lines.insert(120, b"short@x.com,Only,Three\n")  # field_count
        lines.insert(160, b"enc@x.com,Bj\xf6rn,L,,Active,D,T\n")  # bad_encoding
        lines.insert(180, b'ml@x.com,"Multi\nLine",L,,Active,D,T\n')  # a record across lines
        lines.insert(200, b'rb@x.com,Robert "Bob",L,,Active,D,T\n')  # a quote inside an unquoted field
    return b"".join(lines)


@pytest.fixture
def stub(settings: Any) -> Iterator[Any]:
    yield settings
    workers.actors.broker.flush_all()


def run(
    settings: Any, *, vector: bool, threads: int, access: AccessMode, day: int, tag: str, reverse: bool = False
) -> dict[str, Any]:
    """One import on a worker of ``threads`` threads; the store, the row errors and the counts after it."""
    settings.vector_transform = vector
    settings.chunk_rows = 50
    settings.load_batch_rows = settings.load_insert_rows = 60
    broker = workers.actors.broker
    assert isinstance(broker, StubBroker)
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=20)
    worker.start()
    try:
        p = Pipeline(broker, settings)
        p.drop(f"import/user/internal/{tag}-day{day}.csv", feed(day, reverse=reverse))
        registry.scan(settings, announce=False)
        run_id = start_sync(settings, "hr-users", access=access)
        p.drain()
    finally:
        worker.stop()
    readers = {r[0] for r in sql("SELECT reader FROM sync.chunks WHERE run_id = %s", (run_id,))}
    assert ("arrow" in readers) is vector
    detail = queries.run_detail(run_id)
    assert detail is not None
    return {
        "status": detail["status"],
        "counts": detail["counts"],
        "store": sql(
            """SELECT u.email, u.first_name, u.last_name, u.attributes, m.email, u.active,
                      u.deactivated_at IS NOT NULL, u.source_hash
               FROM lms.users u LEFT JOIN lms.users m ON m.id = u.manager_id ORDER BY u.email"""
        ),
        "errors": sql(
            """SELECT line, column_no, column_name, code, message, value, rejected FROM sync.row_errors
               WHERE run_id = %s ORDER BY line, code, column_no""",
            (run_id,),
        ),
    }


def fresh() -> None:
    _truncate()
    apply_connections(load_connections_toml(TOML))


@pytest.mark.slow
def test_both_paths_give_the_same_store_errors_and_counts_with_one_or_two_workers_online_or_exclusive(
    stub: Any,
) -> None:
    fresh()
    reference = [run(stub, vector=False, threads=2, access=AccessMode.ONLINE, day=d, tag="feed") for d in (1, 2)]
    day1, day2 = reference
    # The reference itself saw every kind of bad row, and day 2 changed and deactivated people.
    codes = {e[3] for e in day1["errors"]}
    assert codes == {
        "required",
        "invalid_email",
        "self_manager",
        "invalid_state",
        "unknown_manager",
        "invalid_manager",
        "duplicate_user",
        "field_count",
        "bad_encoding",
    }
    # Deactivated: the five gone, and the two people only day 1's Python-read lines brought.
    assert day2["status"] == "completed" and day2["counts"]["updated"] > 0 and day2["counts"]["deactivated"] == 7
    for vector in (False, True):
        for threads in (1, 2):
            for access in (AccessMode.ONLINE, AccessMode.EXCLUSIVE):
                if (vector, threads, access) == (False, 2, AccessMode.ONLINE):
                    continue
                fresh()
                tag = f"{vector}-{threads}-{access.value}"
                got = [run(stub, vector=vector, threads=threads, access=access, day=d, tag="feed") for d in (1, 2)]
                for d, (want, have) in enumerate(zip(reference, got, strict=True), start=1):
                    assert have["store"] == want["store"], (tag, d)
                    assert have["errors"] == want["errors"], (tag, d)
                    assert have["counts"] == want["counts"], (tag, d)
                    assert have["status"] == want["status"], (tag, d)


@pytest.mark.parametrize("first", [False, True], ids=["sql-then-vector", "vector-then-sql"])
def test_a_feed_imported_by_one_path_is_unchanged_when_read_again_by_the_other(stub: Any, first: bool) -> None:
    fresh()
    before = run(stub, vector=first, threads=2, access=AccessMode.ONLINE, day=2, tag="a")
    again = run(stub, vector=not first, threads=2, access=AccessMode.ONLINE, day=2, tag="b", reverse=True)
    assert before["counts"]["created"] == N - 5
    assert (again["counts"]["created"], again["counts"]["updated"]) == (0, 0)
    assert again["counts"]["unchanged"] == N - 5
    assert again["store"] == before["store"]


def test_rows_already_in_the_store_as_they_are_go_no_further_than_their_key(stub: Any) -> None:
    fresh()
    run(stub, vector=False, threads=2, access=AccessMode.ONLINE, day=2, tag="a")
    lines = feed(2).splitlines(keepends=True)[1:51]  # the first 50 people, as stored
    lines[7] = lines[7].replace(b"Dept", b"Moved")  # one of them changed since
    positions = {a: i for i, a in enumerate(["email", "first_name", "last_name", "manager", "state", "department"])}
    positions["title"] = 6
    columns = {a: {"column": HEADER[i], "no": i + 1} for a, i in positions.items()}
    chunk = Chunk(1, 1, 0, "users.csv", columns)
    # As the run has it (jsonb orders the mapping's keys, and with them the hash's profile attributes).
    config = connection_from_json(sql("SELECT config FROM sync.runs ORDER BY id DESC LIMIT 1")[0][0])
    prepared = users_vector.prepare_block(chunk, config, RawBlock(b"".join(lines), 2, 50, 7, positions, "utf-8", ","))
    assert prepared is not None and prepared.typed.num_rows == 50
    with store.connect() as conn:
        screened = blockwrite.screen_block(conn, chunk, config, prepared)
    assert screened.typed.column("line_no").to_pylist() == [9]
    assert screened.same is not None and screened.same.num_rows == 49
    assert {"file_id": 1, "line_no": 2, "key": "p0@x.com"} in screened.same.to_pylist()
