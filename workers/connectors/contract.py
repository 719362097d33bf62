"""What every kind is: a class on one base per direction, whose defaults a kind overrides, and the
facts it declares. The journal, ownership, undo, retention, people files, exports and the console
read the declarations (``workers/connectors/__init__.py`` lists the kinds); nothing else names a
kind or keeps a list of what it writes.

::

    Load         what the load stage asks: checks across the run, plan, thresholds, steps
    └── ImportKind   file rules, staging, transform per chunk, the load's decision and steps, the
                     lms tables it writes, its people files, the counts it reports, how long
                     its files are kept, its optional block stager, whether it changes people
                     (then the load ends with the assign step) (an undo's load is a Load too)
    ExportKind   the file's folder and name, its header and one SELECT over a window of change time
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import psycopg
from psycopg import sql

from schemas.exports import ExportConnection
from schemas.kinds import KindConfig
from schemas.providers import FileSpec
from workers.connectors.checks import Chunk
from workers.connectors.exporting import Window
from workers.rows import RunRow

if TYPE_CHECKING:
    from schemas.settings import Settings
    from workers.sources.pull import FetchResult

#: One step of a load: committed on its own in an online load; returns counts to add to the run's.
Step = Callable[[psycopg.Connection[Any], RunRow], dict[str, int]]

#: The counts of the assign step (workers/rules.py's ``evaluate``): a kind that assigns groups
#: shows them in the history.
ASSIGN_COUNTS = ("memberships_added", "memberships_removed")


@dataclass(frozen=True, slots=True)
class Table:
    """A table of the ``lms`` schema a kind writes. Two kinds writing one table declare the same
    value (``workers/connectors/tables.py``); the registry refuses two that differ."""

    name: str
    #: The primary key's columns: the journal's key (schemas/sql/021_run_journal.sql's triggers).
    key: tuple[str, ...]
    #: What undo does with a row the run created: delete it, or (people and what people are placed
    #: in are never deleted; courses hold learners' records) deactivate or retire it.
    created: Literal["delete", "deactivate", "retire"] = "delete"
    #: Its changes are journaled, so a run can be undone. Not for a table only ever added to.
    journaled: bool = True
    #: Exports read it by change time: a row undo gives back is stamped as changed now.
    exported_by_change: bool = False
    #: Its rows name the connection that owns them (source_connection_id).
    owned: bool = False
    #: The tables its rows point at: undo applies it before them.
    points_at: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Counted:
    """What a run counted of one thing, as the history names it (``units: 2 created, 1 moved``):
    each verb with the key of the run's counts it reads. The CLI and the console print these, so
    a kind's runs are counted in its own terms, never in another kind's."""

    noun: str
    #: (verb, key in the run's counts), in the order shown.
    verbs: tuple[tuple[str, str], ...]


#: The rows of the run's files: every import reads and may reject rows, whatever they hold.
ROWS_READ = Counted("rows", (("read", "read"), ("rejected", "rejected")))
#: People, as a users or hierarchy load writes them.
PEOPLE = Counted(
    "people",
    (("created", "created"), ("updated", "updated"), ("unchanged", "unchanged"), ("deactivated", "deactivated")),
)


#: The plan's rows (workers/stages/load.py adds them to every plan), as the counts name them.
PLANNED_ROWS: tuple[tuple[str, tuple[str, ...]], ...] = (("rows_read", ("read",)), ("rows_rejected", ("rejected",)))


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


class BlockStager(ABC):
    """How an import kind stages a clean block itself, in the parse's transaction (the chunk then
    has no transform to do): ``prepare_block`` validates and maps it without the database (the
    parse prepares the next block while the current one is written), or returns None to leave it
    to COPY and the kind's SQL transform; ``write_block`` writes what was prepared."""

    #: The extra (workers/extras.py) its modules import; where it is not installed the stager is not
    #: used and the kind's SQL transform stages every block.
    EXTRA: ClassVar[str | None] = None

    @abstractmethod
    def prepare_block(self, chunk: Chunk, config: KindConfig, block: RawBlock) -> Any | None: ...

    @abstractmethod
    def screen_block(self, conn: psycopg.Connection[Any], chunk: Chunk, config: KindConfig, prepared: Any) -> Any:
        """What is left to stage of a prepared block once compared with the store (read only)."""

    @abstractmethod
    def write_block(self, conn: psycopg.Connection[Any], chunk: Chunk, prepared: Any) -> dict[str, int]: ...


class Load(ABC):
    """What the load stage asks of a run's kind (or of an undo, which takes the load's place)."""

    def prepare(self, conn: psycopg.Connection[Any], run: RunRow) -> int:
        """Checks across the whole run (duplicates, references); returns how many rows it rejected."""
        return 0

    def classify(self, conn: psycopg.Connection[Any], run: RunRow) -> None:
        return None

    def needs_plan(self, run: RunRow) -> bool:
        return run.dry_run

    @abstractmethod
    def plan(self, conn: psycopg.Connection[Any], run: RunRow) -> dict[str, Any]: ...

    def exceeded_thresholds(self, run: RunRow, p: dict[str, Any]) -> list[str]:
        """Why the plan must wait for approval, as sentences for the admin; empty: it may go on."""
        return []

    @abstractmethod
    def load_steps(self, conn: psycopg.Connection[Any], run: RunRow, *, whole: bool, batch_rows: int) -> list[Step]: ...

    def finish(self, conn: psycopg.Connection[Any], run: RunRow) -> dict[str, int]:
        return {}


