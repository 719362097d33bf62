"""Shared steps of the fault tests."""

from __future__ import annotations

from typing import Any

from producers.commands import apply_connections
from schemas.connections import load_connections_toml
from tests.conftest import sql
from tests.waiting import poll_until


def two_connections() -> None:
    """The demo connection plus a second one, so a fault in one shows the other keeps flowing."""
    from producers import feedgen

    other = feedgen.DEMO_CONNECTIONS.replace('name = "hr-users"', 'name = "crm-users"').replace(
        "import/user/internal/*.csv", "import/crm/*.csv"
    )
    apply_connections(load_connections_toml(feedgen.DEMO_CONNECTIONS + other))


def wait_for(cond: Any, timeout_s: float = 90, what: str = "condition", log: Any = None) -> Any:
    def why() -> str:
        tail = log.output()[-4000:] if log is not None else ""
        runs = sql("SELECT id, status, error FROM sync.runs")
        return f"timed out waiting for {what}; runs: {runs}\n{tail}"

    return poll_until(cond, timeout=timeout_s, interval=0.2, message=why)


def run_status(connection: str) -> str | None:
    rows = sql("SELECT status FROM sync.runs WHERE connection_name = %s ORDER BY id DESC LIMIT 1", (connection,))
    return rows[0][0] if rows else None


def users_state() -> list[tuple[Any, ...]]:
    return sql(
        """SELECT u.email, u.first_name, u.last_name, m.email, u.attributes, u.active
           FROM lms.users u LEFT JOIN lms.users m ON m.id = u.manager_id ORDER BY u.email"""
    )
