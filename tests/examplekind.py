"""An example kind kept in the tests: ``nicknames`` sets one profile attribute of the people the
platform already knows, from a CSV of e-mail and nickname.

It is the whole of a kind: its config class (``NicknamesConnection``) and its connector class
(``Nicknames``, on ``ImportKind``, declaring the table it writes). ``register()`` adds both to the
registries, as a kind in the package is added by one line in ``schemas.kinds.CONFIGS`` and one in
``workers.connectors.KINDS``; nothing else in the code names it.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import psycopg
from psycopg import sql
from pydantic import field_validator

from schemas import kinds
from schemas.config_base import Connection
from schemas.config_parts import ATTRIBUTE_NAME
from schemas.kinds import KindConfig, config_as
from schemas.providers import FileSpec
from workers import connectors, store
from workers.connectors.checks import Check, Chunk, checked_insert, required
from workers.connectors.contract import PLANNED_ROWS, ROWS_READ, Counted, ImportKind, Step
from workers.connectors.tables import USERS
from workers.rows import RunRow
from workers.staging import stage_table

KIND = "nicknames"


class NicknamesConnection(Connection):
    OWN_KEYS: ClassVar[tuple[str, ...]] = ("attribute",)
    DEFAULT_PATH: ClassVar[str] = "import/nicknames/*.csv"

    kind: Literal["nicknames"]
    #: The profile attribute the nickname is written to.
    attribute: str = "nickname"

    @field_validator("attribute")
    @classmethod
    def _name(cls, v: str) -> str:
        if not ATTRIBUTE_NAME.match(v):
            raise ValueError(f"attribute {v!r} must be lower case letters, digits and _")
        return v


# -- the connector ---------------------------------------------------------------------------------------

_SPEC = FileSpec("nicknames", "csv", {"email": "Email", "nickname": "Nickname"}, frozenset({"email", "nickname"}))


class Nicknames(ImportKind):
    NAME = KIND
    README_SECTION = "Adding a connector kind"
    TABLES = (USERS,)
    RETENTION_DAYS = 0
    HISTORY_COUNTS = ("nicknames_set",)
    HISTORY = (ROWS_READ, Counted("nicknames", (("set", "nicknames_set"),)))
    PLAN_COUNTS = (*PLANNED_ROWS, ("nicknames_in_feed", ("nicknames_set",)))

    def file_spec(self, config: KindConfig, file_name: str) -> FileSpec:
        return _SPEC

    def create_staging(self, conn: psycopg.Connection[Any], run_id: int, config: KindConfig) -> None:
        conn.execute(
            sql.SQL(
                "CREATE UNLOGGED TABLE IF NOT EXISTS {} (file_id bigint, line_no int, email text, nickname text)"
            ).format(stage_table("nick", run_id))
        )

    def transform_chunk(self, conn: psycopg.Connection[Any], chunk: Chunk, config: KindConfig) -> dict[str, int]:
        checks: list[Check] = [required(_SPEC, "email"), required(_SPEC, "nickname")]
        insert = sql.SQL(
            "INSERT INTO {} (file_id, line_no, email, nickname) SELECT {}, c.line_no, c.email, c.nickname "
            "FROM checked c WHERE c.ok"
        ).format(stage_table("nick", chunk.run_id), sql.Literal(chunk.file_id))
        return checked_insert(conn, chunk, _SPEC, checks, insert)

    def plan(self, conn: psycopg.Connection[Any], run: RunRow) -> dict[str, Any]:
        row = store.fetch_one(conn, sql.SQL("SELECT count(*) AS n FROM {}").format(stage_table("nick", run.id)))
        return {"nicknames_in_feed": int(row["n"]) if row else 0}

    def load_steps(self, conn: psycopg.Connection[Any], run: RunRow, *, whole: bool, batch_rows: int) -> list[Step]:
        return [apply]


def apply(conn: psycopg.Connection[Any], run: RunRow) -> dict[str, int]:
    attribute = config_as(NicknamesConnection, run.config).attribute
    n = conn.execute(
        sql.SQL(
            """UPDATE lms.users u SET attributes = u.attributes || jsonb_build_object({attribute}::text, s.nickname),
                      updated_at = clock_timestamp()
               FROM {staged} s WHERE u.email_key = lower(s.email)"""
        ).format(attribute=sql.Literal(attribute), staged=stage_table("nick", run.id))
    ).rowcount
    return {"updated": n, "nicknames_set": n}


def register() -> None:
    kinds.register(NicknamesConnection)
    connectors.register(Nicknames())


def unregister() -> None:
    kinds.unregister(NicknamesConnection)
    connectors.unregister(KIND)
