"""A workbook whose sheet XML is broken is a bad file: rejected once with one sentence that names
the sheet and never quotes a cell, not retried, not dead-lettered, nothing of it imported."""

from __future__ import annotations

import time
import zipfile
from pathlib import Path

import pytest

from producers.commands import apply_connections
from schemas.connections import load_connections_toml
from tests.conftest import sql
from tests.contentdata import TOML, report
from tests.gates import Gate
from tests.stubpipeline import HEADER, Pipeline
from tests.waiting import poll_until
from tests.workbooks import rewrite

NAME = "import/getabstract/report_export_2017_04_01.xlsx"
SHEET = "xl/worksheets/sheet1.xml"


def corrupted(tmp_path: Path, rows: int, damage: str) -> bytes:
    """A report of ``rows`` rows whose sheet XML is rewritten in the test: cut in the middle of the
    last row, or with a learner's e-mail written into a number cell of the last row."""
    good = tmp_path / "good.xlsx"
    report(good, [(f"p{i}@x.com", i, 42825, "Value") for i in range(rows)])
    with zipfile.ZipFile(good) as z:
        sheet = z.read(SHEET)
    last = sheet.rindex(b"<row ")
    if damage == "truncated":
        broken = sheet[: last + 40]
    else:
        cell = sheet.index(b"<v>42825</v>", last)
        broken = sheet[:cell] + b"<v>secret.person@x.com</v>" + sheet[cell + len(b"<v>42825</v>") :]
    return rewrite(good, tmp_path / "bad.xlsx", {SHEET: broken}).read_bytes()


@pytest.mark.parametrize("rows", [3, 150], ids=["first-chunk", "after-a-committed-chunk"])
@pytest.mark.parametrize("damage", ["truncated", "text-in-a-number-cell"])
def test_a_workbook_with_a_malformed_sheet_is_a_bad_file_not_a_dead_letter(
    pipeline: Pipeline, tmp_path: Path, damage: str, rows: int
) -> None:
    pipeline.settings.chunk_rows = 100
    apply_connections(load_connections_toml(TOML))
    pipeline.import_files(("import/user/internal/p.csv", HEADER + "p1@x.com,P,One,,S\n"))
    pipeline.drop(NAME, corrupted(tmp_path, rows, damage))
    run = pipeline.sync("ga")
    assert run["status"] == "failed"
    (f,) = run["files"]
    assert f["status"] == "rejected"
    cause = "ParseError" if damage == "truncated" else "ValueError"
    assert f["error"] == (
        f"{NAME}: the workbook is corrupt: sheet 'Sheet' after row {rows} cannot be read ({cause}). "
        "Open it in Excel or LibreOffice, save it again as .xlsx and drop it again"
    )
    assert "secret.person" not in run["error"] and "secret.person" not in f["error"]
    parse = sql("SELECT status, attempts FROM sync.stage_runs WHERE stage = 'parse' AND run_id = %s", (run["run_id"],))
    assert parse == [("succeeded", 1)]  # read once: a bad file is never retried
    assert sql("SELECT count(*) FROM sync.dead_letters")[0][0] == 0
    assert sql("SELECT count(*) FROM lms.courses")[0][0] == 0
    assert sql("SELECT count(*) FROM lms.learner_progress")[0][0] == 0


def test_a_chunk_transformed_while_its_workbook_is_rejected_imports_nothing_and_is_not_dead_lettered(
    pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gate: Gate
) -> None:
    """The first chunk's transform is held while the parse reads on into the broken row: the
    rejection waits for that transform, and the load then takes nothing of the file. (Before, the
    run went on to its end under the held transform, whose table was gone when it went on.)"""
    from producers import registry
    from producers.commands import start_sync

    pipeline.settings.chunk_rows = 100
    apply_connections(load_connections_toml(TOML))
    pipeline.import_files(("import/user/internal/p.csv", HEADER + "p1@x.com,P,One,,S\n"))
    # Ten chunks before the broken row: the first chunk's transform reaches the gate while the parse
    # is still reading. Should the parse win anyway, the transform finds the file rejected and skips
    # it before the gate: the outcome asserted below is the same either way.
    pipeline.drop(NAME, corrupted(tmp_path, 1000, "truncated"))
    monkeypatch.setenv("FEEDSYNC_FAILPOINTS", gate.at("transform.start@ga"))
    registry.scan(pipeline.settings, announce=False)
    run_id = start_sync(pipeline.settings, "ga")

    def ended() -> bool:
        return sql("SELECT status FROM sync.runs WHERE id = %s", (run_id,))[0][0] not in ("queued", "in_progress")

    def parse_waits() -> bool:
        return bool(sql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")[0][0])

    deadline = time.monotonic() + 60  # one minute for both waits together
    poll_until(
        lambda: gate.reached or ended(),
        timeout=60,
        interval=0.02,
        message="neither the transform reached its gate nor the run ended",
    )
    poll_until(
        lambda: not gate.reached or parse_waits() or ended(),
        timeout=max(0.0, deadline - time.monotonic()),
        interval=0.02,
        message="the parse neither waited for the held transform nor ended the run",
    )
    gate.open()
    pipeline.drain()
    assert sql("SELECT status FROM sync.runs WHERE id = %s", (run_id,)) == [("failed",)]
    assert sql("SELECT count(*) FROM sync.dead_letters")[0][0] == 0
    assert sql("SELECT count(*) FROM lms.courses")[0][0] == 0
    assert sql("SELECT count(*) FROM lms.learner_progress")[0][0] == 0
