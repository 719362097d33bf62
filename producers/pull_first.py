"""``feedsync sync CONN`` and the console's on-demand run of an SFTP pull connection fetch from the
server first, as ALM's "run now" does: one poll (producers/sftp_loop.py ``poll_now``, honouring
``min_file_age_s``), then the run takes what landed. A connection without ``[connections.sftp]``,
or an export (which pushes), polls nothing. asyncssh (the ``sftp`` extra) is imported only here,
only for a connection that pulls."""

from __future__ import annotations

from producers import registry
from producers.commands import CommandError
from schemas.exports import DEFAULT_LOCATION
from schemas.settings import Settings
from workers import extras
from workers.errors import FeedsyncError


def pull_first(settings: Settings, name: str) -> str | None:
    """Poll CONN's SFTP server now; a sentence saying what it pulled, or None when CONN does not
    pull. Raises CommandError with the poll's own sentence when the server could not be polled."""
    found = [c for c in registry.live_connections(settings) if c["name"] == name]
    if not found or not found[0]["config"].get("sftp") or found[0]["kind"] in DEFAULT_LOCATION:
        return None
    connection = found[0]
    with extras.needs("sftp", f"{name}: polling its SFTP server before the run"):
        from producers import sftp_loop
        from producers.sftp_plan import sftp_config
    try:
        result = sftp_loop.poll_now(settings, connection)
    except FeedsyncError as exc:
        raise CommandError(
            f"{exc}; nothing was run: the files already landed run with the next poll, or sync again"
        ) from None
    cfg = sftp_config(connection)
    assert cfg is not None
    return f"pulled {len(result.taken)} file(s) from {cfg.describe()}"
