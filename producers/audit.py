"""The audit trail (``sync.audit``) of admin actions, wherever they are done: the console records
the signed-in admin (producers/console/accounts.py), the CLI the operating-system user who ran
``feedsync`` (``getpass.getuser()``), with source ``cli``. The console's audit page lists both.

A CLI command wraps its action in ``cli_action``: one row when it ends, ``ok`` with what it did in
``detail`` (ids and counts, never row values or secrets), or ``refused`` when it failed."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from workers import store

#: How much of a refusal's sentence is kept (it names files and runs, never row values).
_OUTCOME_CHARS = 500


def os_user() -> str:
    """Who ran the CLI: the operating-system user (sudo's caller when run through sudo)."""
    import os

    return os.environ.get("SUDO_USER") or getpass.getuser()


def record(
    admin: str | None,
    action: str,
    target: str | None = None,
    *,
    outcome: str = "ok",
    detail: dict[str, Any] | None = None,
    client: str | None = None,
    source: str = "console",
) -> None:
    with store.connect() as conn:
        conn.execute(
            """INSERT INTO sync.audit (admin, action, target, outcome, detail, client, source)
               VALUES (%s, %s, %s, %s, %s, %s, %s)""",
            (admin, action, target, outcome[:_OUTCOME_CHARS], Jsonb(detail or {}), client, source),
        )


@contextmanager
def cli_action(action: str, target: str | None = None) -> Iterator[dict[str, Any]]:
    """Record the CLI action done in the ``with`` block: the block fills the yielded ``detail``
    (run ids, file counts, dead letters' ids). A block that exits non-zero (``fail``) or raises is
    recorded as refused, and goes on raising."""
    detail: dict[str, Any] = {}
    try:
        yield detail
    except SystemExit as exc:
        if exc.code not in (None, 0):
            record(os_user(), action, target, outcome=detail.pop("refused", "refused"), detail=detail, source="cli")
        else:
            record(os_user(), action, target, detail=detail, source="cli")
        raise
    except Exception as exc:
        record(os_user(), action, target, outcome=f"refused: {exc}", detail=detail, source="cli")
        raise
    record(os_user(), action, target, detail=detail, source="cli")


def entries(
    *,
    limit: int = 500,
    who: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[dict[str, Any]]:
    """The audit, newest first: by who (the admin or OS user, exactly), what (the action) and when
    (from ``since``, before ``until``)."""
    with store.connect() as conn:
        return store.fetch_all(
            conn,
            """SELECT id, at, admin, action, target, outcome, detail, source FROM sync.audit
               WHERE (%(who)s::text IS NULL OR admin = %(who)s)
                 AND (%(a)s::text IS NULL OR action = %(a)s)
                 AND (%(since)s::timestamptz IS NULL OR at >= %(since)s)
                 AND (%(until)s::timestamptz IS NULL OR at < %(until)s)
               ORDER BY id DESC LIMIT %(n)s""",
            {"who": who, "a": action, "since": since, "until": until, "n": limit},
        )


def actions() -> list[str]:
    """The actions the audit holds, for the page's filter."""
    with store.connect() as conn:
        return [str(r["action"]) for r in store.fetch_all(conn, "SELECT DISTINCT action FROM sync.audit ORDER BY 1")]
