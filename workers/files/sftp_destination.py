"""An export pushed to an SFTP server: ``[connections.sftp]`` on an export connection.

The export is written as with ``Folder`` into a local outbox (``<FEEDSYNC_EXPORT_DIR>/.sftp-outbox/
export/<connection>/``, so a zipped export is built the same way and its size and SHA-256 are known), then
uploaded as ``<name>.part``, the remote size checked, renamed to ``<name>`` (``posix-rename``,
replacing a file of the same name, where the server has it) and, with ``done_marker``, followed by
an empty ``<name><done_marker>``. The local copy is removed once the upload is in place.

A server that refuses the connection or times out is a TransientError (the export is retried with
the backoff); a wrong host key or a refused login is a TerminalError with one sentence; a remote
folder that cannot be written is terminal too, and no ``.part`` is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import structlog

from schemas.settings import Settings
from schemas.sftp import SftpConfig
from workers.errors import TerminalError, TransientError
from workers.files.destinations import Folder, Sink, Written
from workers.files.sftp import BLOCK, Session, session

log = structlog.get_logger(__name__)


class SftpDestination:
    def __init__(self, settings: Settings, cfg: SftpConfig, connection: str, *, zipped: bool = False) -> None:
        self.settings, self.cfg, self.connection = settings, cfg, connection
        # Hidden, beside the export folders: never taken for a delivered export.
        self.outbox = Folder(settings.export_dir / ".sftp-outbox", connection, zipped=zipped)

    def describe(self) -> str:
        return self.cfg.describe()

    @contextlib.contextmanager
    def write(self, name: str) -> Iterator[tuple[Sink, Written]]:
        with self.outbox.write(name) as (sink, written):
            yield sink, written
        local = self.outbox.folder / written.name
        try:
            asyncio.run(self._upload(local, written.name, written.bytes))
        finally:
            local.unlink(missing_ok=True)
        log.info("export pushed", destination=self.describe(), file=written.name, bytes=written.bytes)

    async def _upload(self, local: Path, name: str, size: int) -> None:
        async with session(self.settings, self.cfg, self.connection) as s:
            final, part = s.path(name), s.path(name + ".part")
            try:
                await self._put(s, local, part)
                uploaded = await s.call(s.client.stat(part))
                if uploaded.size != size:
                    raise TransientError(
                        f"{self.connection}: {part} has {uploaded.size} bytes on the server after the upload, "
                        f"not {size}; uploading again"
                    )
                await s.rename(part, final)
                if self.cfg.done_marker:
                    marker = await s.call(s.client.open(final + self.cfg.done_marker, "wb"))
                    await s.call(marker.close())
            except (asyncssh.SFTPPermissionDenied, asyncssh.SFTPNoSuchFile, asyncssh.SFTPFailure) as exc:
                with contextlib.suppress(Exception):
                    await s.call(s.client.remove(part))
                raise TerminalError(
                    f"{self.connection}: the export {name} could not be written to {self.describe()} "
                    f"({type(exc).__name__}): check that remote_dir exists and {self.cfg.user!r} may write there, "
                    f"then `feedsync rerun {self.connection}`"
                ) from None
            except BaseException:
                with contextlib.suppress(Exception):
                    await s.call(s.client.remove(part))
                raise

    async def _put(self, s: Session, local: Path, remote: str) -> None:
        async with await s.call(s.client.open(remote, "wb")) as f:
            with open(local, "rb") as src:
                while block := src.read(BLOCK):
                    await s.call(f.write(block))


def probe(settings: Settings, cfg: SftpConfig, connection: str) -> str:
    """What ``feedsync sftp check`` does for a push connection: connect (host key pinned), write a
    small probe file into ``remote_dir``, check its size on the server and remove it. Returns the
    probe's remote path; raises TerminalError (a sentence saying what to fix) or TransientError."""
    import secrets

    body = b"feedsync sftp check\n"

    async def go() -> str:
        async with session(settings, cfg, connection) as s:
            remote = s.path(f".feedsync-probe-{secrets.token_hex(6)}")
            try:
                async with await s.call(s.client.open(remote, "wb")) as f:
                    await s.call(f.write(body))
                written = await s.call(s.client.stat(remote))
                if written.size != len(body):
                    raise TerminalError(
                        f"{connection}: the probe {remote} has {written.size} bytes on the server, not {len(body)}"
                    )
            except (asyncssh.SFTPPermissionDenied, asyncssh.SFTPNoSuchFile, asyncssh.SFTPFailure) as exc:
                raise TerminalError(
                    f"{connection}: could not write to {cfg.describe()} ({type(exc).__name__}): check that "
                    f"remote_dir exists and {cfg.user!r} may write there"
                ) from None
            finally:
                with contextlib.suppress(Exception):
                    await s.call(s.client.remove(remote))
            return remote

    return asyncio.run(go())
