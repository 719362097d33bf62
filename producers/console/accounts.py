"""Console admins, their sessions and the audit trail, in PostgreSQL.

Passwords are kept as argon2id hashes (argon2-cffi's defaults). A session cookie holds 32 random
bytes; the table holds only their SHA-256, with the session's CSRF token and its expiry on the
database clock. Sign-in is throttled (producers/console/throttle.py) on the attempts recorded in
``sync.audit``, per name tried and per client address, so neither guessing one admin's password nor
spraying many names works.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from psycopg.types.json import Jsonb

from workers import store

ROLES = ("admin", "viewer")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,62}$")
MIN_PASSWORD_CHARS = 12

_hasher = PasswordHasher()
# Verified against when the name is unknown, so a wrong name costs the same time as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class AccountError(ValueError):
    """A refusal with a sentence for the admin."""


@dataclass(frozen=True)
class Admin:
    id: int
    name: str
    role: str

    @property
    def can_act(self) -> bool:
        return self.role == "admin"

    @property
    def identity(self) -> str:
        """How the console admin is recorded where the CLI records the shell user."""
        return f"console:{self.name}"


@dataclass(frozen=True)
class Session:
    admin: Admin
    csrf_token: str


def add_admin(name: str, password: str, role: str) -> None:
    if not NAME.match(name):
        raise AccountError(f"{name!r}: a name is 1 to 63 letters, digits, '_', '.', '@' or '-'")
    if role not in ROLES:
        raise AccountError(f"role {role!r}: choose admin or viewer")
    if len(password) < MIN_PASSWORD_CHARS:
        raise AccountError(f"the password must have at least {MIN_PASSWORD_CHARS} characters")
    with store.connect() as conn:
        row = store.fetch_one(
            conn,
            "INSERT INTO sync.admins (name, password_hash, role) VALUES (%s, %s, %s) "
            "ON CONFLICT (name) DO NOTHING RETURNING id",
            (name, _hasher.hash(password), role),
        )
    if row is None:
        raise AccountError(f"an admin named {name!r} exists; remove them first to change the password or role")


def list_admins() -> list[dict[str, Any]]:
    with store.connect() as conn:
        return store.fetch_all(
            conn,
            """SELECT a.name, a.role, a.created_at,
                      (SELECT count(*) FROM sync.admin_sessions s WHERE s.admin_id = a.id AND s.expires_at > now())
                        AS sessions
               FROM sync.admins a ORDER BY a.name""",
        )


def remove_admin(name: str) -> None:
    """Remove an admin and end their sessions; what they did stays in the audit."""
    with store.connect() as conn:
        row = store.fetch_one(conn, "DELETE FROM sync.admins WHERE name = %s RETURNING id", (name,))
    if row is None:
        raise AccountError(f"no admin named {name!r}; see `feedsync admins list`")


def authenticate(name: str, password: str) -> Admin | None:
    with store.connect() as conn:
        row = store.fetch_one(conn, "SELECT id, name, role, password_hash FROM sync.admins WHERE name = %s", (name,))
    try:
        _hasher.verify(row["password_hash"] if row else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None:
        return None
    if _hasher.check_needs_rehash(row["password_hash"]):
        with store.connect() as conn:
            conn.execute(
                "UPDATE sync.admins SET password_hash = %s, updated_at = now() WHERE id = %s",
                (_hasher.hash(password), row["id"]),
            )
    return Admin(int(row["id"]), row["name"], row["role"])


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(admin: Admin, hours: float) -> str:
    """A new session; returns the token for the cookie."""
    token = secrets.token_urlsafe(32)
    with store.connect() as conn:
        conn.execute("DELETE FROM sync.admin_sessions WHERE expires_at < now()")
        conn.execute(
            "INSERT INTO sync.admin_sessions (token_sha256, admin_id, csrf_token, expires_at) "
            "VALUES (%s, %s, %s, now() + make_interval(secs => %s))",
            (_digest(token), admin.id, secrets.token_urlsafe(32), hours * 3600),
        )
    return token


def session(token: str) -> Session | None:
    with store.connect() as conn:
        row = store.fetch_one(
            conn,
            """SELECT a.id, a.name, a.role, s.csrf_token FROM sync.admin_sessions s
               JOIN sync.admins a ON a.id = s.admin_id WHERE s.token_sha256 = %s AND s.expires_at > now()""",
            (_digest(token),),
        )
    if row is None:
        return None
    return Session(Admin(int(row["id"]), row["name"], row["role"]), row["csrf_token"])


def close_session(token: str) -> None:
    with store.connect() as conn:
        conn.execute("DELETE FROM sync.admin_sessions WHERE token_sha256 = %s", (_digest(token),))


def record(
    admin: str | None,
    action: str,
    target: str | None = None,
    *,
    outcome: str = "ok",
    detail: dict[str, Any] | None = None,
    client: str | None = None,
) -> None:
    with store.connect() as conn:
        conn.execute(
            "INSERT INTO sync.audit (admin, action, target, outcome, detail, client) VALUES (%s, %s, %s, %s, %s, %s)",
            (admin, action, target, outcome, Jsonb(detail or {}), client),
        )


def audit(limit: int = 200, action: str | None = None) -> list[dict[str, Any]]:
    with store.connect() as conn:
        return store.fetch_all(
            conn,
            """SELECT id, at, admin, action, target, outcome, detail FROM sync.audit
               WHERE %(a)s::text IS NULL OR action = %(a)s ORDER BY id DESC LIMIT %(n)s""",
            {"a": action, "n": limit},
        )
