"""Whatever a row holds, it is a row error or a stored row, never a failed file: random values
through each kind's parse, transform and load (the stub-broker pipeline, the real PostgreSQL).

A NUL in a CSV's first 64 KiB makes the file a bad file on purpose (it is binary), so the CSV
values here hold no NUL; one further in is tests/unit/test_nul_rows.py. A workbook cannot hold
one at all (XML 1.0 has no such character), so openpyxl's illegal characters are left out too.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from producers import queries
from producers.commands import apply_connections
from schemas.connections import load_connections_toml
from tests.conftest import sql
from tests.contentdata import COLUMNS as GA_COLUMNS
from tests.contentdata import META_HEADER, PROGRESS_HEADER
from tests.contentdata import TOML as GA_TOML
from tests.contentdata import setup as hmm_setup
from tests.data import connect as hierarchy_connect
from tests.stubpipeline import Pipeline
from tests.xapidata import COMPLETED, connect

EXAMPLES = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
#: Values that broke a row path once, among random text.
EDGES = [
    "0001-01-01T00:30:00+01:00",
    "9999-12-31T23:30:00-01:00",
    "0000-01-01",
    "2/30/2026",
    "1e400",
    "-0",
    "99999999999999",
    "NaN",
    "\\u0000",
    "\ud7ff\ufffd",
    "mailto:",
    "a@b",
    "https://x.test/c1",
    "2026-11-01T10:00:00Z",
    " ",
]
TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=24)
CELL = st.one_of(TEXT, st.sampled_from(EDGES))
serial = itertools.count()


def csv_text(header: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return out.getvalue()


def assert_not_failed(run_id: int) -> dict[str, Any]:
    run = queries.run_detail(run_id)
    assert run is not None
    assert run["status"] != "failed", (run["error"], run["details"])
    assert sql("SELECT count(*) FROM sync.dead_letters") == [(0,)]
    return run


@EXAMPLES
@given(rows=st.lists(st.lists(CELL, min_size=6, max_size=6), min_size=1, max_size=8), vector=st.booleans())
def test_random_mapped_xapi_rows_are_row_errors_or_statements_on_either_path(
    pipeline: Pipeline, rows: list[list[str]], vector: bool
) -> None:
    pipeline.settings.vector_transform = vector
    connect()
    good = [f"n{next(serial)}@x.com", COMPLETED, "https://x.test/c1", "0.5", "true", "2026-11-01"]
    run_id = pipeline.import_files(
        (
            f"import/xapi/{next(serial)}.csv",
            csv_text(["Email", "Verb", "Activity", "Score", "Done", "When"], [good, *rows]),
        )
    )
    assert_not_failed(run_id)
    rejected = {r[0] for r in sql("SELECT line FROM sync.row_errors WHERE run_id = %s AND rejected", (run_id,))}
    stored = {r[0] for r in sql("SELECT source_line FROM lms.xapi_statements WHERE source_file_id IN "
                                "(SELECT file_id FROM sync.run_files WHERE run_id = %s)", (run_id,))}  # fmt: skip
    assert 2 in stored and 2 not in rejected


JSON_LEAF = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8), st.sampled_from(["\x00", "\\ud800"])
)
JSON_VALUE = st.recursive(JSON_LEAF, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(TEXT, kids, max_size=3))


@EXAMPLES
@given(
    extension=JSON_VALUE,
    timestamp=st.one_of(st.sampled_from(EDGES), st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())),
    raw=st.lists(CELL, max_size=3),
    depth=st.integers(0, 3000),
)
def test_random_whole_statements_are_row_errors_or_statements(
    pipeline: Pipeline, extension: Any, timestamp: str, raw: list[str], depth: int
) -> None:
    apply_connections(load_connections_toml('[[connections]]\nname = "w"\nkind = "xapi"\nstatement_column = "S"\n'))
    base = {"actor": {"mbox": f"mailto:n{next(serial)}@x.com"}, "verb": {"id": COMPLETED},
            "object": {"id": "https://x.test/c1"}}  # fmt: skip
    cells = [
        json.dumps(base),
        json.dumps({**base, "timestamp": timestamp, "context": {"extensions": {"https://x.test/e": extension}}}),
        json.dumps({**base, "result": {"extensions": {"https://x.test/e": json.loads("[" * 0 + "1")}}})[:-2]
        + "," + '"d":' + "[" * depth + "]" * depth + "}}",
        *raw,
    ]  # fmt: skip
    run_id = pipeline.import_files((f"import/xapi/{next(serial)}.csv", csv_text(["S"], [[c] for c in cells])))
    assert_not_failed(run_id)
    assert sql("SELECT min(source_line) FROM lms.xapi_statements WHERE source_file_id IN "
               "(SELECT file_id FROM sync.run_files WHERE run_id = %s)", (run_id,)) == [(2,)]  # fmt: skip


USER_HEADER = ["Email", "First Name", "Last Name", "Manager Email", "Department"]


@EXAMPLES
@given(rows=st.lists(st.lists(CELL, min_size=5, max_size=5), min_size=1, max_size=8))
def test_random_users_rows_are_row_errors_or_people(pipeline: Pipeline, rows: list[list[str]]) -> None:
    good = [f"n{next(serial)}@x.com", "Ann", "A", "", "S"]
    run_id = pipeline.import_files(("import/user/internal/p.csv", csv_text(USER_HEADER, [good, *rows])))
    assert_not_failed(run_id)


@EXAMPLES
@given(rows=st.lists(st.lists(CELL, min_size=8, max_size=8), min_size=1, max_size=6))
def test_random_hierarchy_rows_are_row_errors_or_stored(pipeline: Pipeline, rows: list[list[str]]) -> None:
    hierarchy_connect(rules="")
    n = next(serial)
    org = csv_text(["Unit ID", "Unit", "Parent ID", "Region"], [[f"U{n}", "Unit", "", "EU"], *[r[:4] for r in rows]])
    user = csv_text(
        ["Employee ID", "Email", "First", "Last", "Unit ID", "Position ID", "Manager ID", "Country"],
        [[f"e{n}", f"e{n}@x.com", "E", "F", f"U{n}", "", "", "NZ"], *rows],
    )
    for name, text in {"org.csv": org, "user.csv": user}.items():
        pipeline.drop(f"import/hierarchy/{name}", text)
    assert_not_failed(pipeline.sync("hr")["run_id"])


@EXAMPLES
@given(
    meta=st.lists(st.lists(CELL, min_size=19, max_size=19), min_size=1, max_size=5),
    progress=st.lists(st.lists(CELL, min_size=13, max_size=13), min_size=1, max_size=5),
)
def test_random_hmm_rows_are_row_errors_or_stored(
    pipeline: Pipeline, meta: list[list[str]], progress: list[list[str]]
) -> None:
    hmm_setup(pipeline)
    n = next(serial)
    pipeline.drop(
        "import/hmm/hmm12_metadata.csv", csv_text(META_HEADER.strip().split(","), [[f"P{n}", *meta[0][1:]], *meta])
    )
    pipeline.drop(
        f"import/hmm/client_hmm12_2024{1 + n % 12:02d}01.csv", csv_text(PROGRESS_HEADER.strip().split(","), progress)
    )
    assert_not_failed(pipeline.sync("hmm")["run_id"])


def _workbook_value(value: str) -> str:
    return str(ILLEGAL_CHARACTERS_RE.sub("", value))


WORKBOOK_CELL = st.one_of(CELL.map(_workbook_value), st.floats(allow_nan=False), st.integers(-(10**6), 3 * 10**6))


@EXAMPLES
@given(rows=st.lists(st.lists(WORKBOOK_CELL, min_size=13, max_size=13), min_size=1, max_size=6))
def test_random_getabstract_rows_are_row_errors_or_stored(
    pipeline: Pipeline, tmp_path: Path, rows: list[list[Any]]
) -> None:
    apply_connections(load_connections_toml(GA_TOML))
    n = next(serial)
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(GA_COLUMNS)
    ws.append([1, f"g{n}@x.com", f"g{n}@x.com", "F", "L", n, "en", "2024-05-01", 0.5, "T", "Sales", "Audio", "PULL"])
    for row in rows:
        ws.append(row)
    path = tmp_path / f"{n}.xlsx"
    wb.save(path)
    pipeline.drop(
        f"import/getabstract/report_export_2017_{1 + n % 12:02d}_01_{n // 3600 % 24:02d}{n // 60 % 60:02d}{n % 60:02d}"
        ".xlsx",
        path.read_bytes(),
    )
    assert_not_failed(pipeline.sync("ga")["run_id"])
