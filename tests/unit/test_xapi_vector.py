"""The xAPI import's two paths give the same store, the same row errors and the same counts, row
by row: statements built column by column in the worker (workers/connectors/xapi/vector.py) and
the row path (COPY, then transform.py one row at a time), on a generated file with values of
every kind the fast checks leave to the row path (bad ones, and good ones in other forms).

The row path stays selectable (FEEDSYNC_VECTOR_TRANSFORM=false) because it is also where every
row the fast checks do not say yes to goes, so the comparison is against code that still runs."""

from __future__ import annotations

import csv
import io
import random
import uuid
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker

import workers.actors
from producers import queries, registry
from producers.commands import apply_connections, start_sync
from schemas.connections import load_connections_toml
from schemas.kinds import config_as
from schemas.kinds.xapi import XapiConnection
from schemas.states import AccessMode
from tests.conftest import _truncate, sql
from tests.stubpipeline import Pipeline
from workers.connectors.checks import Chunk
from workers.connectors.contract import RawBlock
from workers.connectors.xapi import statements, vector
from workers.connectors.xapi.fastpath import FastCheck
from workers.connectors.xapi.transform import STAGE_COLUMNS, attributes, staged_row, statement_of

TOML = """
[[connections]]
name = "lrs"
kind = "xapi"

[[connections.filters]]
name = "no previews"
column = "Verb"
op = "ne"
value = "http://adlnet.gov/expapi/verbs/previewed"

[connections.xapi]
"actor.mbox" = { column = "Email" }
"actor.name" = { column = "Name" }
"verb.id" = { column = "Verb" }
"verb.display.en-US" = { value = "did" }
"object.id" = { column = "Activity" }
"object.definition.name.en-US" = { column = "Title" }
"result.score.scaled" = { column = "Score", type = "number" }
"result.completion" = { column = "Done", type = "boolean" }
"timestamp" = { column = "When", type = "date" }
"""
HEADER = ["Email", "Name", "Verb", "Activity", "Title", "Score", "Done", "When"]
ADL = "http://adlnet.gov/expapi/verbs/"
N = 400
#: (column, value): each is a row the fast checks leave to the row path (or a filtered row).
ODD = [
    ("Email", ""),  # required
    ("Email", "mailto:ann@x.com"),  # prefixed already: taken as is
    ("Email", "MAILTO:ann@x.com"),
    ("Email", "not-an-address"),
    ("Name", ""),  # left out
    ("Name", 'Ann "the" \\ Zoë'),  # escaped in JSON
    ("Verb", "completed"),  # an IRI without a scheme
    ("Verb", ""),
    ("Verb", ADL + "previewed"),  # filtered
    ("Activity", "https://x.test/a b"),  # a space: no IRI
    ("Title", ""),  # the definition left out, the object kept
    ("Score", "0.50"),  # a number in another form
    ("Score", "1.0"),
    ("Score", "+.5"),
    ("Score", "1e-1"),
    ("Score", "12"),  # out of bounds
    ("Score", "high"),
    ("Score", "-1"),
    ("Done", "YES"),
    ("Done", "0"),
    ("Done", "maybe"),
    ("When", "2026-02-30T10:00:00Z"),  # no such day
    ("When", "2026-11-01T24:00:00Z"),
    ("When", "11/1/2026 9:05"),  # a US date
    ("When", "2026-11-01"),
    ("When", "2026-11-01T10:00:00+02:00"),
    ("When", "2026-11-01T10:00:00.5Z"),
    ("When", "someday"),
    ("When", ""),  # left out: stored now
    ("Email", "  spaced@x.com  "),
]


