"""The typed contract every kind's module fulfils, checked by mypy where the registry names it.

A kind is one module (or package) under ``workers/connectors/`` whose name is the kind's name. An
import kind takes files from the drop dir through the stages plan → parse → transform → load →
finalize; an export kind writes one file from the store (workers/stages/export.py).

::

    Kind
    ├── ImportKind   file rules, staging, transform per chunk, the load's decision and steps,
    │                the counts it reports, how long its files are kept
    └── ExportKind   the file's name, its header and one SELECT over a window of change time
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import psycopg
from psycopg import sql

from schemas.exports import ExportConnection
from schemas.kinds import KindConfig
from schemas.providers import FileSpec
from workers.connectors.checks import Chunk
from workers.connectors.exporting import Window
from workers.rows import RunRow

#: One step of a load: committed on its own in an online load; returns counts to add to the run's.
Step = Callable[[psycopg.Connection[Any], RunRow], dict[str, int]]


@dataclass(frozen=True, slots=True)
class RawBlock:
    """Whole lines of a feed, one record each, as the parse hands them to a kind that stages a
    clean block itself (``BlockStager``)."""

    data: bytes
    first_line: int
    lines: int
    columns: int  # the header's width
    positions: dict[str, int]  # attribute -> 0-based column
    encoding: str  # Python codec name
    delimiter: str


class BlockStager(Protocol):
    """An import kind that stages a clean block itself, in the parse's transaction (the chunk then
    has no transform to do): ``prepare_block`` validates and maps it without the database (the
    parse prepares the next block while the current one is written), or returns None to leave it
    to COPY and the kind's SQL transform; ``write_block`` writes what was prepared."""

    def prepare_block(self, chunk: Chunk, config: KindConfig, block: RawBlock) -> Any | None: ...

    def screen_block(self, conn: psycopg.Connection[Any], chunk: Chunk, config: KindConfig, prepared: Any) -> Any:
        """What is left to stage of a prepared block once compared with the store (read only)."""
        ...

    def write_block(self, conn: psycopg.Connection[Any], chunk: Chunk, prepared: Any) -> dict[str, int]: ...


class ImportKind(Protocol):
    """An import kind's module. Configs are the kind's class (schemas/kinds) and runs ``RunRow``s,
    read once per message by the stage that calls."""

    EXPORT: Literal[False]
    #: Days a processed file is kept after its run when the connection sets no ``retention_days``;
    #: None: ``FEEDSYNC_CONTENT_RETENTION_DAYS``.
    RETENTION_DAYS: int | None
    #: The counts beyond read/created/updated/... that the history shows for this kind's runs, in order.
    HISTORY_COUNTS: tuple[str, ...]
    #: A sync that finds no file fails with this sentence; None: it completes with nothing to do.
    EMPTY_RUN: str | None

    def file_spec(self, config: KindConfig, file_name: str) -> FileSpec:
        """What a dropped file is (role, format, columns); raises FileNameProblem for a name not taken."""
        ...

    def expected_files(self, config: KindConfig) -> dict[str, str] | None:
        """A bundle's files (part -> name): a file-drop run waits until all have arrived; None: no bundle."""
        ...

    def create_staging(self, conn: psycopg.Connection[Any], run_id: int, config: KindConfig) -> None: ...

    def transform_chunk(self, conn: psycopg.Connection[Any], chunk: Chunk, config: KindConfig) -> dict[str, int]:
        """Map, validate and stage one raw chunk; bad rows become row errors. Returns valid/rejected/warnings."""
        ...

    def prepare(self, conn: psycopg.Connection[Any], run: RunRow) -> int:
        """Checks across the whole run (duplicates, references); returns how many rows it rejected."""
        ...

    def classify(self, conn: psycopg.Connection[Any], run: RunRow) -> None: ...

    def needs_plan(self, run: RunRow) -> bool: ...

    def plan(self, conn: psycopg.Connection[Any], run: RunRow) -> dict[str, Any]: ...

    def exceeded_thresholds(self, run: RunRow, p: dict[str, Any]) -> list[str]:
        """Why the plan must wait for approval, as sentences for the admin; empty: it may go on."""
        ...

    def load_steps(self, conn: psycopg.Connection[Any], run: RunRow, *, whole: bool, batch_rows: int) -> list[Step]: ...

    def finish(self, conn: psycopg.Connection[Any], run: RunRow) -> dict[str, int]: ...


class ExportKind(Protocol):
    """An export kind's module: the file's name prefix, its header and its query."""

    EXPORT: Literal[True]
    FILE_PREFIX: str

    def header(self, profile: Sequence[str]) -> list[str]: ...

    def query(self, cfg: ExportConnection, profile: Sequence[str], window: Window) -> sql.Composed: ...


Kind = ImportKind | ExportKind
