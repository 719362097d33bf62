"""Each kind is one class on its direction's base, registered under its name in one table
(workers/connectors KINDS); the stages, retention and the history ask the registry what differs."""

from __future__ import annotations

import pytest

from producers import queries
from schemas.kinds import CONFIGS
from tests.data import PEOPLE, POSITIONS, UNITS, connect, sync
from tests.stubpipeline import Pipeline
from workers import connectors
from workers.connectors.contract import ExportKind, ImportKind


def test_each_kind_is_the_class_registered_under_its_name() -> None:
    for kind in connectors.KINDS:
        if isinstance(kind, ImportKind):
            assert connectors.import_kind(kind.NAME) is kind
        else:
            assert isinstance(kind, ExportKind) and connectors.export_kind(kind.NAME) is kind
    assert len({k.NAME for k in connectors.KINDS}) == len(connectors.KINDS)


def test_the_connectors_and_the_configs_register_the_same_kinds() -> None:
    # The two registries (the schemas may not import the workers) name each kind once each.
    assert {k.NAME for k in connectors.KINDS} == {kind for cls in CONFIGS for kind in cls.kinds()}
    names = {k.NAME for k in connectors.KINDS}
    assert {"users", "hierarchy", "hmm", "getabstract", "xapi", "transcript_export"} <= names


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
    # Its own counts are its assign step's (it changes people), none of a content kind's.
    assert shown["content"] == {"memberships_added": 4, "memberships_removed": 0}
