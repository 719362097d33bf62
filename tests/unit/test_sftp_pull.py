"""The SFTP pull against a real SFTP server in the test process (asyncssh's, on a free 127.0.0.1
port): what is taken, when, exactly once, and what becomes of the remote file."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from producers import registry, sftp_loop, sftp_pull
from tests.conftest import sql
from tests.sftp_server import ClientKey, SftpServer, client_key, sftp_server
from tests.sftpdata import FEED, OLD, OTHER, _drained, configure, pull_logs, put, registered
from tests.stubpipeline import HEADER, Pipeline
from tests.waiting import poll_until
from workers.errors import TerminalError, TransientError
from workers.files.sftp import SftpLoginError

__all__ = ["_drained", "client_key", "pull_logs", "sftp_server"]  # fixtures, used by name


def remote(server: SftpServer) -> list[str]:
    return sorted(p.name for p in (server.root / "outbound").iterdir())


def emails() -> list[str]:
    return sorted(e for (e,) in sql("SELECT email FROM lms.users"))


def test_a_pulled_feed_is_imported_once_and_the_remote_file_deleted_only_after_its_registration(
    pipeline: Pipeline, sftp_server: SftpServer, client_key: ClientKey
) -> None:
    c = configure(sftp_server, client_key, after_pickup="delete")
    put(sftp_server, "monday.csv", FEED)
    assert sftp_pull.poll(pipeline.settings, c).taken == [], "first listing: not yet known to be stable"
    result = sftp_pull.poll(pipeline.settings, c)
    assert result.taken == ["monday.csv"] and result.handled == ["monday.csv"]
    pipeline.drain()
    assert emails() == ["ann@x.com", "bob@x.com"]
    assert remote(sftp_server) == []
    assert sql("SELECT state, pickup, file_id IS NOT NULL FROM sync.sftp_files") == [("handled", "deleted", True)]
    assert not list((pipeline.settings.drop_dir / "import/user/internal").iterdir()), "no .part left behind"


def test_a_server_whose_key_is_not_the_pinned_one_is_refused_with_one_sentence(
    pipeline: Pipeline, sftp_server: SftpServer, client_key: ClientKey
) -> None:
    impostor = SftpServer(sftp_server.root, client_key.public).start()
    try:
        c = configure(impostor, client_key)
        c["config"]["sftp"]["host_key"] = sftp_server.host_key_line  # pinned: the real server's key
        put(sftp_server, "monday.csv", FEED)
        with pytest.raises(SftpLoginError) as exc:
            sftp_pull.poll(pipeline.settings, c)
    finally:
        impostor.stop()
    assert str(exc.value).startswith("hr-users: the SFTP server 127.0.0.1:")
    assert "did not present the pinned host key" in str(exc.value) and "\n" not in str(exc.value)
    assert impostor.log == [], "nothing was listed or read"


def test_a_refused_login_fails_at_once_naming_the_connection_and_what_to_check(
    pipeline: Pipeline, sftp_server: SftpServer, tmp_path: Path
) -> None:
    (tmp_path / "stranger").mkdir()
    stranger = ClientKey(tmp_path / "stranger")
    c = configure(sftp_server, stranger)
    with pytest.raises(TerminalError, match="refused the login of 'lms': check user and that its public key"):
        sftp_pull.poll(pipeline.settings, c)


def test_part_files_dotfiles_markers_folders_and_names_the_connection_does_not_take_are_never_pulled(
    pipeline: Pipeline, sftp_server: SftpServer, client_key: ClientKey
) -> None:
    c = configure(sftp_server, client_key)
    for name in ("big.csv.part", ".hidden.csv", "upload.csv.tmp", "notes.txt", "good.csv"):
        put(sftp_server, name, FEED)
    (sftp_server.root / "outbound" / "folder.csv").mkdir()
    sftp_pull.poll(pipeline.settings, c)
    result = sftp_pull.poll(pipeline.settings, c)
    assert result.taken == ["good.csv"]
    why = {d.entry.name: d.why for d in result.decisions}
    assert why["big.csv.part"] == why["upload.csv.tmp"] == "a partial upload (temporary suffix)"
    assert why[".hidden.csv"] == "a dotfile"
    assert why["folder.csv"] == "not a regular file"
    assert "does not match the connection's path" in why["notes.txt"]
    assert registered() == ["good.csv"]


def test_a_growing_file_is_pulled_only_once_two_listings_agree_and_it_is_old_enough(
    pipeline: Pipeline, sftp_server: SftpServer, client_key: ClientKey
) -> None:
    c = configure(sftp_server, client_key, min_file_age_s=600)
    young = put(sftp_server, "young.csv", FEED, mtime=time.time())
    growing = put(sftp_server, "growing.csv", HEADER)
    assert sftp_pull.poll(pipeline.settings, c).taken == []
    growing.write_text(FEED)  # more rows arrive; the mtime is set back, as a careless client may do
    os.utime(growing, (OLD, OLD))
    result = sftp_pull.poll(pipeline.settings, c)
    assert result.taken == []
    why = {d.entry.name: d.why for d in result.decisions}
    assert why["growing.csv"].startswith("new or changed since the last listing")
    assert why["young.csv"].startswith("younger than min_file_age_s")
    assert sftp_pull.poll(pipeline.settings, c).taken == ["growing.csv"], "unchanged on two listings in a row"
    os.utime(young, (OLD, OLD))
    sftp_pull.poll(pipeline.settings, c)
    assert sftp_pull.poll(pipeline.settings, c).taken == ["young.csv"]
    assert registered() == ["growing.csv", "young.csv"]


def test_with_a_done_marker_a_file_is_pulled_once_its_marker_exists_and_both_are_deleted(
    pipeline: Pipeline, sftp_server: SftpServer, client_key: ClientKey
) -> None:
    c = configure(sftp_server, client_key, done_marker=".done", after_pickup="delete")
    put(sftp_server, "monday.csv", FEED)
    for _ in range(2):
        result = sftp_pull.poll(pipeline.settings, c)
        assert result.taken == [] and result.decisions[0].why == "waiting for its marker monday.csv.done"
    put(sftp_server, "monday.csv.done", "")
    assert sftp_pull.poll(pipeline.settings, c).taken == ["monday.csv"]
    assert remote(sftp_server) == []
    assert registered() == ["monday.csv"]


def test_two_files_with_the_same_mtime_second_are_both_pulled(
    pipeline: Pipeline, sftp_server: SftpServer, client_key: ClientKey
) -> None:
    c = configure(sftp_server, client_key)
    put(sftp_server, "a.csv", FEED, mtime=OLD)
    sftp_pull.poll(pipeline.settings, c)
    assert sftp_pull.poll(pipeline.settings, c).taken == ["a.csv"]
    put(sftp_server, "b.csv", OTHER, mtime=OLD)  # uploaded later, the same mtime second as a.csv
    sftp_pull.poll(pipeline.settings, c)
    assert sftp_pull.poll(pipeline.settings, c).taken == ["b.csv"]
    assert registered() == ["a.csv", "b.csv"]


def test_a_second_poll_downloads_nothing_and_keep_leaves_the_remote_file(
    pipeline: Pipeline, sftp_server: SftpServer, client_key: ClientKey
) -> None:
    c = configure(sftp_server, client_key, after_pickup="keep")
    put(sftp_server, "monday.csv", FEED)
    sftp_pull.poll(pipeline.settings, c)
    assert sftp_pull.poll(pipeline.settings, c).taken == ["monday.csv"]
    sftp_server.log.clear()
    result = sftp_pull.poll(pipeline.settings, c)
    assert result.taken == [] and result.decisions[0].why == "already taken (handled)"
    assert [op for op in sftp_server.log if op[0] == "open"] == [], "nothing downloaded again"
    assert remote(sftp_server) == ["monday.csv"]


def test_a_crash_between_download_and_registration_leaves_the_remote_file_and_the_next_poll_imports_it_once(
    pipeline: Pipeline, sftp_server: SftpServer, client_key: ClientKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = configure(sftp_server, client_key, after_pickup="delete")
    put(sftp_server, "monday.csv", FEED)
    sftp_pull.poll(pipeline.settings, c)
    monkeypatch.setenv("FEEDSYNC_FAILPOINTS", "sftp.landed=raise")
    with pytest.raises(RuntimeError, match=r"failpoint sftp\.landed"):
        sftp_pull.poll(pipeline.settings, c)
    assert remote(sftp_server) == ["monday.csv"], "not registered: the remote file stays"
    assert registered() == []
    monkeypatch.delenv("FEEDSYNC_FAILPOINTS")
    sftp_server.log.clear()
    result = sftp_pull.poll(pipeline.settings, c)
    assert result.handled == ["monday.csv"] and result.taken == []
    assert [op for op in sftp_server.log if op[0] == "open"] == [], "the landed file is registered, not re-pulled"
    pipeline.drain()
    assert registered() == ["monday.csv"] and emails() == ["ann@x.com", "bob@x.com"]
    assert remote(sftp_server) == []
    assert sql("SELECT count(*) FROM sync.runs")[0][0] == 1


def test_a_landed_file_the_watcher_registered_first_is_handled_without_a_second_download(
    pipeline: Pipeline, sftp_server: SftpServer, client_key: ClientKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = configure(sftp_server, client_key, after_pickup="delete")
    put(sftp_server, "monday.csv", FEED)
    sftp_pull.poll(pipeline.settings, c)
    monkeypatch.setenv("FEEDSYNC_FAILPOINTS", "sftp.landed=raise")
    with pytest.raises(RuntimeError):
        sftp_pull.poll(pipeline.settings, c)
    monkeypatch.delenv("FEEDSYNC_FAILPOINTS")
    registry.scan(pipeline.settings)  # the watcher's rescan takes it first
    assert registered() == ["monday.csv"]
    assert sftp_pull.poll(pipeline.settings, c).handled == ["monday.csv"]
    assert remote(sftp_server) == [] and registered() == ["monday.csv"]


def test_a_file_that_vanishes_between_list_and_get_is_a_warning(
    pipeline: Pipeline, sftp_server: SftpServer, client_key: ClientKey, pull_logs: list[Any]
) -> None:
    c = configure(sftp_server, client_key)
    put(sftp_server, "gone.csv", FEED)
    put(sftp_server, "stays.csv", OTHER)
    sftp_pull.poll(pipeline.settings, c)
    sftp_server.vanish_on_open.add("gone.csv")
    assert sftp_pull.poll(pipeline.settings, c).taken == ["stays.csv"]
    assert [e["file"] for e in pull_logs if e["log_level"] == "warning"] == ["gone.csv"]
    assert registered() == ["stays.csv"]
    assert not (pipeline.settings.drop_dir / "import/user/internal/.gone.csv.part").exists()


def test_a_move_the_server_refuses_is_a_warning_and_the_file_is_not_pulled_again(
    pipeline: Pipeline, sftp_server: SftpServer, client_key: ClientKey, pull_logs: list[Any]
) -> None:
    (sftp_server.root / "archive").mkdir()
    c = configure(sftp_server, client_key, after_pickup="move:/archive")
    put(sftp_server, "monday.csv", FEED)
    sftp_server.refuse_changes = True
    sftp_pull.poll(pipeline.settings, c)
    assert sftp_pull.poll(pipeline.settings, c).taken == ["monday.csv"]
    warnings = [e for e in pull_logs if e["log_level"] == "warning"]
    assert [w["file"] for w in warnings] == ["monday.csv"] and "not pulled again" in warnings[0]["event"]
    refused = "could not move to /archive: SFTPPermissionDenied"
    assert sql("SELECT state, pickup FROM sync.sftp_files") == [("handled", refused)]
    assert sftp_pull.poll(pipeline.settings, c).taken == []
    assert registered() == ["monday.csv"] and remote(sftp_server) == ["monday.csv"]


def test_after_pickup_move_puts_the_taken_file_in_the_archive_folder(
    pipeline: Pipeline, sftp_server: SftpServer, client_key: ClientKey
) -> None:
    (sftp_server.root / "archive").mkdir()
    c = configure(sftp_server, client_key, after_pickup="move:/archive")
    put(sftp_server, "monday.csv", FEED)
    sftp_pull.poll(pipeline.settings, c)
    sftp_pull.poll(pipeline.settings, c)
    assert remote(sftp_server) == []
    assert (sftp_server.root / "archive" / "monday.csv").read_text() == FEED


def test_a_password_login_works_and_the_password_never_appears_in_logs_or_the_database(
    pipeline: Pipeline, sftp_server: SftpServer, monkeypatch: pytest.MonkeyPatch, pull_logs: list[Any]
) -> None:
    password = sftp_server.password
    assert password is not None
    monkeypatch.setenv("HR_SFTP_PASSWORD", password)
    c = configure(sftp_server, None)
    put(sftp_server, "monday.csv", FEED)
    sftp_loop.poll_guarded(pipeline.settings, c)
    assert sftp_loop.poll_guarded(pipeline.settings, c) is not None
    assert registered() == ["monday.csv"]
    monkeypatch.setenv("HR_SFTP_PASSWORD", "wrong-" + password)
    assert sftp_loop.poll_guarded(pipeline.settings, c) is None
    (error,) = sql("SELECT error FROM sync.sftp_polls")[0]
    assert "refused the login of 'lms': check user and the password in HR_SFTP_PASSWORD" in error
    stored = sql("SELECT c.config::text, p.error FROM sync.connections c, sync.sftp_polls p")
    assert password not in repr(pull_logs) and password not in repr(stored)


def test_a_missing_password_variable_says_which_one_to_set(pipeline: Pipeline, sftp_server: SftpServer) -> None:
    c = configure(sftp_server, None)
    with pytest.raises(SftpLoginError, match=r"the environment variable HR_SFTP_PASSWORD .* is not set"):
        sftp_pull.poll(pipeline.settings, c)


def test_a_refused_connection_is_transient_and_retried_with_the_backoff_not_the_poll_interval(
    pipeline: Pipeline, sftp_server: SftpServer, client_key: ClientKey
) -> None:
    c = configure(sftp_server, client_key, poll_every_min=60)
    sftp_server.stop()
    with pytest.raises(TransientError, match=r"could not reach the SFTP server 127\.0\.0\.1:"):
        sftp_pull.poll(pipeline.settings, c)
    sftp_loop.poll_guarded(pipeline.settings, c)
    assert sql("SELECT ok, failures FROM sync.sftp_polls") == [(False, 1)]
    sql("UPDATE sync.sftp_polls SET polled_at = now() - interval '1 second'")
    assert sftp_loop._due(c, pipeline.settings), "retried after the backoff (50 ms in tests), not in an hour"


def test_a_successful_poll_is_due_again_only_after_poll_every_min(
    pipeline: Pipeline, sftp_server: SftpServer, client_key: ClientKey
) -> None:
    c = configure(sftp_server, client_key, poll_every_min=5)
    assert sftp_loop._due(c, pipeline.settings)
    sftp_loop.poll_guarded(pipeline.settings, c)
    assert not sftp_loop._due(c, pipeline.settings)
    sql("UPDATE sync.sftp_polls SET polled_at = now() - interval '5 minutes'")
    assert sftp_loop._due(c, pipeline.settings)


def test_the_pull_loop_polls_a_due_connection_and_stops_when_asked(
    pipeline: Pipeline, sftp_server: SftpServer, client_key: ClientKey
) -> None:
    import threading

    c = configure(sftp_server, client_key, done_marker=".done", after_pickup="delete")
    put(sftp_server, "monday.csv", FEED)
    put(sftp_server, "monday.csv.done", "")
    stopping = threading.Event()
    loop = threading.Thread(target=sftp_loop.run, args=(pipeline.settings, stopping))
    loop.start()
    try:
        poll_until(lambda: not remote(sftp_server), timeout=60, message="the pulled files stayed on the server")
    finally:
        stopping.set()
        loop.join(timeout=30)
    assert not loop.is_alive()
    assert registered() == ["monday.csv"] and remote(sftp_server) == []
    assert sql("SELECT ok FROM sync.sftp_polls WHERE connection_id = %s", (c["id"],)) == [(True,)]