def feed() -> bytes:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(HEADER)
    for i in range(N):
        row = {
            "Email": f"p{i % 37}@x.com",
            "Name": f"Person {i % 37}",
            "Verb": ADL + ("completed", "experienced", "passed")[i % 3],
            "Activity": f"https://x.test/act/{i % 11}",
            "Title": f"Activity {i % 11}",
            "Score": f"0.{i % 10}5" if i % 4 else "",
            "Done": ("true", "false", "")[i % 3],
            "When": f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:07Z",
        }
        if i % 7 == 3 and i // 7 < len(ODD):
            column, value = ODD[i // 7]
            row[column] = value
        w.writerow([row[c] for c in HEADER])
    return out.getvalue().encode()


@pytest.fixture
def stub(settings: Any) -> Iterator[Any]:
    yield settings
    workers.actors.broker.flush_all()


def run(settings: Any, *, vector: bool, tag: str, chunk_rows: int = 60) -> dict[str, Any]:
    settings.vector_transform = vector
    settings.chunk_rows = chunk_rows  # 60: several blocks, the last one short
    broker = workers.actors.broker
    assert isinstance(broker, StubBroker)
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=20)
    worker.start()
    try:
        p = Pipeline(broker, settings)
        p.drop(f"import/xapi/{tag}.csv", feed())
        registry.scan(settings, announce=False)
        run_id = start_sync(settings, "lrs", access=AccessMode.ONLINE)
        p.drain()
    finally:
        worker.stop()
    readers = {r[0] for r in sql("SELECT reader FROM sync.chunks WHERE run_id = %s", (run_id,))}
    assert readers == ({"arrow"} if vector else {"copy"})
    detail = queries.run_detail(run_id)
    assert detail is not None
    return {
        "chunks": [r[0] for r in sql("SELECT rows FROM sync.chunks WHERE run_id = %s ORDER BY chunk_no", (run_id,))],
        "status": detail["status"],
        "counts": (detail["counts"], detail["content"]),
        "store": sql(
            """SELECT id::text, actor_email, verb_id, object_id,
                      CASE WHEN statement::jsonb ? 'timestamp' THEN "timestamp" END, statement::text,
                      source_line, voided
               FROM lms.xapi_statements ORDER BY source_line"""
        ),
        "errors": sql(
            """SELECT line, column_no, column_name, code, message, value, rejected FROM sync.row_errors
               WHERE run_id = %s ORDER BY line, code, column_no""",
            (run_id,),
        ),
    }


def test_the_vector_path_and_the_row_path_store_the_same_statements_and_errors(stub: Any) -> None:
    _truncate()
    apply_connections(load_connections_toml(TOML))
    rows = run(stub, vector=False, tag="same")
    # The reference saw good rows, bad rows of several kinds, and filtered rows.
    codes = {e[3] for e in rows["errors"]}
    assert {"required", "invalid_number", "invalid_boolean", "invalid_date", "invalid_statement"} <= codes
    assert rows["counts"][1]["statements_filtered"] >= 1 and rows["counts"][0]["created"] > N // 2
    _truncate()
    apply_connections(load_connections_toml(TOML))
    vector = run(stub, vector=True, tag="same")
    assert vector["store"] == rows["store"]
    assert vector["errors"] == rows["errors"]
    assert vector["counts"] == rows["counts"]
    assert vector["status"] == rows["status"]


def test_a_kind_that_prepares_its_blocks_takes_chunks_of_block_rows_at_most(stub: Any) -> None:
    """A prepared block is held while the next is read ahead: FEEDSYNC_BLOCK_ROWS bounds it below
    FEEDSYNC_CHUNK_ROWS, and the statements are the same as with chunks of that size."""
    _truncate()
    apply_connections(load_connections_toml(TOML))
    reference = run(stub, vector=True, tag="rows")
    _truncate()
    apply_connections(load_connections_toml(TOML))
    stub.block_rows = 60
    bounded = run(stub, vector=True, tag="rows", chunk_rows=10_000)
    assert bounded["chunks"] == reference["chunks"] and len(bounded["chunks"]) > 1
    assert max(bounded["chunks"]) == 60
    assert (bounded["store"], bounded["errors"], bounded["counts"]) == (
        reference["store"],
        reference["errors"],
        reference["counts"],
    )


