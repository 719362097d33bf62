"""An upload of several files is one delivery: the real watcher (inotify via watchdog) takes them
together and one run imports them all, on the stub-broker pipeline and the real database."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from producers import registry
from producers.commands import apply_connections, upload
from producers.watcher import Watcher
from schemas.connections import load_connections_toml
from tests.conftest import feedsync, sql
from tests.data import people
from tests.stubpipeline import USERS_TOML, Pipeline
from tests.waiting import poll_until

pytestmark = pytest.mark.integration

FULL_FEED = USERS_TOML.replace('kind = "users"', 'kind = "users"\nfull_feed = true\nmax_deactivate = "20%"')


def wait_until(cond: Any, what: str, timeout_s: float = 120) -> None:
    poll_until(cond, timeout=timeout_s, message=what)


def settled_runs() -> list[tuple[Any, ...]]:
    """(run, status, files it read) once no run is queued or running and no file waits."""
    return sql(
        """SELECT r.id, r.status, (SELECT count(*) FROM sync.run_files rf WHERE rf.run_id = r.id)
           FROM sync.runs r ORDER BY r.id"""
    )


def idle() -> bool:
    busy = sql(
        """SELECT (SELECT count(*) FROM sync.runs WHERE status IN ('queued', 'in_progress')) +
                  (SELECT count(*) FROM sync.feed_files WHERE status = 'registered')"""
    )
    return int(busy[0][0]) == 0


@pytest.fixture
def watching(pipeline: Pipeline) -> Iterator[Watcher]:
    w = Watcher(pipeline.settings)
    t = threading.Thread(target=w.run, daemon=True)
    t.start()
    assert w.ready.wait(30)
    yield w
    w.stop()
    t.join(timeout=30)


def test_a_full_feed_uploaded_as_two_files_is_one_run_that_deactivates_nobody(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    apply_connections(load_connections_toml(FULL_FEED))
    before = pipeline.import_files(("import/user/internal/all.csv", people(100)))
    assert sql("SELECT status FROM sync.runs WHERE id = %s", (before,)) == [("completed",)]
    part_a, part_b = tmp_path / "part-a.csv", tmp_path / "part-b.csv"
    part_a.write_text(people(95))
    part_b.write_text(people(5, start=95))
    w = Watcher(pipeline.settings)
    t = threading.Thread(target=w.run, daemon=True)
    t.start()
    try:
        assert w.ready.wait(30)
        upload(pipeline.settings, "hr-users", [part_a, part_b])
        wait_until(lambda: len(settled_runs()) > 1 and idle(), "the upload's run did not finish")
    finally:
        w.stop()
        t.join(timeout=30)
    assert settled_runs()[1:] == [(before + 1, "completed", 2)]
    assert sql("SELECT count(*) FROM lms.users WHERE active") == [(100,)]


def test_a_300_file_upload_is_one_run_of_all_300_files(pipeline: Pipeline, watching: Watcher, tmp_path: Path) -> None:
    sources = []
    for i in range(300):
        p = tmp_path / f"users-{i:03}.csv"
        p.write_text(people(1, start=i))
        sources.append(p)
    upload(pipeline.settings, "hr-users", sources)
    wait_until(lambda: settled_runs() and idle(), "the upload's run did not finish")
    assert settled_runs() == [(1, "completed", 300)]
    assert sql("SELECT count(*) FROM lms.users WHERE active") == [(300,)]
    assert not [p for p in (pipeline.settings.drop_dir / "import/user/internal").iterdir()], "no manifest left"


def test_an_upload_from_the_cli_lands_together_for_a_rescan_too(pipeline: Pipeline, tmp_path: Path) -> None:
    """`feedsync upload` in its own process, then the registry's scan (the watcher's rescan and
    `feedsync sync` take files through it): both files registered in one go, one run."""
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text(people(3))
    b.write_text(people(2, start=3))
    feedsync("upload", "hr-users", str(a), str(b))
    taken = registry.scan(pipeline.settings)
    assert sorted(t.outcome for t in taken) == ["registered"]  # the first took the whole delivery
    pipeline.drain()
    assert settled_runs() == [(1, "completed", 2)]


def test_a_part_that_did_not_change_since_the_last_run_imports_again_with_the_other_parts(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    """Day 2 of a full feed in two parts: part b has the same bytes as yesterday's. It is no
    duplicate within its delivery, or the run reads part a alone and deactivates b's people."""
    apply_connections(load_connections_toml(FULL_FEED))
    day1, day2 = tmp_path / "day1", tmp_path / "day2"
    for day, tag in ((day1, "S"), (day2, "T")):
        day.mkdir()
        (day / "part-a.csv").write_text(people(95, tag=tag))
        (day / "part-b.csv").write_text(people(5, start=95))
    for day in (day1, day2):
        upload(pipeline.settings, "hr-users", [day / "part-a.csv", day / "part-b.csv"])
        registry.scan(pipeline.settings)
        pipeline.drain()
    assert [r[1:] for r in settled_runs()] == [("completed", 2), ("completed", 2)]
    assert sql("SELECT count(*) FROM lms.users WHERE active") == [(100,)]
    assert sql("SELECT count(*) FROM sync.file_drops WHERE duplicate") == [(0,)]


def test_a_delivery_whose_every_part_was_imported_last_is_a_duplicate(pipeline: Pipeline, tmp_path: Path) -> None:
    apply_connections(load_connections_toml(FULL_FEED))
    a, b = tmp_path / "part-a.csv", tmp_path / "part-b.csv"
    a.write_text(people(95))
    b.write_text(people(5, start=95))
    for _ in range(2):
        upload(pipeline.settings, "hr-users", [a, b])
        registry.scan(pipeline.settings)
        pipeline.drain()
    assert [r[1:] for r in settled_runs()] == [("completed", 2)]
    assert sql("SELECT count(*) FROM sync.file_drops WHERE duplicate") == [(2,)]
