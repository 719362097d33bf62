"""Runs and connections as the workers use them: typed, read once per message.

``RunRow`` is a row of ``sync.runs`` with its config as its kind's class (schemas/kinds), the
connectors' and stages' view of a run; ``ConnectionRow`` a live row of ``sync.connections``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import Any, Literal

import psycopg

from schemas.kinds import KindConfig, connection_from_json
from schemas.states import AccessMode, RunStatus, TriggerType
from workers import store


@dataclass(frozen=True)
class RunRow:
    id: int
    connection_id: int
    connection_name: str
    kind: str
    #: The connection as it was when the run was queued, as stored (``config`` is its typed form).
    stored_config: dict[str, Any]
    status: RunStatus
    trigger: TriggerType
    access: AccessMode
    dry_run: bool
    since: date | None
    rerun_of: int | None
    #: What the load decided (``None`` until it has), kept on the run so a redelivery decides the same.
    plan: dict[str, Any] | None
    counts: dict[str, Any]
    #: The run an undo run undoes (``trigger`` undo), and whether it skips conflicting rows.
    undo_of: int | None = None
    undo_skip_conflicts: bool = False
    #: The load writes its changes to the run journal (decided once, when it plans).
    journaled: bool = False

    @classmethod
    def of(cls, row: dict[str, Any]) -> RunRow:
        return cls(
            id=int(row["id"]),
            connection_id=int(row["connection_id"]),
            connection_name=str(row["connection_name"]),
            kind=str(row["kind"]),
            stored_config=row["config"],
            status=RunStatus(row["status"]),
            trigger=TriggerType(row["trigger"]),
            access=AccessMode(row["access_mode"]),
            dry_run=bool(row["dry_run"]),
            since=row["since"],
            rerun_of=row["rerun_of"],
            plan=row["plan"],
            counts=dict(row["counts"] or {}),
            undo_of=row.get("undo_of"),
            undo_skip_conflicts=bool(row.get("undo_skip_conflicts", False)),
            journaled=bool(row.get("journaled", False)),
        )

    @cached_property
    def config(self) -> KindConfig:
        """Read when first asked for: a stage that needs no config never fails on one stored wrong."""
        return connection_from_json(self.stored_config)


def read_run(
    conn: psycopg.Connection[Any], run_id: int, *, lock: Literal["", "UPDATE", "NO KEY UPDATE"] = ""
) -> RunRow | None:
    """The run, optionally locked (``FOR UPDATE``, ``FOR NO KEY UPDATE``) to the end of the transaction."""
    query = {
        "": "SELECT * FROM sync.runs WHERE id = %s",
        "UPDATE": "SELECT * FROM sync.runs WHERE id = %s FOR UPDATE",
        "NO KEY UPDATE": "SELECT * FROM sync.runs WHERE id = %s FOR NO KEY UPDATE",
    }[lock]
    row = store.fetch_one(conn, query, (run_id,))
    return None if row is None else RunRow.of(row)


@dataclass(frozen=True)
class ConnectionRow:
    id: int
    name: str
    kind: str
    stored_config: dict[str, Any]
    enabled: bool

    @classmethod
    def of(cls, row: dict[str, Any]) -> ConnectionRow:
        return cls(
            id=int(row["id"]),
            name=str(row["name"]),
            kind=str(row["kind"]),
            stored_config=row["config"],
            enabled=bool(row["enabled"]),
        )

    @cached_property
    def config(self) -> KindConfig:
        return connection_from_json(self.stored_config)


def read_connection(conn: psycopg.Connection[Any], name: str) -> ConnectionRow | None:
    """The live (not deleted) connection of that name."""
    row = store.fetch_one(
        conn,
        "SELECT id, name, kind, config, enabled FROM sync.connections WHERE name = %s AND deleted_at IS NULL",
        (name,),
    )
    return None if row is None else ConnectionRow.of(row)