def test_most_rows_of_a_mapped_block_are_made_column_by_column(settings: Any) -> None:
    """The comparison above is worth something only if the vector path makes the statements: here
    only the odd rows go to the row path."""
    data = feed()
    prepared, _, _ = prepare(TOML, HEADER, data[data.index(b"\n") + 1 :], N)
    assert prepared is not None
    odd = len([c for c, _ in ODD])
    assert prepared.fast.num_rows >= N - odd
    assert 0 < len(prepared.slow) + len(prepared.errors) <= odd
    assert prepared.filtered == 1


def test_derived_ids_are_the_uuid5_of_connection_file_and_line() -> None:
    namespace = statements.ID_NAMESPACE
    lines = range(2, 3002)
    expected = [str(uuid.uuid5(namespace, f"lrs\n{'ab' * 32}\n{line}")) for line in lines]
    assert statements.derived_ids("lrs", "ab" * 32, lines) == expected
    assert statements.derived_id("lrs", "ab" * 32, 7) == expected[5]


#: Values of each column, the first a good one: cells the two paths could read differently.
TRICKY = {
    "Email": [
        "a@x.com",
        " b@x.com ",
        "mailto:c@x.com",
        "MAILTO:d@x.com",
        "",
        "bad",
        "é@x.com",
        "a@x",
        "a@-x.com",
        "\u00a0e@x.com",
        "f@x.com\u2003",
    ],
    "Name": ["Ann", "", "  ", 'q"uote', "back\\slash", "tab\tx", "Zoë", "\u2028ls", "emoji 😀", "x" * 300],
    "Verb": [
        ADL + "completed",
        "completed",
        "",
        ADL + "previewed",
        "http://x/é",
        "urn:x:y",
        "http://x/a b",
        'http://x/"q',
    ],
    "Activity": ["https://x.test/a", "https://x.test/é", "", "x", "https://x.test/a?b=c&d=e#f", "https://x.test/%zz"],
    "Title": ["T", "", "Ü", 'a"b', "\\"],
    "Score": [
        "0.5",
        "0.50",
        "1",
        "1.0",
        "-1",
        "+0.5",
        ".5",
        "5.",
        "1e-1",
        "2",
        "-0",
        "nan",
        "inf",
        "",
        "0x1",
        "\u0661",
        "0.123456789012345678",
        "00.5",
    ],
    "Done": ["true", "false", "TRUE", "Yes", "no", "1", "0", "", "maybe"],
    "When": [
        "2026-11-01T10:00:00Z",
        "2026-02-29T10:00:00Z",
        "2024-02-29T10:00:00Z",
        "2026-11-01T24:00:00Z",
        "2026-11-01T23:59:60Z",
        "11/1/2026",
        "13/1/2026",
        "2026-11-01",
        "2026-11-01T10:00:00+02:00",
        "2026-11-01T10:00:00.123Z",
        "0001-01-01T00:00:00Z",
        "",
        "x",
        "\uff12\uff10\uff12\uff16-11-01T10:00:00Z",
    ],
}


def prepare(toml: str, header: list[str], body: bytes, lines: int) -> tuple[Any, int, XapiConnection]:
    """The connection applied, its file registered, and the block of ``lines`` CSV lines prepared by
    the vector path: (what it prepared, the file's id, the config)."""
    _truncate()
    apply_connections(load_connections_toml(toml))
    (file_id,) = sql(
        """INSERT INTO sync.feed_files (connection_id, original_path, stored_path, sha256, size_bytes)
           SELECT id, 'import/xapi/a.csv', 'a.csv', repeat('ab', 32), 1 FROM sync.connections WHERE name = 'lrs'
           RETURNING id"""
    )[0]
    cfg = config_as(XapiConnection, load_connections_toml(toml)[0])
    names = attributes(cfg)
    positions = {a: header.index(column) for a, column in names.items()}
    columns = {a: {"column": column, "no": positions[a] + 1} for a, column in names.items()}
    block = RawBlock(body, 2, lines, len(header), positions, "utf-8", ",")
    return vector.prepare_block(Chunk(1, file_id, 0, "a.csv", columns), cfg, block), file_id, cfg


