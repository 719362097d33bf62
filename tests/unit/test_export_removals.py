"""An undo's removals reach the exports: completions an xAPI run wrote are exported, the run is
undone, and the next transcript, skills and xAPI files take them back (a row ``Unenrolled``, a skill
no longer achieved, a statement voiding the removed one), once, and not when the record is back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from producers.undo import start_undo
from tests.conftest import sql
from tests.data import SINCE
from tests.stubpipeline import Pipeline
from tests.unit.exportdata import export_connections, exported, read_rows
from tests.xapidata import COMPLETED, CSV_HEADER, connect, course_with_skill, drop_and_run, people

VOIDED = "http://adlnet.gov/expapi/verbs/voided"
NAMES = ("transcripts", "skills", "xapi")


def export(pipeline: Pipeline, *, first: bool = False) -> dict[str, list[dict[str, str]]]:
    """Each export run once: from SINCE the first time, then on from where the last one ended."""
    files: dict[str, Path] = {}
    for name in NAMES:
        run = pipeline.sync(name, SINCE if first else None)
        assert run["status"] == "completed", run
        files[name] = exported(pipeline, run)
    return {name: read_rows(path) for name, path in files.items()}


def undo(pipeline: Pipeline, run_id: int) -> dict[str, Any]:
    from producers import queries

    undo_id = start_undo(run_id)
    pipeline.drain()
    detail = queries.run_detail(undo_id)
    assert detail is not None and detail["status"] == "completed", detail
    return detail


def completion_imported(pipeline: Pipeline) -> int:
    """Ann completes course P1 (skill Listening) by an xAPI statement: a record, a skill, a statement."""
    people(pipeline)
    course_with_skill("P1", "https://x.test/c1")
    connect()
    run = drop_and_run(pipeline, "a.csv", CSV_HEADER + f"ann@x.com,{COMPLETED},https://x.test/c1,0.8,true,2026-11-01\n")
    assert run["status"] == "completed" and run["content"]["progress_written"] == 1, run
    return int(run["run_id"])


def test_undoing_a_run_whose_completions_were_exported_takes_them_back_in_the_next_three_exports(
    pipeline: Pipeline,
) -> None:
    export_connections()
    a = completion_imported(pipeline)
    first = export(pipeline, first=True)
    assert [(r["email"], r["Course"], r["Status"]) for r in first["transcripts"]] == [
        ("ann@x.com", "Course P1", "Completed")
    ]
    assert [(r["email"], r["Skill"], r["Completion Percentage"]) for r in first["skills"]] == [
        ("ann@x.com", "Listening", "100")
    ]
    ((statement_id, actor),) = sql("SELECT id::text, statement -> 'actor' FROM lms.xapi_statements")

    undo(pipeline, a)
    assert sql("SELECT count(*) FROM lms.learner_progress") == [(0,)], "the undo removed the completion"
    second = export(pipeline)

    (t,) = second["transcripts"]
    assert (t["email"], t["Course"], t["LO Unique ID"], t["Status"]) == ("ann@x.com", "Course P1", "P1", "Unenrolled")
    assert t["Progress %"] == t["Completion Date (UTC TimeZone)"] == t["Quiz Score"] == ""
    (s,) = second["skills"]
    assert (s["email"], s["Skill"], s["Completion Percentage"], s["Date Achieved (UTC TimeZone)"]) == (
        "ann@x.com",
        "Listening",
        "0",
        "",
    )
    (x,) = second["xapi"]
    assert (x["User Email"], x["User Name"], x["Verb IRI"], x["Activity IRI"]) == ("ann@x.com", "Ann A", VOIDED, "")
    voiding = json.loads(x["Statement JSON"])
    assert voiding["verb"]["id"] == VOIDED and voiding["version"] == "1.0.3"
    assert voiding["object"] == {"objectType": "StatementRef", "id": statement_id}
    assert voiding["actor"] == actor, "voided by the same actor, so the LRS files it with Ann's statements"
    assert voiding["id"] != statement_id and x["TimeStamp"].endswith("Z")

    # Sent once: the export after that has nothing more to say.
    assert export(pipeline) == {name: [] for name in NAMES}


def test_a_removal_is_not_sent_when_the_record_is_back_by_the_time_of_the_export(pipeline: Pipeline) -> None:
    export_connections()
    a = completion_imported(pipeline)
    export(pipeline, first=True)
    u = undo(pipeline, a)
    undo(pipeline, int(u["run_id"]))  # the completion is back
    second = export(pipeline)
    # The record as it is now (changed by the second undo), never its removal beside it.
    assert [(r["email"], r["Status"]) for r in second["transcripts"]] == [("ann@x.com", "Completed")]
    assert [(r["Skill"], r["Completion Percentage"]) for r in second["skills"]] == [("Listening", "100")]
    assert second["xapi"] == []


def test_an_export_that_does_not_take_unenrolled_rows_leaves_removals_out(pipeline: Pipeline) -> None:
    from producers.commands import apply_connections
    from schemas.connections import load_connections_toml

    apply_connections(
        load_connections_toml(
            '[[connections]]\nname = "done"\nkind = "transcript_export"\nstatus = ["completed", "in_progress"]\n'
        )
    )
    a = completion_imported(pipeline)
    assert pipeline.sync("done", SINCE)["status"] == "completed"
    undo(pipeline, a)
    run = pipeline.sync("done")
    assert read_rows(exported(pipeline, run)) == []


def test_removals_are_kept_as_long_as_a_run_journal_then_removed_by_the_sweep(pipeline: Pipeline) -> None:
    from datetime import timedelta

    from schemas.settings import get_settings
    from workers.runs import retention

    export_connections()
    undo(pipeline, completion_imported(pipeline))
    ((removed_at, n),) = sql("SELECT max(removed_at), count(*) FROM sync.removals")
    assert n == 3, "the record, the skill and the statement"
    days = get_settings().journal_retention_days
    retention.sweep(at=removed_at + timedelta(days=days - 1))
    assert sql("SELECT count(*) FROM sync.removals") == [(3,)]
    retention.sweep(at=removed_at + timedelta(days=days, seconds=1))
    assert sql("SELECT count(*) FROM sync.removals") == [(0,)]
