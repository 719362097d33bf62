"""What every kind's connection config is built on.

::

    KindConfig            name, kind, enabled, schedule, notify; the keys it owns and refuses
    ├── Connection        an import: path, trigger, reading options, retention, intake
    │   ├── PeopleConnection   full feeds and their safety thresholds (users, hierarchy)
    │   └── ... one class per import kind (schemas/kinds/<kind>.py, or a module of its own)
    └── ExportConnection  (schemas/exports.py)

A kind's class declares only the keys it takes. ``OWN_KEYS`` are keys no other kind shares by
default: a connection of another kind naming one is refused on that key's line, saying which
kinds take it (a key meant for another kind is a mistake, never ignored). ``REFUSED`` are keys a
kind refuses with a sentence of its own, saying what to write instead.
"""

from __future__ import annotations

import typing
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.config_parts import (
    DEFAULT_MAX_DEACTIVATE,
    Expect,
    KeyProblem,
    Notify,
    Schedule,
    Threshold,
    check_delimiter,
    check_encoding,
    path_pattern_problem,
)
from schemas.sftp import SftpConfig

MAX_RETENTION_DAYS = 3650
MAX_SETTLE_SECONDS = 3600


def _is_share(v: str) -> bool:
    try:
        return Threshold.parse(v).percent is not None
    except ValueError:
        return False


class KindConfig(BaseModel):
    # Strict: TOML values are already typed, so "yes" for a boolean is a mistake to refuse, not coerce.
    model_config = ConfigDict(extra="forbid", strict=True)

    OWN_KEYS: ClassVar[tuple[str, ...]] = ()
    REFUSED: ClassVar[dict[str, str]] = {}
    #: What kinds sharing this class's keys are called in messages ("content connections"), if anything.
    FAMILY: ClassVar[str | None] = None
    #: False: the kind takes no files from the drop dir (an export).
    TAKES_FILES: ClassVar[bool] = True

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")
    kind: str
    enabled: bool = True
    trigger: Literal["on_arrival", "on_schedule"] = "on_schedule"
    schedule: Schedule | None = None
    notify: Notify | None = None
    # When the feed must have arrived, and the other alarms (producers/alarms.py); None: the defaults.
    expect: Expect | None = None
    # An import pulls its files from this SFTP server (producers/sftp_pull.py); an export pushes its
    # file there instead of the export folder (workers/files/sftp_destination.py).
    sftp: SftpConfig | None = None

    @classmethod
    def kinds(cls) -> tuple[str, ...]:
        """The kind names this class is the config of: its ``kind`` field's Literal values."""
        annotation = cls.model_fields["kind"].annotation
        if typing.get_origin(annotation) is not Literal:
            return ()
        return tuple(str(k) for k in typing.get_args(annotation))


class Connection(KindConfig):
    """An import kind's connection: files matched by ``path`` in the drop dir."""

    #: The path pattern of a connection that names none.
    DEFAULT_PATH: ClassVar[str] = ""

    path: str = ""
    trigger: Literal["on_arrival", "on_schedule"] = "on_arrival"
    encoding: str = "utf-8"
    delimiter: str = ","
    # Days a processed file is kept after its run; default 0 for users (personal data goes at
    # once) and FEEDSYNC_CONTENT_RETENTION_DAYS for content feeds.
    # Bounded: a huge value overflowed the retention sweep for every connection; ten years is
    # longer than any feed needs keeping.
    retention_days: int | None = Field(default=None, ge=0, le=MAX_RETENTION_DAYS)
    # Intake: how long a file must stay unchanged after its last write before it is taken
    # (default FEEDSYNC_SETTLE_MS), and whether it waits for a marker file ``<name>.done`` that
    # the HR system writes once the file is complete.
    settle_seconds: float | None = Field(default=None, ge=0, le=MAX_SETTLE_SECONDS)
    done_marker: bool = False

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, v: str) -> str:
        return check_encoding(v)

    @field_validator("delimiter")
    @classmethod
    def _one_char(cls, v: str) -> str:
        return check_delimiter(v)

    @model_validator(mode="after")
    def _path(self) -> Connection:
        if not self.path:
            self.path = self.DEFAULT_PATH
        problem = path_pattern_problem(self.path)
        if problem:
            raise KeyProblem(f"path {self.path!r} {problem}", "path")
        return self


class PeopleConnection(Connection):
    """A feed of people (users, hierarchy): a full feed deactivates who is missing, within limits."""

    OWN_KEYS: ClassVar[tuple[str, ...]] = (
        "full_feed",
        "max_deactivate",
        "max_change",
        "max_create",
        "max_reject_share",
        "on_threshold",
        "empty_erases",
    )

    full_feed: bool = False
    max_deactivate: int | str | None = None
    max_change: int | str | None = None
    # New people (a count, or a share of the connection's active people): a feed of strangers waits.
    max_create: int | str | None = None
    # Rejected rows over rows read ("5%"): a feed mostly refused waits instead of loading its rest.
    max_reject_share: int | str | None = None
    # A plan over a threshold: "hold" waits whole for approval; "skip_deactivations" applies the
    # creates and updates at once and holds only the deactivations (if they alone exceed it).
    on_threshold: Literal["hold", "skip_deactivations"] = "hold"
    empty_erases: bool = False

    @field_validator("max_deactivate", "max_change", "max_create")
    @classmethod
    def _threshold(cls, v: int | str | None) -> int | str | None:
        if v is not None:
            Threshold.parse(v)
        return v

    @field_validator("max_reject_share")
    @classmethod
    def _share(cls, v: int | str | None) -> int | str | None:
        if v is not None and (not isinstance(v, str) or not _is_share(v)):
            raise ValueError(f"{v!r} is not a share: write a percentage of the rows read, e.g. '5%'")
        return v

    @property
    def deactivates_by_state(self) -> bool:
        """The feed says who is gone in a column of its own (a mapped ``state``; users only)."""
        return False

    @property
    def deactivate_limit(self) -> int | str | None:
        """max_deactivate as it applies: a full feed, or a feed that says who is gone (a mapped
        state), without one gets DEFAULT_MAX_DEACTIVATE."""
        if self.max_deactivate is None and (self.full_feed or self.deactivates_by_state):
            return DEFAULT_MAX_DEACTIVATE
        return self.max_deactivate

    def growth_limits(self) -> tuple[Threshold | None, Threshold | None]:
        """max_create and max_reject_share, parsed (None: not set)."""
        return (
            Threshold.parse(self.max_create) if self.max_create is not None else None,
            Threshold.parse(self.max_reject_share) if self.max_reject_share is not None else None,
        )

    def thresholds(self) -> tuple[Threshold | None, Threshold | None]:
        limit = self.deactivate_limit
        return (
            Threshold.parse(limit) if limit is not None else None,
            Threshold.parse(self.max_change) if self.max_change is not None else None,
        )