def compare(toml: str, header: list[str], rows: list[list[str]]) -> int:
    """Make the rows by the vector path and by the row path's own functions (filters,
    statement_of, staged_row) and assert, row by row, the same statement text and indexed columns,
    or the same row error, or both filtered. Returns how many statements the vector path built."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    prepared, file_id, cfg = prepare(toml, header, out.getvalue().encode(), len(rows))
    assert prepared is not None
    plan = statements.plan_of(cfg)
    made = 0
    got: dict[int, tuple[Any, ...]] = {}
    for r in prepared.fast.to_pylist():
        got[r["line_no"]] = tuple(r[k] for k in STAGE_COLUMNS[2:]) if r["kept"] else ("filtered",)
        made += r["kept"]
    got |= {t[1]: tuple(t[2:]) for t in prepared.slow}
    got |= {e[0]: ("error", *e[1:]) for e in prepared.errors}
    for line, row in enumerate(rows, start=2):
        cells = {c: v.strip() for c, v in zip(header, row, strict=True)}
        want: tuple[Any, ...]
        if not statements.passes(cfg.filters, cells):
            want = ("filtered",)
        else:
            one = statement_of(cfg, cells, "ab" * 32, line, FastCheck(), plan)
            if isinstance(one, statements.RowProblem):
                want = ("error", one.column, one.code, one.message, cells.get(one.column or ""))
            else:
                want = staged_row(file_id, line, *one)[2:]
        assert got[line] == want, (line, row)
    return made


def test_random_rows_of_tricky_values_are_made_alike_by_both_paths(settings: Any) -> None:
    rnd = random.Random(16)
    rows = [[v[0] if rnd.random() < 0.8 else rnd.choice(v) for v in TRICKY.values()] for _ in range(3200)]
    assert compare(TOML, HEADER, rows) > 1000  # most rows are statements the vector path built


LEAN = """
[[connections]]
name = "lrs"
kind = "xapi"

[connections.xapi]
{paths}
"""
WHEN = ["2026-11-01T10:00:00Z", "0000-01-01T00:00:00Z", "0999-01-01T00:00:00Z", "2024-06-30T23:59:60Z", ""]


@pytest.mark.parametrize(
    "paths, header, rows",
    [
        pytest.param(  # a date at a path that is no timestamp: judged by that path's rule
            '"actor.mbox" = { column = "E" }\n"verb.id" = { column = "V", type = "date" }\n'
            '"object.id" = { column = "A" }\n"result.score.raw" = { column = "S", type = "date" }',
            ["E", "V", "A", "S"],
            [["a@x.com", w, "https://x/a", w] for w in WHEN] + [["a@x.com", ADL + "x", "https://x/a", ""]],
            id="date-elsewhere",
        ),
        pytest.param(  # year 0 and a leap second: not instants for Python's datetime
            '"actor.mbox" = { column = "E" }\n"verb.id" = { column = "V" }\n"object.id" = { column = "A" }\n'
            '"timestamp" = { column = "W", type = "date" }',
            ["E", "V", "A", "W"],
            [["a@x.com", ADL + "x", "https://x/a", w] for w in WHEN],
            id="odd-years",
        ),
        pytest.param(  # an object mapped in pieces whose first piece is empty: the row path's key order
            '"result.score.raw" = { column = "S", type = "number" }\n"actor.mbox" = { column = "E" }\n'
            '"verb.id" = { column = "V" }\n"object.id" = { column = "A" }\n'
            '"result.success" = { column = "O", type = "boolean" }',
            ["S", "E", "V", "A", "O"],
            [[s, "a@x.com", ADL + "x", "https://x/a", o] for s in ("", "0.5") for o in ("", "true")],
            id="key-order",
        ),
    ],
)
def test_mappings_the_review_found_are_made_alike_by_both_paths(
    settings: Any, paths: str, header: list[str], rows: list[list[str]]
) -> None:
    compare(LEAN.format(paths=paths), header, rows)
