"""What the SFTP pull does when a part of it goes wrong (a key others can read, a remote name the
drop folder cannot hold, a session that fails mid-poll, a missing archive folder), against the
in-process SFTP server: one sentence saying what to fix, and the other files and connections go on."""

from __future__ import annotations

from typing import Any

import pytest

from producers import sftp_loop, sftp_pull
from tests.conftest import sql
from tests.sftp_server import ClientKey, SftpServer, client_key, sftp_server
from tests.sftpdata import FEED, OTHER, _drained, configure, pull_logs, put, registered
from tests.stubpipeline import Pipeline
from workers.files.sftp import SftpLoginError

__all__ = ["_drained", "client_key", "pull_logs", "sftp_server"]  # fixtures, used by name


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604], ids=["0644", "0640", "0604"])
def test_a_key_file_other_users_can_read_is_refused_naming_the_file_and_the_chmod_fix(
    pipeline: Pipeline, sftp_server: SftpServer, client_key: ClientKey, mode: int
) -> None:
    c = configure(sftp_server, client_key)
    put(sftp_server, "monday.csv", FEED)
    client_key.path.chmod(mode)
    with pytest.raises(SftpLoginError) as exc:
        sftp_pull.poll(pipeline.settings, c)
    message = str(exc.value)
    assert message == (
        f"hr-users: the private key {client_key.path} can be read by other users (mode {mode:04o}): "
        f"run `chmod 600 {client_key.path}`"
    )
    assert sftp_server.log == [], "nothing was listed or read"
    client_key.path.chmod(0o600)
    sftp_pull.poll(pipeline.settings, c)
    assert sftp_pull.poll(pipeline.settings, c).taken == ["monday.csv"] and registered() == ["monday.csv"]


@pytest.mark.parametrize("length", [250, 252, 255])
def test_a_remote_name_too_long_for_the_download_name_is_refused_and_the_other_files_are_pulled(
    pipeline: Pipeline, sftp_server: SftpServer, client_key: ClientKey, pull_logs: list[Any], length: int
) -> None:
    c = configure(sftp_server, client_key, after_pickup="delete")
    long = "a" * (length - len(".csv")) + ".csv"  # sorts before the others: it must not stop them
    put(sftp_server, long, FEED)
    put(sftp_server, "good.csv", OTHER)
    sftp_pull.poll(pipeline.settings, c)
    result = sftp_loop.poll_guarded(pipeline.settings, c)
    assert result is not None and result.taken == ["good.csv"] and registered() == ["good.csv"]
    assert sql("SELECT ok, error FROM sync.sftp_polls") == [(True, None)]
    why = {d.entry.name: d.why for d in sftp_pull.check(pipeline.settings, c)}
    assert why[long] == (
        f"refused: its name is {length} bytes, longer than the 249 a pulled file's name may have "
        "(it is downloaded as .<name>.part, and the drop folder takes 255): ask the sender to shorten it"
    )
    refused = [e for e in pull_logs if e["log_level"] == "warning" and e.get("file") == long]
    assert len(refused) == 1, "one warning for the file, not one per poll"
    assert refused[0]["event"].startswith("a remote file is refused: its name is")
    assert sorted(p.name for p in (sftp_server.root / "outbound").iterdir()) == [long], "the others were deleted"


def test_a_poll_that_fails_in_an_unforeseen_way_is_recorded_as_failed_and_retried_with_the_backoff(
    pipeline: Pipeline, sftp_server: SftpServer, client_key: ClientKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = configure(sftp_server, client_key, poll_every_min=60)
    put(sftp_server, "monday.csv", FEED)
    assert sftp_loop.poll_guarded(pipeline.settings, c) is not None
    monkeypatch.setenv("FEEDSYNC_FAILPOINTS", "sftp.landed=raise")  # an error nobody planned for
    assert sftp_loop.poll_guarded(pipeline.settings, c) is None
    ((ok, failures, error),) = sql("SELECT ok, failures, error FROM sync.sftp_polls")
    assert (ok, failures) == (False, 1)
    cause = "RuntimeError: failpoint sftp.landed: injected failure"
    assert error == f"hr-users: the poll failed ({cause}); retrying with the backoff"
    sql("UPDATE sync.sftp_polls SET polled_at = now() - interval '1 second'")
    assert sftp_loop._due(c, pipeline.settings), "retried after the backoff (50 ms in tests), not in an hour"
    monkeypatch.delenv("FEEDSYNC_FAILPOINTS")
    assert sftp_loop.poll_guarded(pipeline.settings, c) is not None
    assert sql("SELECT ok, failures, error FROM sync.sftp_polls") == [(True, 0, None)]
    assert registered() == ["monday.csv"]


def test_a_remote_dir_that_is_missing_is_a_recorded_failed_poll_with_one_sentence(
    pipeline: Pipeline, sftp_server: SftpServer, client_key: ClientKey
) -> None:
    c = configure(sftp_server, client_key, remote_dir="/nowhere")
    assert sftp_loop.poll_guarded(pipeline.settings, c) is None
    ((ok, error),) = sql("SELECT ok, error FROM sync.sftp_polls")
    assert not ok and error == (
        f"hr-users: the folder /nowhere on 127.0.0.1:{sftp_server.port} does not exist: check remote_dir and the "
        "folder on the server"
    )


def test_a_missing_move_folder_is_said_and_the_taken_file_is_moved_once_the_folder_exists(
    pipeline: Pipeline, sftp_server: SftpServer, client_key: ClientKey, pull_logs: list[Any]
) -> None:
    c = configure(sftp_server, client_key, after_pickup="move:/archive")
    put(sftp_server, "monday.csv", FEED)
    sftp_pull.poll(pipeline.settings, c)
    result = sftp_pull.poll(pipeline.settings, c)
    assert result.taken == ["monday.csv"] and result.handled == []
    (warning,) = [e for e in pull_logs if e["log_level"] == "warning"]
    assert warning["event"].startswith("the after_pickup folder /archive does not exist on the server: create it")
    assert sql("SELECT state, pickup FROM sync.sftp_files") == [("registered", None)]
    assert sftp_pull.poll(pipeline.settings, c).taken == [], "taken once: not pulled again"
    (sftp_server.root / "archive").mkdir()
    assert sftp_pull.poll(pipeline.settings, c).handled == ["monday.csv"]
    assert (sftp_server.root / "archive" / "monday.csv").read_text() == FEED
    assert sql("SELECT state, pickup FROM sync.sftp_files") == [("handled", "moved to /archive/monday.csv")]
    assert registered() == ["monday.csv"]
