"""Intake from the drop dir: what counts as a duplicate, what is refused, and that nothing outside
the drop dir, or changed after it was taken, is ever imported."""

from __future__ import annotations

import os
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from producers import queries, registry, settle
from producers.commands import apply_connections
from schemas.connections import load_connections_toml
from tests.conftest import sql
from tests.stubpipeline import HEADER, USERS_TOML, Pipeline

INBOX = "import/user/internal"
FULL = HEADER + "ann@x.com,Ann,Ames,,Sales\nbob@x.com,Bob,Berg,,Sales\ncid@x.com,Cid,Cole,,Sales\n"
TRUNCATED = HEADER + "ann@x.com,Ann,Ames,,Sales\n"
OUTSIDE = HEADER + "secret@outside.com,Root,Only,,Vault\n"


def active() -> dict[str, bool]:
    return dict(sql("SELECT email, active FROM lms.users"))


def drops() -> list[tuple[str, bool]]:
    return [(p.rsplit("/", 1)[-1], d) for p, d in sql("SELECT path, duplicate FROM sync.file_drops ORDER BY id")]


@pytest.fixture
def intake_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[MutableMapping[str, Any]]]:
    """The intake's log events. Its module logger gets a fresh proxy: one cached by an earlier
    test's logging setup would bypass the capture."""
    with capture_logs() as logs:
        monkeypatch.setattr(registry, "log", structlog.get_logger(registry.__name__))
        yield logs


@pytest.fixture
def full_feed(pipeline: Pipeline) -> Pipeline:
    # An explicit threshold, so the test is about intake and not about the deactivation limit.
    toml = USERS_TOML.replace('kind = "users"', 'kind = "users"\nfull_feed = true\nmax_deactivate = "100%"')
    apply_connections(load_connections_toml(toml))
    return pipeline


def test_a_full_feed_dropped_again_after_a_newer_one_imports_and_repairs_it(full_feed: Pipeline) -> None:
    full_feed.import_files((f"{INBOX}/monday.csv", FULL))
    full_feed.import_files((f"{INBOX}/tuesday.csv", TRUNCATED))
    assert active() == {"ann@x.com": True, "bob@x.com": False, "cid@x.com": False}

    # The admin drops Monday's file again to undo Tuesday's: the same bytes, but not the latest feed.
    run_id = full_feed.import_files((f"{INBOX}/monday.csv", FULL))
    run = queries.run_detail(run_id)
    assert run is not None and run["status"] == "completed" and run["counts"]["read"] == 3
    assert active() == {"ann@x.com": True, "bob@x.com": True, "cid@x.com": True}
    assert drops() == [("monday.csv", False), ("tuesday.csv", False), ("monday.csv", False)]


def test_the_latest_feed_dropped_again_is_a_recorded_duplicate(full_feed: Pipeline) -> None:
    full_feed.import_files((f"{INBOX}/monday.csv", FULL))
    runs = [h["run_id"] for h in queries.history()]
    full_feed.import_files((f"{INBOX}/monday-again.csv", FULL))
    latest, *earlier = queries.history()
    assert [h["run_id"] for h in earlier] == runs, "the latest imported bytes again change nothing"
    assert (latest["type"], latest["duplicate_of_run"]) == ("duplicate", runs[0])
    assert drops() == [("monday.csv", False), ("monday-again.csv", True)]
    assert not (full_feed.settings.drop_dir / INBOX / "monday-again.csv").exists()


def test_bytes_of_a_rejected_file_are_never_a_duplicate(pipeline: Pipeline) -> None:
    bad = "Name,Surname\nAnn,Ames\n"  # no Email column: the file is rejected
    first = pipeline.import_files((f"{INBOX}/a.csv", bad))
    assert sql("SELECT status FROM sync.runs WHERE id = %s", (first,))[0][0] == "failed"
    second = pipeline.import_files((f"{INBOX}/a.csv", bad))
    assert second != first, "the same bad bytes dropped again are looked at again, not set aside"
    assert drops() == [("a.csv", False), ("a.csv", False)]


