"""A delivery manifest is written by `feedsync upload`, but anyone who can write to the drop folder
can write one too: what a manifest names never widens what a connection takes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from producers import registry
from tests.conftest import sql
from tests.data import people
from tests.stubpipeline import Pipeline

pytestmark = pytest.mark.integration


def _manifest(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".feedsync-delivery-0123456789abcdef.json").write_text(json.dumps({"files": names}))


@pytest.mark.parametrize("other", ["notes.txt", ".upload-abc.part"])
def test_a_manifest_never_makes_a_connection_take_a_hidden_file_or_one_outside_its_path(
    pipeline: Pipeline, other: str
) -> None:
    folder = pipeline.settings.drop_dir / "import/user/internal"
    _manifest(folder, ["users.csv", other])
    (folder / other).write_text(people(1, start=5))
    (folder / "users.csv").write_text(people(2))
    registry.scan(pipeline.settings, announce=False)
    assert (folder / other).exists()
    assert sql("SELECT count(*) FROM sync.feed_files WHERE original_path LIKE %s", (f"%/{other}",)) == [(0,)]


def test_a_manifest_naming_a_path_is_not_ours_and_its_file_is_taken_alone(pipeline: Pipeline) -> None:
    folder = pipeline.settings.drop_dir / "import/user/internal"
    _manifest(folder, ["users.csv", "../x.csv", ""])
    (folder / "users.csv").write_text(people(2))
    with capture_logs() as logs:
        taken = registry.scan(pipeline.settings, announce=False)
    assert [(t.path, t.outcome) for t in taken] == [("import/user/internal/users.csv", "registered")]
    assert not [e for e in logs if e["log_level"] == "error"], logs


def test_an_upload_repeated_after_it_died_part_way_leaves_no_manifest_to_hold_the_next_drop(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    from producers.commands import upload

    folder = pipeline.settings.drop_dir / "import/user/internal"
    _manifest(folder, ["k1.csv", "k2.csv"])  # what an upload killed between its two renames leaves
    (folder / "k1.csv").write_text(people(1))
    a, b = tmp_path / "k1.csv", tmp_path / "k2.csv"
    a.write_text(people(1))
    b.write_text(people(1, start=1))
    (folder / "k1.csv").unlink()  # the repeat replaces it
    upload(pipeline.settings, "hr-users", [a, b])
    registry.scan(pipeline.settings, announce=False)
    assert sorted(p.name for p in folder.iterdir()) == []
    (folder / "k1.csv").write_text(people(1, start=7))  # tomorrow's file, dropped on its own
    taken = registry.scan(pipeline.settings, announce=False)
    assert [(t.path, t.outcome) for t in taken] == [("import/user/internal/k1.csv", "registered")]
