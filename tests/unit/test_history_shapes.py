"""Every history row shape, of every kind, renders in `feedsync history` (table and JSON) and
`feedsync run` without an error and without a "None", each kind counted in its own terms."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from producers.cli import cli
from tests import historystore
from tests.conftest import sql
from tests.stubpipeline import Pipeline
from workers import connectors
from workers.connectors.contract import ImportKind


@pytest.fixture
def runs(pipeline: Pipeline) -> dict[str, int]:
    return historystore.build(pipeline)


def invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, (args, result.output, result.exception)
    assert "None" not in result.output, (args, result.output)
    return result.output


def test_the_store_holds_every_kind_and_every_shape(runs: dict[str, int]) -> None:
    kinds = {k for (k,) in sql("SELECT DISTINCT kind FROM sync.runs")}
    assert kinds == {k.NAME for k in connectors.KINDS}
    statuses = {s for (s,) in sql("SELECT DISTINCT status FROM sync.runs")}
    assert {"queued", "awaiting_approval", "completed", "failed"} <= statuses
    assert sql("SELECT count(*) FROM sync.runs WHERE dry_run") == [(1,)]
    assert sql("SELECT count(*) FROM sync.runs WHERE trigger = 'undo'") == [(1,)]


def test_the_history_table_lists_every_shape_in_each_kinds_own_terms(runs: dict[str, int]) -> None:
    lines = invoke("history").splitlines()
    header, rows = lines[0].split(), {line.split()[0]: line for line in lines[1:]}
    assert "COUNTS" in header and "CREATED" not in header, "a content run's courses are not people created"
    assert "duplicate" in invoke("history"), "the drop set aside is listed too"
    for shape, words in historystore.LISTED.items():
        for text in words:
            assert text in rows[str(runs[shape])], (shape, text, rows[str(runs[shape])])
    # Rows read are the rows of the files: an export reads none, so its READ is blank, not 0.
    export = rows[str(runs["transcripts_export"])].split()
    assert export[header.index("READ")] != "0"


def test_the_history_json_has_each_kinds_counts_and_no_none(runs: dict[str, int]) -> None:
    shown = {r["run_id"]: r for r in json.loads(invoke("history", "--json"))}
    assert set(runs.values()) <= set(shown)
    assert list(shown[runs["hierarchy"]]["kind_counts"]) == ["rows", "units", "positions", "people", "memberships"]
    assert shown[runs["xapi"]]["kind_counts"]["statements"]["stored"] == 1
    assert shown[runs["transcripts_export"]]["kind_counts"] == {"rows": {"exported": 2}}
    assert (
        shown[runs["hierarchy_queued"]]["kind_counts"] == {} and shown[runs["hierarchy_queued"]]["duration_s"] is None
    )


def test_feedsync_run_prints_every_shape_in_its_kinds_terms(runs: dict[str, int]) -> None:
    for shape, run_id in runs.items():
        out = invoke("run", str(run_id))
        for text in historystore.SHOWN.get(shape, []):
            assert text in out, (shape, text, out)
        invoke("run", str(run_id), "--json")
    queued = invoke("run", str(runs["hierarchy_queued"]))
    assert "not started" in queued and "counts: none yet (the run has not started)" in queued
    assert "read" not in invoke("run", str(runs["xapi_export"])).split("note:")[0], "an export reads no rows"


def test_every_count_a_kind_declares_is_one_its_runs_record(runs: dict[str, int]) -> None:
    for kind in connectors.KINDS:
        shape = "transcripts_export" if kind.NAME == "transcript_export" else kind.NAME
        ((recorded,),) = sql("SELECT counts FROM sync.runs WHERE id = %s", (runs[shape],))
        declared = [key for counted in kind.HISTORY for _, key in counted.verbs]
        missing = [key for key in declared if key not in recorded]
        assert not missing, (kind.NAME, missing, recorded)
        assert isinstance(kind, ImportKind) or declared == ["rows"]