def test_the_bytes_of_an_undone_run_dropped_again_import_again(pipeline: Pipeline) -> None:
    """An undo takes the run's changes back: its bytes would change something again, so they are
    no duplicate of it (as the bytes of a failed or rejected run are none)."""
    from producers.undo import start_undo

    first = pipeline.import_files((f"{INBOX}/monday.csv", FULL))
    undo_id = start_undo(first)
    pipeline.drain()
    undone = queries.run_detail(undo_id)
    assert undone is not None and undone["status"] == "completed", undone
    assert sql("SELECT count(*) FROM lms.users WHERE active") == [(0,)]
    again = pipeline.import_files((f"{INBOX}/monday.csv", FULL))
    assert again not in (first, undo_id)
    assert drops() == [("monday.csv", False), ("monday.csv", False)]
    assert active() == {"ann@x.com": True, "bob@x.com": True, "cid@x.com": True}


def test_the_same_bytes_dropped_twice_before_their_run_are_one_file(pipeline: Pipeline) -> None:
    pipeline.drop(f"{INBOX}/a.csv", FULL)
    registry.scan(pipeline.settings, announce=False)
    pipeline.drop(f"{INBOX}/b.csv", FULL)
    registry.scan(pipeline.settings, announce=False)
    assert drops() == [("a.csv", False), ("b.csv", True)]
    run = pipeline.sync("hr-users")
    assert run["status"] == "completed" and run["counts"]["read"] == 3


def _swap_in_symlink_after_checks(monkeypatch: pytest.MonkeyPatch, path: Path, target: Path) -> None:
    """The race: every check passed on a plain file, then a symbolic link is renamed over it."""
    real = settle.settled

    def settled_then_swapped(p: Path, window_s: float, quiet_s: float = 0.0) -> os.stat_result | None:
        checked = real(p, window_s, quiet_s)
        if p == path:
            link = path.with_name(".swap")
            link.symlink_to(target)
            os.replace(link, path)
        return checked

    monkeypatch.setattr(settle, "settled", settled_then_swapped)


def test_a_symlink_renamed_over_a_checked_file_is_refused_and_nothing_outside_is_read(
    pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, intake_logs: list[MutableMapping[str, Any]]
) -> None:
    outside = tmp_path / "root-only.csv"
    outside.write_text(OUTSIDE)
    path = pipeline.drop(f"{INBOX}/people.csv", FULL)
    _swap_in_symlink_after_checks(monkeypatch, path, outside)
    taken = registry.scan(pipeline.settings)
    pipeline.drain()
    logs = intake_logs
    assert [t.outcome for t in taken] == ["refused"]
    assert sql("SELECT email FROM lms.users") == []
    assert sql("SELECT count(*) FROM sync.feed_files")[0][0] == 0
    assert outside.read_text() == OUTSIDE, "the file outside is untouched"
    refusals = [e for e in logs if e["event"].startswith("refused a file")]
    assert len(refusals) == 1 and refusals[0]["path"] == f"{INBOX}/people.csv"
    assert "secret@outside.com" not in repr(logs) and "ann@x.com" not in repr(logs)


def test_a_hard_link_to_a_file_outside_the_drop_dir_is_refused(
    pipeline: Pipeline, tmp_path: Path, intake_logs: list[MutableMapping[str, Any]]
) -> None:
    outside = tmp_path / "root-only.csv"
    outside.write_text(OUTSIDE)
    (pipeline.settings.drop_dir / INBOX).mkdir(parents=True)
    os.link(outside, pipeline.settings.drop_dir / INBOX / "people.csv")
    taken = registry.scan(pipeline.settings)
    pipeline.drain()
    logs = intake_logs
    assert [t.outcome for t in taken] == ["refused"]
    assert sql("SELECT email FROM lms.users") == []
    assert any("more than one hard link" in e["event"] for e in logs)
    assert "secret@outside.com" not in repr(logs)


