"""What the console's connection page shows of a connection's SFTP server: host, user, the pinned
host key's fingerprint, the remote folder, and (for a pull) the last poll and its outcome. Read
without asyncssh (the ``sftp`` extra): the console runs without it. Never a secret: a key file's
path or a password's environment variable name at most."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from schemas.exports import DEFAULT_LOCATION
from schemas.sftp import SftpConfig
from workers import store


def fingerprint(host_key: str) -> str:
    """OpenSSH's SHA256 fingerprint of a pinned ``"<algorithm> <base64>"`` key (as ``ssh-keygen -lf``)."""
    blob = base64.b64decode(host_key.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")


def summary(connection: dict[str, Any]) -> dict[str, Any] | None:
    """The SFTP part of ``connection`` (its name, kind and config), or None."""
    raw = connection["config"].get("sftp")
    if not raw:
        return None
    cfg = SftpConfig.model_validate(raw)
    pushes = connection["kind"] in DEFAULT_LOCATION
    out: dict[str, Any] = {
        "direction": "push" if pushes else "pull",
        "host": cfg.host,
        "port": cfg.port,
        "user": cfg.user,
        "fingerprint": fingerprint(cfg.host_key),
        "remote_dir": cfg.remote_dir,
        "login": f"key file {cfg.key_file}" if cfg.key_file else f"password from ${cfg.password_env}",
        "min_file_age_s": None if pushes else cfg.min_file_age_s,
        "poll_every_min": None if pushes else cfg.poll_every_min,
        "last_poll": None,
    }
    if not pushes:
        with store.connect() as conn:
            out["last_poll"] = store.fetch_one(
                conn,
                """SELECT p.polled_at, p.ok, p.error, p.failures FROM sync.sftp_polls p
                   JOIN sync.connections c ON c.id = p.connection_id
                   WHERE c.name = %s AND c.deleted_at IS NULL""",
                (connection["name"],),
            )
    return out
