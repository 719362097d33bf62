"""The watcher with real filesystem events (inotify via watchdog) and the real database."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from producers import feedgen
from producers.commands import apply_connections
from producers.watcher import Watcher
from schemas.connections import load_connections_toml
from tests.conftest import sql
from tests.waiting import poll_until

pytestmark = pytest.mark.integration

HEADER = b"Email,First Name,Last Name,Manager Email,Department,Job Title,Location\n"


def registered() -> list[str]:
    return [r[0] for r in sql("SELECT original_path FROM sync.feed_files ORDER BY id")]


def wait_until(cond: Any, timeout_s: float = 15) -> None:
    poll_until(cond, timeout=timeout_s, message=lambda: f"condition not met; registered: {registered()}")


@pytest.fixture
def inbox(settings: Any) -> Path:
    apply_connections(load_connections_toml(feedgen.DEMO_CONNECTIONS))
    path: Path = settings.drop_dir / "import/user/internal"
    path.mkdir(parents=True)
    return path


@pytest.fixture
def watcher(settings: Any, inbox: Path) -> Iterator[Watcher]:
    w = Watcher(settings)
    t = threading.Thread(target=w.run, daemon=True)
    t.start()
    assert w.ready.wait(10)
    yield w
    w.stop()
    t.join(timeout=10)


def test_files_that_arrived_while_the_watcher_was_down_are_taken_at_start(settings: Any, inbox: Path) -> None:
    for i in range(3):
        p = inbox / f"old-{i}.csv"
        p.write_bytes(HEADER + b"a%d@x.com,A,B,,S,T,L\n" % i)
        os.utime(p, (time.time() - 60, time.time() - 60))
    w = Watcher(settings)
    t = threading.Thread(target=w.run, daemon=True)
    t.start()
    try:
        wait_until(lambda: len(registered()) == 3)
    finally:
        w.stop()
        t.join(timeout=10)
    assert sorted(os.listdir(inbox)) == []


def test_a_file_closed_after_writing_is_taken_and_a_renamed_part_file_too(watcher: Watcher, inbox: Path) -> None:
    (inbox / "direct.csv").write_bytes(HEADER + b"d@x.com,D,D,,S,T,L\n")
    part = inbox / "renamed.csv.part"
    part.write_bytes(HEADER + b"r@x.com,R,R,,S,T,L\n")
    wait_until(lambda: registered() == ["import/user/internal/direct.csv"])  # the .part file is left alone
    part.rename(inbox / "renamed.csv")
    wait_until(lambda: len(registered()) == 2)
    assert registered()[1] == "import/user/internal/renamed.csv"


def test_a_file_still_being_written_is_taken_only_once_complete(watcher: Watcher, inbox: Path) -> None:
    rows = [b"g%d@x.com,G,G,,S,T,L\n" % i for i in range(40)]
    with open(inbox / "growing.csv", "wb") as f:
        f.write(HEADER)
        for row in rows:
            f.write(row)
            f.flush()
            time.sleep(0.1)  # a slow upload: it must not be taken while the writer still has it open
            assert registered() == []
    wait_until(lambda: len(registered()) == 1)
    assert sql("SELECT size_bytes FROM sync.feed_files")[0][0] == len(HEADER) + sum(map(len, rows))


def test_dotfiles_symlinks_and_other_folders_are_left_alone(watcher: Watcher, inbox: Path, tmp_path: Path) -> None:
    (inbox / ".hidden.csv").write_bytes(HEADER)
    (inbox / "x.tmp").write_bytes(HEADER)
    outside = tmp_path / "outside.csv"
    outside.write_bytes(HEADER + b"o@x.com,O,O,,S,T,L\n")
    (inbox / "link.csv").symlink_to(outside)
    other = watcher.settings.drop_dir / "elsewhere"
    other.mkdir()
    (other / "stray.csv").write_bytes(HEADER)
    (inbox / "real.csv").write_bytes(HEADER + b"z@x.com,Z,Z,,S,T,L\n")
    wait_until(lambda: len(registered()) == 1)
    time.sleep(0.5)
    assert registered() == ["import/user/internal/real.csv"]
    assert (inbox / ".hidden.csv").exists() and (inbox / "link.csv").is_symlink() and (other / "stray.csv").exists()


def _watch(settings: Any) -> tuple[Watcher, threading.Thread]:
    w = Watcher(settings)
    t = threading.Thread(target=w.run, daemon=True)
    t.start()
    assert w.ready.wait(10)
    return w, t


def test_a_file_closed_and_written_again_within_the_settle_window_is_imported_whole(
    pipeline: Any, tmp_path: Path
) -> None:
    # The window (5 s) is wider than the writer's pause (1 s): the first close must not be taken.
    toml = feedgen.DEMO_CONNECTIONS.replace('key = "email"', 'key = "email"\nsettle_seconds = 5')
    apply_connections(load_connections_toml(toml))
    inbox = pipeline.settings.drop_dir / "import/user/internal"
    inbox.mkdir(parents=True)
    feedgen.generate_users(tmp_path / "new.csv", 200)
    w, t = _watch(pipeline.settings)
    try:
        subprocess.run(
            [
                "bash",
                "-c",
                f"head -101 {tmp_path}/new.csv > export.csv; sleep 1; tail -n +102 {tmp_path}/new.csv >> export.csv",
            ],
            cwd=inbox,
            check=True,
        )
        wait_until(lambda: sql("SELECT count(*) FROM sync.runs WHERE finished_at IS NOT NULL")[0][0] == 1, 60)
    finally:
        w.stop()
        t.join(timeout=10)
    assert registered() == ["import/user/internal/export.csv"]
    assert sql("SELECT size_bytes FROM sync.feed_files")[0][0] == (tmp_path / "new.csv").stat().st_size
    assert sql("SELECT count(*) FROM lms.users")[0][0] == 200


def test_with_done_marker_a_file_is_taken_only_once_its_marker_exists(settings: Any) -> None:
    toml = feedgen.DEMO_CONNECTIONS.replace('key = "email"', 'key = "email"\ndone_marker = true') + (
        feedgen.DEMO_CONNECTIONS.replace('"hr-users"', '"crm"').replace("import/user/internal", "import/crm")
    )
    apply_connections(load_connections_toml(toml))
    inbox, crm = settings.drop_dir / "import/user/internal", settings.drop_dir / "import/crm"
    inbox.mkdir(parents=True)
    crm.mkdir(parents=True)
    w, t = _watch(settings)
    try:
        (inbox / "stray.csv.done").write_bytes(b"")  # a marker without its file is harmless
        (inbox / "people.csv").write_bytes(HEADER + b"p@x.com,P,P,,S,T,L\n")
        # Events are handled in order: once the later file is taken, people.csv was looked at.
        (crm / "later.csv").write_bytes(HEADER + b"l@x.com,L,L,,S,T,L\n")
        wait_until(lambda: registered() == ["import/crm/later.csv"])
        (inbox / "people.csv.done").write_bytes(b"")
        wait_until(lambda: len(registered()) == 2)
    finally:
        w.stop()
        t.join(timeout=10)
    assert registered()[1] == "import/user/internal/people.csv"
    assert sorted(os.listdir(inbox)) == ["stray.csv.done"], "the marker goes once its file is registered"


def test_the_watcher_starts_and_takes_files_beside_export_connections(settings: Any) -> None:
    """Export connections take no files: the watcher neither makes folders for them nor reads their
    config as an import's (it used to die at start, restarted for ever by its supervisor)."""
    examples = Path(__file__).resolve().parents[2] / "examples" / "connections.toml"
    apply_connections(load_connections_toml(examples.read_text()))
    inbox = settings.drop_dir / "import/user/internal"
    w = Watcher(settings)
    t = threading.Thread(target=w.run, daemon=True)
    t.start()
    try:
        assert w.ready.wait(10), "the watcher did not start"
        (inbox / "people.csv").write_bytes(b"Email,First Name,Last Name,Manager Email,Department\nx@y.com,X,Y,,S\n")
        wait_until(lambda: registered() == ["import/user/internal/people.csv"])
    finally:
        w.stop()
        t.join(timeout=10)


def test_a_file_renamed_into_place_is_taken_without_waiting_its_settle_window(
    settings: Any, inbox: Path, watcher: Watcher
) -> None:
    sql("UPDATE sync.connections SET config = config || '{\"settle_seconds\": 600}'")
    tmp = inbox / ".people.csv.part"
    tmp.write_bytes(HEADER + b"x@y.com,X,Y,,S,T,L\n")
    os.replace(tmp, inbox / "people.csv")  # the writer says it is complete
    wait_until(lambda: registered() == ["import/user/internal/people.csv"])
    # Written in place, a file waits its window: it may be written again.
    (inbox / "other.csv").write_bytes(HEADER + b"z@y.com,Z,Y,,S,T,L\n")
    with pytest.raises(AssertionError):
        wait_until(lambda: len(registered()) == 2, timeout_s=3)
