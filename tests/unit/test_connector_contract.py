"""Each kind is one module named as the kind, typed by its contract (mypy checks the assignments
below); the stages, retention and the history ask the registry what differs between kinds."""

from __future__ import annotations

import pytest

from producers import queries
from tests.data import PEOPLE, POSITIONS, UNITS, connect, sync
from tests.stubpipeline import Pipeline
from workers import connectors
from workers.connectors import getabstract, hierarchy, hmm, skills_export, transcript_export, users, xapi, xapi_export
from workers.connectors.contract import ExportKind, ImportKind

# Each assignment is mypy's check that the module fulfils its kind's contract.
USERS: ImportKind = users
HIERARCHY: ImportKind = hierarchy
HMM: ImportKind = hmm
GETABSTRACT: ImportKind = getabstract
XAPI_IMPORT: ImportKind = xapi
TRANSCRIPTS: ExportKind = transcript_export
SKILLS: ExportKind = skills_export
XAPI: ExportKind = xapi_export
IMPORT_KINDS = {"users": USERS, "hierarchy": HIERARCHY, "hmm": HMM, "getabstract": GETABSTRACT, "xapi": XAPI_IMPORT}
EXPORT_KINDS = {"transcript_export": TRANSCRIPTS, "skills_export": SKILLS, "xapi_export": XAPI}


def test_each_kind_is_the_module_named_as_the_kind() -> None:
    for name, module in IMPORT_KINDS.items():
        assert connectors.import_kind(name) is module
    for name, exporter in EXPORT_KINDS.items():
        assert connectors.export_kind(name) is exporter


@pytest.mark.parametrize("name", ["nonsense", "checks", "content", "contract", "exporting", "../users", "Users"])
def test_a_name_that_is_no_kind_has_no_connector(name: str) -> None:
    with pytest.raises(KeyError, match="no connector"):
        connectors.kind_of(name)


def test_an_import_kind_is_not_taken_for_an_export_nor_the_reverse() -> None:
    with pytest.raises(KeyError, match="is an import"):
        connectors.export_kind("users")
    with pytest.raises(KeyError, match="is an export"):
        connectors.import_kind("transcript_export")


def test_a_hierarchy_run_shows_no_course_counts_in_the_history(pipeline: Pipeline) -> None:
    connect()
    run = sync(pipeline, {"org.csv": UNITS, "pos.csv": POSITIONS, "user.csv": PEOPLE})
    assert run["status"] == "completed"
    (shown,) = [r for r in queries.history("hr") if r["run_id"] == run["run_id"]]
    assert shown["content"] is None
