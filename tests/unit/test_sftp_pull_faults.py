"""What the SFTP pull does when a part of it goes wrong (a key others can read, a remote name the
drop folder cannot hold, a session that fails mid-poll, a missing archive folder), against the
in-process SFTP server: one sentence saying what to fix, and the other files and connections go on."""

from __future__ import annotations

import pytest

from producers import sftp_pull
from tests.sftp_server import ClientKey, SftpServer, client_key, sftp_server
from tests.stubpipeline import Pipeline
from tests.unit.test_sftp_pull import FEED, _drained, configure, put, registered
from workers.sftp import SftpLoginError

__all__ = ["_drained", "client_key", "sftp_server"]  # fixtures, used by name


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
