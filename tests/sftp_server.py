"""A real SFTP server in the test process (asyncssh's), on a free 127.0.0.1 port, serving a folder
of the test's own: the fast tier's server. Its event loop runs in a thread of its own, because
feedsync's client runs its own loop (``asyncio.run``) in the test's thread.

The server's behaviour can be bent where a real server would misbehave: a file that vanishes
between the listing and the download, a move or delete the server refuses."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest


class _Files(asyncssh.SFTPServer):
    server: SftpServer

    def __init__(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:
        super().__init__(chan, chroot=os.fsencode(self.server.root))

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> Any:
        name = os.fsdecode(path).rsplit("/", 1)[-1]
        self.server.log.append(("open", os.fsdecode(path)))
        if name in self.server.vanish_on_open:
            os.unlink(self.map_path(path))
        return super().open(path, pflags, attrs)

    def _refuse(self, what: str, path: bytes) -> None:
        self.server.log.append((what, os.fsdecode(path)))
        if self.server.refuse_changes:
            raise asyncssh.SFTPPermissionDenied("permission denied")

    def remove(self, path: bytes) -> Any:
        self._refuse("remove", path)
        return super().remove(path)

    def rename(self, oldpath: bytes, newpath: bytes) -> Any:
        self._refuse("rename", oldpath)
        return super().rename(oldpath, newpath)

    def posix_rename(self, oldpath: bytes, newpath: bytes) -> Any:
        self._refuse("posix_rename", oldpath)
        return super().posix_rename(oldpath, newpath)


class _Passwords(asyncssh.SSHServer):
    def __init__(self, password: str | None) -> None:
        self.password = password

    def password_auth_supported(self) -> bool:
        return self.password is not None

    def validate_password(self, username: str, password: str) -> bool:
        return password == self.password


class SftpServer:
    def __init__(self, root: Path, client_public_key: str | None = None, password: str | None = None) -> None:
        self.root = root
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.client_public_key = client_public_key
        self.password = password
        self.vanish_on_open: set[str] = set()
        self.refuse_changes = False
        self.log: list[tuple[str, str]] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._acceptor: asyncssh.SSHAcceptor | None = None

    @property
    def host_key_line(self) -> str:
        return self.host_key.export_public_key().decode("ascii").strip()

    def start(self) -> SftpServer:
        server = self

        class Files(_Files):
            pass

        Files.server = server
        authorized = asyncssh.import_authorized_keys(self.client_public_key) if self.client_public_key else None

        async def listen() -> asyncssh.SSHAcceptor:
            return await asyncssh.listen(
                "127.0.0.1",
                0,
                server_host_keys=[self.host_key],
                authorized_client_keys=authorized,
                server_factory=lambda: _Passwords(self.password),
                sftp_factory=Files,
                allow_scp=False,
            )

        self._thread.start()
        self._acceptor = asyncio.run_coroutine_threadsafe(listen(), self._loop).result(timeout=30)
        self.port = self._acceptor.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        if self._loop.is_closed():
            return
        if self._acceptor is not None:
            acceptor = self._acceptor

            async def close() -> None:
                acceptor.close()
                await acceptor.wait_closed()

            asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()


class ClientKey:
    """An ed25519 key pair for the client, written where key_file can point."""

    def __init__(self, folder: Path) -> None:
        self.key = asyncssh.generate_private_key("ssh-ed25519")
        self.path = folder / "client_key"
        self.path.write_bytes(self.key.export_private_key())
        self.path.chmod(0o600)
        self.public = self.key.export_public_key().decode("ascii").strip()


@pytest.fixture
def client_key(tmp_path: Path) -> ClientKey:
    return ClientKey(tmp_path)


@pytest.fixture
def sftp_server(tmp_path: Path, client_key: ClientKey) -> Iterator[SftpServer]:
    root = tmp_path / "server"
    (root / "outbound").mkdir(parents=True)
    server = SftpServer(root, client_key.public, password="s3cret-Pa55word").start()  # noqa: S106 (a test password)
    yield server
    server.stop()