class ImportKind(Load):
    """An import kind. Configs are the kind's class (schemas/kinds) and runs ``RunRow``s, read once
    per message by the stage that calls. A subclass names itself and overrides what differs."""

    NAME: ClassVar[str]
    EXPORT: ClassVar[Literal[False]] = False
    #: The lms tables its loads write.
    TABLES: ClassVar[tuple[Table, ...]] = ()
    #: Days a processed file is kept after its run when the connection sets no ``retention_days``;
    #: None: ``FEEDSYNC_CONTENT_RETENTION_DAYS``.
    RETENTION_DAYS: ClassVar[int | None] = None
    #: The counts beyond read/created/updated/... that the history shows for this kind's runs, in order.
    HISTORY_COUNTS: ClassVar[tuple[str, ...]] = ()
    #: What the history prints for this kind's runs (``feedsync history``, ``run``, the console).
    HISTORY: ClassVar[tuple[Counted, ...]] = (ROWS_READ,)
    #: Each number its plan states (a key of the plan, ``part.key`` inside a part) and the keys of
    #: the run's counts that, summed, say the same once the run has loaded: the plan and the counts
    #: agree (tests/unit/test_plan_matches_counts.py holds every kind to it).
    PLAN_COUNTS: ClassVar[tuple[tuple[str, tuple[str, ...]], ...]] = PLANNED_ROWS
    #: A sync that finds no file fails with this sentence; None: it completes with nothing to do.
    EMPTY_RUN: ClassVar[str | None] = None
    #: Set by a CSV kind that builds clean blocks in the worker (``BlockStager``).
    BLOCKS: ClassVar[BlockStager | None] = None
    #: Set by a kind that changes people: groups follow the people, so its load ends with the
    #: assign step (workers/stages/load.py), which evaluates the group rules again for the people
    #: ``changed_people`` names. Such a kind declares the tables the rules write (tables.RULES)
    #: and ASSIGN_COUNTS among its HISTORY_COUNTS.
    ASSIGNS_GROUPS: ClassVar[bool] = False
    #: The README section (its heading's text) that says how a connection of this kind is set up:
    #: the console names it for a kind it does not set up itself, and the standard kind suite
    #: checks that the README has it.
    README_SECTION: ClassVar[str]

    @abstractmethod
    def file_spec(self, config: KindConfig, file_name: str) -> FileSpec:
        """What a dropped file is (role, format, columns); raises FileNameProblem for a name not taken."""

    def expected_files(self, config: KindConfig) -> dict[str, str] | None:
        """A bundle's files (part -> name): a file-drop run waits until all have arrived; None: no bundle."""
        return None

    def pull(self, name: str, config: KindConfig, settings: Settings, sink: Path) -> tuple[str, FetchResult] | None:
        """A kind with an API of its own: pull the run's feed into ``sink`` (whole or not at all) and
        return (its source's name, what was pulled); None: the connection's people API source
        (workers/sources) is pulled instead."""
        return None

    def pull_bundle(
        self, name: str, config: KindConfig, settings: Settings, work: Path
    ) -> list[tuple[str, FetchResult]] | None:
        """A bundle kind with an API source: pull every file of the bundle into ``work`` and return
        (file name, what was pulled) for each, in the order they are applied; None: not pulled so."""
        return None

    def changed_people(self, run: RunRow) -> sql.Composable | None:
        """For the assign step: the people the run's load changed, as a relation of ``user_id``
        (a staging table, or a parenthesised query with an alias); None: everyone."""
        return None

    def people_files(self, config: dict[str, Any]) -> list[str]:
        """The names of its stored files that hold people (removed as soon as their run has ended
        unless the connection sets retention_days), for a kind whose other files are kept."""
        return []

    @abstractmethod
    def create_staging(self, conn: psycopg.Connection[Any], run_id: int, config: KindConfig) -> None: ...

    @abstractmethod
    def transform_chunk(self, conn: psycopg.Connection[Any], chunk: Chunk, config: KindConfig) -> dict[str, int]:
        """Map, validate and stage one raw chunk; bad rows become row errors. Returns valid/rejected/warnings."""


class ExportKind(ABC):
    """An export kind: the folder and name prefix of its file, its header and its query."""

    NAME: ClassVar[str]
    EXPORT: ClassVar[Literal[True]] = True
    #: The file name before ``_<from>_to_<to>.csv`` (the names ALM's connectors use).
    FILE_PREFIX: ClassVar[str]
    #: The folder under FEEDSYNC_EXPORT_DIR/export/ when the connection names no ``location``.
    FOLDER: ClassVar[str]
    #: What the history prints for this kind's runs: the rows written to the file.
    HISTORY: ClassVar[tuple[Counted, ...]] = (Counted("rows", (("exported", "rows"),)),)
    #: What its file holds, in the admin's words (the console's New connection page).
    TITLE: ClassVar[str]

    @abstractmethod
    def header(self, cfg: ExportConnection, profile: Sequence[str]) -> list[str]: ...

    @abstractmethod
    def query(self, cfg: ExportConnection, profile: Sequence[str], window: Window) -> sql.Composed: ...


Kind = ImportKind | ExportKind
