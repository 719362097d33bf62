"""The xAPI import against the real thing: ADL's LRS conformance templates (valid ones are
accepted, those named invalid refused) and ALM's own xAPI activity report, imported with
``statement_column`` and exported again by the xAPI export as the same statements."""

from __future__ import annotations

import csv
import json
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from producers import queries
from producers.commands import apply_connections
from schemas.connections import load_connections_toml
from tests.conftest import SAMPLES, sql
from tests.stubpipeline import Pipeline
from tests.unit.exportdata import exported, read_rows
from workers.connectors.xapi.validation import problem

pytestmark = pytest.mark.conformance

TEMPLATES = SAMPLES / "xapi" / "lrs-conformance-test-suite" / "v1_0_3" / "templates"
XAPI_REPORT = (
    SAMPLES / "alm" / "xapi-report" / "xapireport8842560559890766717csv_unzipped" / "xapiReport8842560559890766717.csv"
)
#: Which property of a statement each folder of templates fills.
SLOTS = {"activities": "object", "agents": "actor", "contexts": "context", "verbs": "verb", "results": "result"}
SUBSTATEMENTS = ("default", "statementref", "verb_valid", "context_valid_language_map", "activity_definition_name",
                 "activity_definition_description", "interaction_component_valid_language_map")  # fmt: skip


def _statement(folder: str, template: Path) -> dict[str, Any]:
    statement: dict[str, Any] = json.loads((TEMPLATES / "statements" / "default.json").read_text())
    statement["actor"] = json.loads((TEMPLATES / "agents" / "mbox.json").read_text())
    statement[SLOTS.get(folder, "object")] = json.loads(template.read_text())
    return statement


def _templates(named_invalid: bool) -> list[tuple[str, Path]]:
    found = []
    for folder in (*SLOTS, "substatements"):
        for t in sorted((TEMPLATES / folder).glob("*.json")):
            invalid = "invalid" in t.stem
            # A substatement template that is not named invalid may still be a fragment the suite
            # completes at run time: only the complete ones are claimed valid.
            if invalid == named_invalid and (folder != "substatements" or invalid or t.stem in SUBSTATEMENTS):
                found.append((folder, t))
    return found


def test_every_adl_template_named_invalid_is_refused() -> None:
    invalid = _templates(named_invalid=True)
    assert len(invalid) >= 10
    accepted = [f"{folder}/{t.name}" for folder, t in invalid if problem(_statement(folder, t)) is None]
    assert accepted == []


def test_the_valid_and_default_adl_templates_are_accepted() -> None:
    valid = [
        (f, t)
        for f, t in _templates(named_invalid=False)
        if "valid" in t.stem or t.stem == "default" or f == "substatements"
    ]
    assert len(valid) >= 10
    refused = {f"{folder}/{t.name}": problem(_statement(folder, t)) for folder, t in valid}
    assert {k: v for k, v in refused.items() if v is not None} == {}


TOML = """
[[connections]]
name = "alm-lrs"
kind = "xapi"
statement_column = "Statement JSON"

[[connections]]
name = "xapi"
kind = "xapi_export"
"""


def test_alms_xapi_report_imports_with_statement_column_and_exports_as_the_same_statements(
    pipeline: Pipeline,
) -> None:
    apply_connections(load_connections_toml(TOML))
    with open(XAPI_REPORT, encoding="utf-8-sig", newline="") as f:
        sample = list(csv.DictReader(f))
    dst = pipeline.settings.drop_dir / "import" / "xapi" / XAPI_REPORT.name
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(XAPI_REPORT, dst)  # into the test's own drop dir, as the HR system would drop it
    run_id = pipeline.import_files()
    run = queries.run_detail(run_id)
    assert run is not None and run["status"] == "completed", run
    assert run["counts"]["read"] == len(sample) == run["content"]["statements_stored"]
    # The statement is stored as the report held it: the export writes the same text back out.
    assert sorted(r[0] for r in sql("SELECT statement::text FROM lms.xapi_statements")) == sorted(
        r["Statement JSON"] for r in sample
    )

    again = pipeline.sync("xapi", date(2017, 1, 1))
    columns = ("TimeStamp", "Activity IRI", "Verb IRI", "Statement JSON")
    out = sorted(tuple(r[c] for c in columns) for r in read_rows(exported(pipeline, again)))
    assert out == sorted(tuple(r[c] for c in columns) for r in sample)
