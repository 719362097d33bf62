"""``[connections.sftp]``: where a connection's files come from (imports) or go to (exports) over SFTP.

```toml
[connections.sftp]
host = "sftp.hr.example.com"
port = 22
user = "lms"
host_key = "ssh-ed25519 AAAA…"   # required: the pinned server key (.pub line, bare key, or ssh-keyscan line)
key_file = "hr-users"            # under FEEDSYNC_KEYS_DIR unless absolute; or password_env = "HR_SFTP_PASSWORD"
remote_dir = "/outbound"         # imports: pulled from here; exports: pushed here
after_pickup = "keep"            # imports: keep | delete | move:/archive
min_file_age_s = 120             # imports: and the same size and mtime on two listings in a row
done_marker = ".done"            # take X only when X.done exists; exports: write X.done after X
poll_every_min = 5               # imports
max_files_per_poll = 100         # imports: more waiting are taken at the next rounds, seconds apart
```

The host key is required and pinned: there is no "accept the first key" mode. A password is never
in the TOML (only the name of the environment variable that holds it), so it never reaches the
database, a log line or an error.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: Keys of the pull only: an export connection that sets one is refused (it would do nothing).
PULL_ONLY = ("after_pickup", "min_file_age_s", "poll_every_min", "max_files_per_poll")

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.:-]{0,252})$")
_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}$")
_KEY_ALGORITHMS = (
    "ssh-ed25519",
    "ssh-ed448",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-256",
    "rsa-sha2-512",
    "ssh-rsa",
)
_HOST_KEY_HELP = (
    "write the server's public key as 'ssh-ed25519 AAAA…' (a .pub line, an ssh-keyscan line or the bare "
    "key); `feedsync sftp fingerprint HOST` prints it, to be checked with the server's owner"
)


def normalise_host_key(text: str) -> str:
    """``"<algorithm> <base64>"`` from a .pub line (``alg key comment``), an ssh-keyscan or
    known_hosts line (``host alg key``) or a bare base64 key; ValueError if it is none of them."""
    words = text.strip().split()
    for i, word in enumerate(words):
        if word in _KEY_ALGORITHMS and i + 1 < len(words):
            blob = words[i + 1]
            break
    else:
        if len(words) != 1:
            raise ValueError(f"host_key is not a public key: {_HOST_KEY_HELP}")
        blob = words[0]
    try:
        raw = base64.b64decode(blob, validate=True)
        (length,) = struct.unpack(">I", raw[:4])
        algorithm = raw[4 : 4 + length].decode("ascii")
    except (binascii.Error, struct.error, UnicodeDecodeError):
        raise ValueError(f"host_key is not a public key: {_HOST_KEY_HELP}") from None
    if not algorithm.startswith(("ssh-", "ecdsa-", "sk-")) or len(raw) < 4 + length + 16:
        raise ValueError(f"host_key is not a public key: {_HOST_KEY_HELP}")
    return f"{algorithm} {blob}"


class SftpConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    host: str
    port: int = Field(default=22, ge=1, le=65535)
    user: str
    host_key: str
    key_file: str | None = None
    password_env: str | None = None
    remote_dir: str = "."
    after_pickup: str = "keep"
    min_file_age_s: int = Field(default=120, ge=0)
    done_marker: str | None = None
    poll_every_min: float = Field(default=5.0, gt=0, le=24 * 60)
    # Downloads in one poll: a backlog of thousands is taken over several rounds, each short, and
    # the connection is polled again at the next round while files wait.
    max_files_per_poll: int = Field(default=100, ge=1, le=10_000)
    # No wait is unbounded: connecting (TCP and the SSH handshake with login), and each SFTP
    # request (a server that stops answering mid-transfer).
    connect_timeout_s: float = Field(default=30.0, gt=0, le=600)
    io_timeout_s: float = Field(default=120.0, gt=0, le=3600)

    @model_validator(mode="before")
    @classmethod
    def _no_password(cls, data: Any) -> Any:
        if isinstance(data, dict) and "password" in data:
            # The value is never echoed: it is a secret that should not be in the file at all.
            raise ValueError(
                "a password is never written in the connections file: put it in an environment variable "
                'and name that variable, e.g. password_env = "HR_SFTP_PASSWORD"'
            )
        return data

    @field_validator("host")
    @classmethod
    def _host(cls, v: str) -> str:
        if not _HOST.match(v):
            raise ValueError(f"host {v!r} is not a host name or address, e.g. 'sftp.hr.example.com'")
        return v

    @field_validator("user")
    @classmethod
    def _user(cls, v: str) -> str:
        if not _USER.match(v):
            raise ValueError("user must be a login name: letters, digits, '_', '.', '@' and '-'")
        return v

    @field_validator("host_key")
    @classmethod
    def _host_key(cls, v: str) -> str:
        return normalise_host_key(v)

    @field_validator("password_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        if v is not None and not _ENV_NAME.match(v):
            raise ValueError("password_env names an environment variable, e.g. 'HR_SFTP_PASSWORD'")
        return v

    @field_validator("key_file")
    @classmethod
    def _key_file(cls, v: str | None) -> str | None:
        if v is not None and (not v.strip() or "\x00" in v):
            raise ValueError("key_file names a private key file, e.g. 'hr-users' under FEEDSYNC_KEYS_DIR")
        return v

    @field_validator("remote_dir")
    @classmethod
    def _remote_dir(cls, v: str) -> str:
        if not v or any(ch in v for ch in "\x00\r\n"):
            raise ValueError("remote_dir is a folder on the server, e.g. '/outbound'")
        return v

    @field_validator("after_pickup")
    @classmethod
    def _after_pickup(cls, v: str) -> str:
        if v in ("keep", "delete"):
            return v
        if v.startswith("move:") and len(v) > len("move:") and not any(ch in v for ch in "\x00\r\n"):
            return v
        raise ValueError("after_pickup must be 'keep', 'delete' or 'move:<folder on the server>', e.g. 'move:/archive'")

    @field_validator("done_marker")
    @classmethod
    def _marker(cls, v: str | None) -> str | None:
        if v is not None and (not v.startswith(".") or len(v) < 2 or "/" in v):
            raise ValueError("done_marker is a suffix starting with '.', e.g. '.done' (X is taken once X.done exists)")
        return v

    @model_validator(mode="after")
    def _one_login(self) -> SftpConfig:
        if (self.key_file is None) == (self.password_env is None):
            raise ValueError(
                "give exactly one way to log in: key_file (see `feedsync sftp keygen CONNECTION`) or password_env"
            )
        return self

    @property
    def move_to(self) -> str | None:
        return self.after_pickup.removeprefix("move:") if self.after_pickup.startswith("move:") else None

    def describe(self) -> str:
        """Where, for logs and the history; never a secret."""
        return f"sftp://{self.user}@{self.host}:{self.port}/{self.remote_dir.lstrip('/')}"
