"""Wide files and wide mappings: a header past FEEDSYNC_MAX_COLUMNS is refused at once as a bad
file (never retried, never dead-lettered), a file wider than a PostgreSQL table imports its mapped
columns when the limit allows it, and a mapping is as wide as it needs to be."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook

from producers import queries
from producers.commands import apply_connections
from schemas.connections import ConfigError, load_connections_toml
from schemas.settings import Settings
from tests.conftest import sql
from tests.data import connect
from tests.stubpipeline import HEADER, Pipeline
from tests.workbooks import COLUMNS as XLSX_COLUMNS
from tests.workbooks import refused, rewrite


def wide(extra: int) -> str:
    """The pipeline's users feed with ``extra`` unmapped columns after the mapped ones."""
    pad = "," * extra
    return (
        HEADER.rstrip("\n") + "".join(f",X{i}" for i in range(extra)) + "\n"
        + f"a@x.com,Ann,A,,Sales{pad}\nb@x.com,Bob,B,a@x.com,Sales{pad}\n"
    )  # fmt: skip


def outcome() -> tuple[str, str | None, int]:
    run = queries.history()[0]
    return run["status"], run["error"], sql("SELECT count(*) FROM sync.dead_letters")[0][0]


def test_a_file_of_100k_columns_is_rejected_at_once_as_a_bad_file_naming_the_limit(pipeline: Pipeline) -> None:
    pipeline.import_files(("import/user/internal/wide.csv", wide(100_000)))
    status, error, dead = outcome()
    assert (status, dead) == ("failed", 0)
    assert error is not None
    assert error.startswith("import/user/internal/wide.csv: line 1: the header has more than the 500 columns")
    assert "FEEDSYNC_MAX_COLUMNS" in error
    assert sql("SELECT status, attempts FROM sync.stage_runs WHERE stage = 'parse'") == [("succeeded", 1)]
    assert sql("SELECT count(*) FROM lms.users")[0][0] == 0


def test_a_file_of_2000_columns_is_a_bad_file_by_default_and_imports_its_mapped_columns_when_allowed(
    pipeline: Pipeline,
) -> None:
    # Decided: the default limit refuses it (an HR export that wide is almost always a wrong export);
    # raised past PostgreSQL's 1,600 columns per table, the Python reader keeps the mapped ones.
    pipeline.import_files(("import/user/internal/a.csv", wide(2_000)))
    status, error, dead = outcome()
    assert (status, dead) == ("failed", 0) and error is not None and "more than the 500 columns" in error

    pipeline.settings.max_columns = 2_100
    pipeline.import_files(("import/user/internal/b.csv", wide(2_000) + "\n"))  # other bytes: not a duplicate
    assert outcome() == ("completed", None, 0)
    assert sql("SELECT email, attributes FROM lms.users ORDER BY email") == [
        ("a@x.com", {"department": "Sales"}),
        ("b@x.com", {"department": "Sales"}),
    ]
    assert sql("SELECT reader FROM sync.chunks WHERE file_id = 2") == [("python",)]


@pytest.mark.parametrize("n", [60, 150])
def test_a_mapping_with_many_profile_attributes_imports_them_all(pipeline: Pipeline, n: int) -> None:
    mapping = "\n".join(f'a{i} = "A{i}"' for i in range(n))
    apply_connections(
        load_connections_toml(
            f'[[connections]]\nname = "w"\nkind = "users"\npath = "import/user/w/*.csv"\n'
            f'[connections.mapping]\nemail = "Email"\n{mapping}\n'
        )
    )
    feed = "Email," + ",".join(f"A{i}" for i in range(n)) + "\na@x.com," + ",".join(map(str, range(n))) + "\n"
    pipeline.import_files(("import/user/w/a.csv", feed))
    assert outcome() == ("completed", None, 0)
    assert sql("SELECT attributes FROM lms.users") == [({f"a{i}": str(i) for i in range(n)},)]
    # The same rows again (other bytes) are unchanged: the row hash over every value reads the same.
    pipeline.import_files(("import/user/w/b.csv", feed + "\n"))
    assert queries.history()[0]["counts"]["unchanged"] == 1


def test_a_hierarchy_file_with_60_extra_attributes_imports_them_all(pipeline: Pipeline) -> None:
    extra = "\n".join(f'a{i} = "A{i}"' for i in range(60))
    connect(
        'parts = ["org"]', mappings=f'[connections.files.org.mapping]\nkey = "Id"\nname = "Name"\n{extra}\n', rules=""
    )
    pipeline.drop(
        "import/hierarchy/org.csv",
        "Id,Name," + ",".join(f"A{i}" for i in range(60)) + "\nU1,Unit," + ",".join(map(str, range(60))) + "\n",
    )
    run = pipeline.sync("hr")
    assert run["status"] == "completed", run["error"]
    assert sql("SELECT attributes FROM lms.org_units") == [({f"a{i}": str(i) for i in range(60)},)]


def test_a_mapping_wider_than_a_table_can_hold_is_refused_at_apply_on_its_line() -> None:
    mapping = "\n".join(f'a{i} = "A{i}"' for i in range(1_000))
    with pytest.raises(ConfigError) as exc:
        load_connections_toml(
            f'[[connections]]\nname = "w"\nkind = "users"\n[connections.mapping]\nemail = "E"\n{mapping}\n'
        )
    assert str(exc.value) == (
        "connections.toml:1005: connections[0] mapping.a999: "
        "the mapping names 1001 attributes; at most 1000 can be imported from one file"
    )


def test_a_workbook_wider_than_the_limit_is_refused_even_when_its_sheet_hides_its_size(tmp_path: Path) -> None:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append([*XLSX_COLUMNS.values(), *(f"x{i}" for i in range(600))])
    ws.append(["a@x.com", 1, 42825, "T"])
    wb.save(tmp_path / "w.xlsx")
    with zipfile.ZipFile(tmp_path / "w.xlsx") as z:
        sheet = z.read("xl/worksheets/sheet1.xml")
    start = sheet.index(b"<dimension")
    hidden = rewrite(
        tmp_path / "w.xlsx",
        tmp_path / "hidden.xlsx",
        {"xl/worksheets/sheet1.xml": sheet[:start] + sheet[sheet.index(b"/>", start) + 2 :]},
    )
    assert "w.xlsx" not in refused(hidden)  # the label is the file's own name
    assert "hidden.xlsx: line 1: the header has more than the 500 columns a feed may have" in refused(
        hidden, Settings()
    )
