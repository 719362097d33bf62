"""Typed messages. One model per message; each carries ids, names and paths, never rows.

A message is validated when it is sent (``to_kwargs``) and when it is received (``from_kwargs``).
``ACTOR`` and ``QUEUE`` let producers publish by message type without importing actor modules.
``stage_part`` names the business key of the work a message asks for, so a redelivered or
duplicated message is recognised in ``sync.stage_runs``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.states import AccessMode, TriggerType


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    ACTOR: ClassVar[str]
    QUEUE: ClassVar[str]
    # The stage this message runs, as recorded in sync.stage_runs; None for messages outside a run.
    STAGE: ClassVar[str | None] = None

    schema_version: Literal[1] = 1

    def to_kwargs(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any]) -> Message:
        return cls.model_validate(kwargs)

    def stage_part(self) -> str:
        """The part of the stage this message covers: '' for per-run stages."""
        return ""

    @property
    def run(self) -> int | None:
        return getattr(self, "run_id", None)


class FeedArrived(Message):
    """A finished file was taken from the drop dir and registered (the registration has committed)."""

    ACTOR: ClassVar[str] = "feed_arrived"
    QUEUE: ClassVar[str] = "feedsync.intake"

    connection: str
    file_id: int
    path: str = Field(description="path relative to the drop dir, as dropped")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)
    detected_at: datetime


class SyncDue(Message):
    """A run should start: from the scheduler, an admin command, or intake of a dropped file."""

    ACTOR: ClassVar[str] = "plan_run"
    QUEUE: ClassVar[str] = "feedsync.plan"
    STAGE: ClassVar[str | None] = "plan"

    connection: str
    trigger: TriggerType
    run_id: int
    since: date | None = None
    access: AccessMode = AccessMode.ONLINE
    dry_run: bool = False


class FetchRun(Message):
    """A run of a connection with an API source: pull every page into a feed file, then parse it."""

    ACTOR: ClassVar[str] = "fetch_run"
    QUEUE: ClassVar[str] = "feedsync.fetch"
    STAGE: ClassVar[str | None] = "fetch"

    run_id: int


class ParseFile(Message):
    ACTOR: ClassVar[str] = "parse_file"
    QUEUE: ClassVar[str] = "feedsync.parse"
    STAGE: ClassVar[str | None] = "parse"

    run_id: int
    file_id: int

    def stage_part(self) -> str:
        return f"file:{self.file_id}"


class TransformChunk(Message):
    ACTOR: ClassVar[str] = "transform_chunk"
    QUEUE: ClassVar[str] = "feedsync.transform"
    STAGE: ClassVar[str | None] = "transform"

    run_id: int
    file_id: int
    chunk_no: int = Field(ge=0)

    def stage_part(self) -> str:
        return f"file:{self.file_id}:chunk:{self.chunk_no}"


class LoadRun(Message):
    ACTOR: ClassVar[str] = "load_run"
    QUEUE: ClassVar[str] = "feedsync.load"
    STAGE: ClassVar[str | None] = "load"

    run_id: int
    # An approved load is a unit of work of its own: the first load stopped at the plan.
    approved: bool = False

    def stage_part(self) -> str:
        return "approved" if self.approved else ""


class FinalizeRun(Message):
    ACTOR: ClassVar[str] = "finalize_run"
    QUEUE: ClassVar[str] = "feedsync.finalize"
    STAGE: ClassVar[str | None] = "finalize"

    run_id: int


class ExportRun(Message):
    """An export run's one stage: fix its window, stream the rows into its file, record the file."""

    ACTOR: ClassVar[str] = "export_run"
    QUEUE: ClassVar[str] = "feedsync.export"
    STAGE: ClassVar[str | None] = "export"

    run_id: int


MESSAGE_TYPES: dict[str, type[Message]] = {
    m.ACTOR: m for m in (FeedArrived, SyncDue, FetchRun, ParseFile, TransformChunk, LoadRun, ExportRun, FinalizeRun)
}


def message_for_actor(actor_name: str, kwargs: dict[str, Any]) -> Message | None:
    cls = MESSAGE_TYPES.get(actor_name)
    return cls.from_kwargs(kwargs) if cls is not None else None
