"""Sign-in throttling: every attempt is counted before its password is verified.

An attempt is reserved as a ``sign_in_failed`` row of ``sync.audit`` (outcome ``pending``) under
PostgreSQL advisory locks on the name tried and on the client address, taken in one order so two
attempts never wait on each other crosswise. Counting and reserving in one locked transaction means
parallel guesses see each other: however many arrive at once, at most ``max_failures`` per name and
per address get as far as argon2. A verified attempt is then settled: the row becomes the
``sign_in`` (or stays a refused failure). A crash between the two leaves a pending row, counted as
a failure, which errs on the side of refusing.

``feedsync admins unlock NAME`` records ``sign_in_unlocked``: the failures for that name before it
count no more, by name or by address, and for that name the failures of any address before it do
not either, so an admin locked out by someone guessing can sign in again.
"""

from __future__ import annotations

import hashlib

import structlog

from workers import store

log = structlog.get_logger(__name__)

#: How much of the name tried is kept in the audit (it may be a password typed in the wrong box).
NAME_CHARS = 64

# Failures within the window, less those for a name unlocked after them. Unlocks older than the
# window cannot discount a failure inside it, so both scans stay on the window (the audit_at index).
# For the name tried, its unlock also lifts what its address had gathered before it: behind an SSH
# tunnel or an unlisted proxy everyone has one address, and guesses at other names would otherwise
# keep the unlocked admin out. Other names from that address stay locked.
_COUNT = """
WITH unlocks AS (
    SELECT lower(target) AS name, max(at) AS at FROM sync.audit
    WHERE action = 'sign_in_unlocked' AND at > now() - make_interval(secs => %(w)s) GROUP BY 1
), failed AS (
    SELECT f.target, f.client, f.at FROM sync.audit f LEFT JOIN unlocks u ON u.name = lower(f.target)
    WHERE f.action = 'sign_in_failed' AND f.at > now() - make_interval(secs => %(w)s)
      AND (u.at IS NULL OR f.at > u.at)
)
SELECT count(*) FILTER (WHERE lower(target) = lower(%(name)s)) AS by_name,
       count(*) FILTER (WHERE client = %(client)s AND at > coalesce(
           (SELECT u.at FROM unlocks u WHERE u.name = lower(%(name)s)), '-infinity')) AS by_client
FROM failed
"""


def _lock_key(kind: str, value: str) -> int:
    digest = hashlib.sha256(f"feedsync.sign_in.{kind}:{value}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def reserve(name: str, client: str, *, max_failures: int, window_s: int) -> int | None:
    """Count one attempt for ``name`` from ``client``: the audit row holding it, or None when refused."""
    target = name[:NAME_CHARS]
    keys = sorted({_lock_key("name", target.lower()), _lock_key("client", client)})
    with store.connect() as conn:
        for key in keys:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
        counts = store.fetch_one(conn, _COUNT, {"name": target, "client": client, "w": window_s})
        assert counts is not None
        if max(int(counts["by_name"]), int(counts["by_client"])) >= max_failures:
            return None
        row = store.fetch_one(
            conn,
            "INSERT INTO sync.audit (action, target, outcome, client) "
            "VALUES ('sign_in_failed', %s, 'pending', %s) RETURNING id",
            (target, client),
        )
    assert row is not None
    return int(row["id"])


def succeeded(attempt: int, admin: str) -> None:
    """The reserved attempt signed ``admin`` in: it no longer counts as a failure."""
    with store.connect() as conn:
        conn.execute(
            "UPDATE sync.audit SET action = 'sign_in', admin = %s, target = NULL, outcome = 'ok' WHERE id = %s",
            (admin, attempt),
        )


def failed(attempt: int, *, max_failures: int, window_s: int) -> None:
    """The reserved attempt was refused. When it is the one that locks a known admin's name, say so
    in the log once (names that are no admin are never logged: they may be mistyped passwords)."""
    with store.connect() as conn:
        row = store.fetch_one(
            conn,
            "UPDATE sync.audit SET outcome = 'refused' WHERE id = %s RETURNING target, client",
            (attempt,),
        )
        assert row is not None
        admin = store.fetch_one(conn, "SELECT name FROM sync.admins WHERE lower(name) = lower(%s)", (row["target"],))
        if admin is None:
            return
        counts = store.fetch_one(conn, _COUNT, {"name": row["target"], "client": row["client"], "w": window_s})
    assert counts is not None
    if int(counts["by_name"]) == max_failures:
        log.warning(
            "console_sign_in_locked",
            admin=admin["name"],
            failures=max_failures,
            window_s=window_s,
            hint=f"sign-in as {admin['name']} is refused until the window passes or "
            f"`feedsync admins unlock {admin['name']}` lifts it",
        )


def unlock(name: str, *, by: str) -> bool:
    """Forget the failed sign-ins for an admin's name; False when no admin has that name."""
    with store.connect() as conn:
        admin = store.fetch_one(conn, "SELECT name FROM sync.admins WHERE name = %s", (name,))
        if admin is None:
            return False
        conn.execute(
            "INSERT INTO sync.audit (admin, action, target) VALUES (%s, 'sign_in_unlocked', %s)",
            (by, name[:NAME_CHARS]),
        )
    return True