def test_a_file_name_the_filesystem_barely_fits_or_that_is_bad_never_stops_the_others(
    pipeline: Pipeline, intake_logs: list[MutableMapping[str, Any]]
) -> None:
    inbox = pipeline.settings.drop_dir / INBOX
    long_name = "a" * 240 + ".csv"  # 244 bytes: no room for a prefix in the store
    pipeline.drop(f"{INBOX}/{long_name}", HEADER + "long@x.com,L,L,,S\n")
    pipeline.drop(f"{INBOX}/b\x1b[31mell.csv", HEADER + "bell@x.com,B,B,,S\n")
    inbox.mkdir(parents=True, exist_ok=True)
    with open(os.fsencode(inbox) + b"/caf\xe9.csv", "wb") as f:
        f.write((HEADER + "cafe@x.com,C,C,,S\n").encode())
    pipeline.drop(f"{INBOX}/zed.csv", HEADER + "zed@x.com,Z,Z,,S\n")
    reported: set[tuple[Any, ...]] = set()
    taken = registry.scan(pipeline.settings, reported=reported)
    again = registry.scan(pipeline.settings, reported=reported)
    pipeline.drain()
    logs = intake_logs
    assert sorted(t.outcome for t in taken) == ["refused", "refused", "registered", "registered"]
    assert sorted(t.outcome for t in again) == ["refused", "refused"]
    assert sorted(e for (e,) in sql("SELECT email FROM lms.users")) == ["long@x.com", "zed@x.com"]
    refusals = [e for e in logs if e["event"].startswith("refused a file")]
    assert len(refusals) == 2, "each bad file is logged once, not at every rescan"
    assert sorted(e["path"] for e in refusals) == [f"{INBOX}/b\\x1b[31mell.csv", f"{INBOX}/caf\\xe9.csv"]


def test_the_store_is_outside_the_drop_dir(pipeline: Pipeline) -> None:
    pipeline.import_files((f"{INBOX}/a.csv", FULL))
    assert not any(p.is_file() for p in pipeline.settings.drop_dir.rglob("*"))
    assert not (pipeline.settings.drop_dir / ".feedsync").exists()
    (stored,) = sql("SELECT stored_path FROM sync.feed_files")[0]
    assert pipeline.settings.stored_file(stored).is_relative_to(pipeline.settings.store_dir)


def test_a_stored_file_changed_before_it_is_parsed_is_a_bad_file_and_nothing_of_it_is_imported(
    pipeline: Pipeline,
) -> None:
    pipeline.drop(f"{INBOX}/a.csv", FULL)
    registry.scan(pipeline.settings, announce=False)
    (stored,) = sql("SELECT stored_path FROM sync.feed_files")[0]
    pipeline.settings.stored_file(stored).write_text(OUTSIDE)
    run = pipeline.sync("hr-users")
    assert run["status"] == "failed"
    assert "SHA-256 no longer matches" in run["files"][0]["error"]
    assert sql("SELECT email FROM lms.users") == []


def test_a_store_on_another_filesystem_gets_a_copy_and_the_drop_is_removed(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A second filesystem is needed for os.replace to refuse (EXDEV). Linux and containers mount
    # /dev/shm as a tmpfs of its own, as CI's machine does; a machine without one fails here, saying
    # so, rather than leaving the copy path unchecked in silence.
    shm = Path("/dev/shm")
    assert shm.is_dir() and os.stat(shm).st_dev != os.stat(tmp_path).st_dev, (
        "this test needs /dev/shm on a filesystem other than the test's tmp folder"
    )
    from schemas.settings import get_settings

    store_dir = shm / f"feedsync-store-{os.getpid()}-{tmp_path.name}"
    monkeypatch.setenv("FEEDSYNC_STORE_DIR", str(store_dir))
    get_settings.cache_clear()
    pipeline.settings = get_settings()
    try:
        run_id = pipeline.import_files((f"{INBOX}/a.csv", FULL))
        assert sql("SELECT status FROM sync.runs WHERE id = %s", (run_id,))[0][0] == "completed"
        assert sorted(e for (e,) in sql("SELECT email FROM lms.users")) == ["ann@x.com", "bob@x.com", "cid@x.com"]
        assert not (pipeline.settings.drop_dir / INBOX / "a.csv").exists()
    finally:
        import shutil

        shutil.rmtree(store_dir, ignore_errors=True)


def test_upload_writes_the_marker_of_a_done_marker_connection(pipeline: Pipeline, tmp_path: Path) -> None:
    from producers.commands import upload

    apply_connections(load_connections_toml(USERS_TOML.replace('kind = "users"', 'kind = "users"\ndone_marker = true')))
    source = tmp_path / "people.csv"
    source.write_text(FULL)
    upload(pipeline.settings, "hr-users", [source])
    assert [t.outcome for t in registry.scan(pipeline.settings, announce=False)] == ["registered"]
    assert list((pipeline.settings.drop_dir / INBOX).iterdir()) == [], "the marker went with its file"
