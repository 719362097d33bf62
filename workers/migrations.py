"""Plain, ordered SQL migrations from schemas/sql, applied once each and recorded."""

from __future__ import annotations

from importlib import resources

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from schemas.settings import Settings


def _migrations() -> list[tuple[str, str]]:
    files = sorted(
        (p for p in resources.files("schemas.sql").iterdir() if p.name.endswith(".sql")), key=lambda p: p.name
    )
    return [(p.name, p.read_text(encoding="utf-8")) for p in files]


def ensure_database(settings: Settings) -> bool:
    """Create the database named in the URL if it is missing. Returns True if it was created."""
    info = conninfo_to_dict(settings.database_url.get_secret_value())
    name = info.get("dbname") or "feedsync"
    try:
        psycopg.connect(settings.database_url.get_secret_value(), connect_timeout=10).close()
        return False
    except psycopg.OperationalError as exc:
        if "does not exist" not in str(exc):
            raise
    admin = make_conninfo(settings.database_url.get_secret_value(), dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(str(name))))
        except psycopg.errors.DuplicateDatabase:
            return False
    return True


def migrate(settings: Settings) -> list[str]:
    ensure_database(settings)
    applied: list[str] = []
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:
        # One migrator at a time, even with several `feedsync migrate` started together.
        conn.execute("SELECT pg_advisory_xact_lock(7300)")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS public.feedsync_migrations "
            "(name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r[0] for r in conn.execute("SELECT name FROM public.feedsync_migrations").fetchall()}
        for name, text in _migrations():
            if name in done:
                continue
            conn.execute(text.encode())
            conn.execute("INSERT INTO public.feedsync_migrations (name) VALUES (%s)", (name,))
            applied.append(name)
    return applied
