"""One SFTP session with a connection's server, the host key pinned, for the pull and the push.

What can go wrong, and what becomes of it:

    connect / login
     ├── the server's key is not the pinned one ...... SftpLoginError (terminal): one sentence, no retry
     ├── the login is refused ......................... SftpLoginError (terminal)
     ├── no key file, no password in the environment .. SftpLoginError (terminal)
     ├── a key file others may read (as OpenSSH) ...... SftpLoginError (terminal): `chmod 600` it
     └── refused, unreachable, timed out, lost ........ TransientError: retried with the backoff
    a request during the session
     ├── no such file ................................. asyncssh.SFTPNoSuchFile, for the caller (a warning)
     ├── permission denied ............................ asyncssh.SFTPPermissionDenied, for the caller
     └── no answer within io_timeout_s, lost .......... TransientError

Host keys are never looked up in ``~/.ssh/known_hosts`` and never accepted on first use; nor are
``~/.ssh/config``, the SSH agent or the default client keys consulted: what the connection says is
all that is used. The password is read from the environment at connect time and never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any, TypeVar

import asyncssh

from schemas.settings import Settings
from schemas.sftp import SftpConfig
from workers.errors import TerminalError, TransientError

T = TypeVar("T")

# asyncssh logs every connection, channel and login at INFO: noise around feedsync's own lines.
logging.getLogger("asyncssh").setLevel(logging.WARNING)

#: Bytes per SFTP read or write request batch.
BLOCK = 256 * 1024


class SftpLoginError(TerminalError):
    """The server is not the one pinned, or it refused the login: retrying cannot help."""


def key_path(settings: Settings, cfg: SftpConfig) -> Path:
    assert cfg.key_file is not None
    path = Path(cfg.key_file).expanduser()
    return path if path.is_absolute() else settings.keys_dir / path


def _credentials(settings: Settings, cfg: SftpConfig, name: str) -> dict[str, Any]:
    if cfg.password_env is not None:
        password = os.environ.get(cfg.password_env)
        if not password:
            raise SftpLoginError(
                f"{name}: the environment variable {cfg.password_env} (password_env) is not set for feedsync: "
                "set it where feedsync runs (e.g. /etc/feedsync/env)"
            )
        return {"password": password, "client_keys": None, "preferred_auth": "password,keyboard-interactive"}
    path = key_path(settings, cfg)
    try:
        # One open: the mode checked is that of the very file whose key is used.
        with open(path, "rb") as f:
            mode = stat.S_IMODE(os.fstat(f.fileno()).st_mode)
            if mode & 0o077:
                # As OpenSSH does: a key others may read is no longer a secret of this host.
                raise SftpLoginError(
                    f"{name}: the private key {path} can be read by other users (mode {mode:04o}): "
                    f"run `chmod 600 {path}`"
                )
            key = asyncssh.import_private_key(f.read())
    except (OSError, asyncssh.KeyImportError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not an unencrypted private key"
        raise SftpLoginError(
            f"{name}: the private key {path} cannot be read ({reason}): make one with `feedsync sftp keygen {name}` "
            "or fix key_file"
        ) from None
    return {"client_keys": [key], "password": None, "preferred_auth": "publickey"}


def pinned(cfg: SftpConfig) -> tuple[list[asyncssh.SSHKey], list[asyncssh.SSHKey], list[asyncssh.SSHKey]]:
    """known_hosts as asyncssh takes it: (trusted host keys, trusted CA keys, revoked keys)."""
    return ([asyncssh.import_public_key(cfg.host_key)], [], [])


def unreachable(name: str, cfg: SftpConfig, exc: BaseException) -> TransientError:
    if isinstance(exc, OSError) and exc.errno:
        reason = os.strerror(exc.errno)  # asyncio's own text repeats the address
    else:
        reason = (exc.strerror if isinstance(exc, OSError) else None) or type(exc).__name__
    return TransientError(f"{name}: could not reach the SFTP server {cfg.host}:{cfg.port} ({reason}); retrying")


@contextlib.asynccontextmanager
async def session(settings: Settings, cfg: SftpConfig, name: str) -> AsyncIterator[Session]:
    """An SFTP client session, closed on exit. ``name`` is the connection's, for the sentences."""
    options = _credentials(settings, cfg, name)
    try:
        conn = await asyncssh.connect(
            cfg.host,
            cfg.port,
            username=cfg.user,
            known_hosts=pinned(cfg),
            config=None,
            agent_path=None,
            connect_timeout=cfg.connect_timeout_s,
            login_timeout=cfg.connect_timeout_s,
            # A peer that stops answering is dropped after about io_timeout_s, mid-transfer too.
            keepalive_interval=max(1.0, cfg.io_timeout_s / 3),
            keepalive_count_max=3,
            **options,
        )
    except asyncssh.HostKeyNotVerifiable:
        raise SftpLoginError(
            f"{name}: the SFTP server {cfg.host}:{cfg.port} did not present the pinned host key: check host_key "
            f"against the server's key (`feedsync sftp fingerprint {cfg.host} --port {cfg.port}`, confirmed with "
            "the server's owner); nothing was transferred"
        ) from None
    except asyncssh.PermissionDenied:
        how = f"the password in {cfg.password_env}" if cfg.password_env else "that its public key is installed"
        raise SftpLoginError(
            f"{name}: {cfg.host}:{cfg.port} refused the login of {cfg.user!r}: check user and {how} on the server"
        ) from None
    except (OSError, TimeoutError, asyncssh.DisconnectError) as exc:
        raise unreachable(name, cfg, exc) from None
    try:
        try:
            client = await asyncio.wait_for(conn.start_sftp_client(), cfg.io_timeout_s)
        except (OSError, TimeoutError, asyncssh.Error) as exc:
            raise unreachable(name, cfg, exc) from None
        yield Session(client, cfg, name)
    finally:
        conn.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(conn.wait_closed(), 5)


class Session:
    """SFTP requests with the connection's io timeout; a lost or silent server is transient."""

    def __init__(self, client: asyncssh.SFTPClient, cfg: SftpConfig, name: str) -> None:
        self.client, self.cfg, self.name = client, cfg, name

    async def call(self, request: Awaitable[T]) -> T:
        try:
            return await asyncio.wait_for(request, self.cfg.io_timeout_s)
        except (asyncssh.SFTPConnectionLost, asyncssh.SFTPNoConnection, asyncssh.DisconnectError, OSError) as exc:
            raise unreachable(self.name, self.cfg, exc) from None
        except TimeoutError:
            raise TransientError(
                f"{self.name}: the SFTP server {self.cfg.host}:{self.cfg.port} did not answer within "
                f"{self.cfg.io_timeout_s:g} s; retrying"
            ) from None

    def path(self, name: str) -> str:
        return f"{self.cfg.remote_dir.rstrip('/')}/{name}" if self.cfg.remote_dir != "/" else f"/{name}"

    async def rename(self, old: str, new: str) -> None:
        """Atomic, replacing ``new``, where the server has posix-rename (OpenSSH); else a plain rename."""
        try:
            await self.call(self.client.posix_rename(old, new))
        except asyncssh.SFTPOpUnsupported:
            with contextlib.suppress(asyncssh.SFTPNoSuchFile):
                await self.call(self.client.remove(new))
            await self.call(self.client.rename(old, new))
