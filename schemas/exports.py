"""Export connections: learner transcripts, skill achievements and xAPI activity going back out.

```toml
[[connections]]
name = "transcripts"
kind = "transcript_export"     # or skills_export, xapi_export
location = "transcripts"       # folder under FEEDSYNC_EXPORT_DIR/export/
zip = false                    # true: the CSV inside a .zip of the same name
status = ["completed", "in_progress", "not_started", "unenrolled"]   # transcript rows of these statuses
escape_formulas = true         # false: cells starting with = + - @, tab or CR written as they are
timezone = "UTC"               # the account's time zone (IANA name): in the date headers and the values
line_ends = "lf"               # "crlf": every row ends in CR LF, as ALM's own reports do
unique_ids = true              # false: no `User Unique ID` / `LO Unique ID` columns (ALM: "only if enabled")
```

An export changes nothing in ``lms``: it needs no approval and takes no files from the drop dir.
"""

from __future__ import annotations

import re
from typing import ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import field_validator, model_validator

from schemas.config_base import KindConfig
from schemas.config_parts import KeyProblem
from schemas.sftp import PULL_ONLY, SftpConfig
from schemas.workday import WorkdayConfig

#: Each kind's ``FOLDER`` (workers/connectors/<kind>.py), which the schemas may not import: a test
#: holds the two equal, and the kinds of ``ExportConnection.kind`` to the registered export kinds.
DEFAULT_LOCATION = {"transcript_export": "transcripts", "skills_export": "skills", "xapi_export": "xapi"}

TranscriptStatus = Literal["completed", "in_progress", "not_started", "unenrolled"]
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class ExportConnection(KindConfig):
    """The config of the three export kinds (one class: they take the same keys)."""

    OWN_KEYS: ClassVar[tuple[str, ...]] = (
        "location",
        "zip",
        "status",
        "escape_formulas",
        "timezone",
        "line_ends",
        "unique_ids",
        "workday",
    )
    TAKES_FILES: ClassVar[bool] = False

    kind: Literal["transcript_export", "skills_export", "xapi_export"]
    # An export reads no files: the empty pattern matches nothing in the drop dir.
    path: Literal[""] = ""
    trigger: Literal["on_schedule"] = "on_schedule"
    location: str = ""
    zip: bool = False
    # Transcript rows of these statuses (ALM's filter); all four when not given.
    status: list[TranscriptStatus] | None = None
    # Names and titles come from feeds: a cell a spreadsheet would run as a formula gets a leading
    # ' (as the error CSV's cells do). Off only for a consumer that must have the values as stored.
    escape_formulas: bool = True
    # skills_export: the window's achievements also sent to the workers' skills in this Workday tenant.
    workday: WorkdayConfig | None = None
    # The account's time zone, as ALM writes it into the date headers ("Completion Date (UTC
    # TimeZone)") and the times in the values. An IANA name: "UTC", "Asia/Calcutta", "Europe/Berlin".
    timezone: str = "UTC"
    # How rows end: "lf" (PostgreSQL's CSV), or "crlf" as ALM's own reports (its xAPI report) end them.
    line_ends: Literal["lf", "crlf"] = "lf"
    # ALM writes `User Unique ID` and `LO Unique ID` only where the account enables them.
    unique_ids: bool = True

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise KeyProblem(
                f'timezone {v!r} is not a time zone: give an IANA name such as "UTC", "Asia/Calcutta" '
                'or "Europe/Berlin"',
                "timezone",
            ) from None
        return v

    @field_validator("location")
    @classmethod
    def _inside(cls, v: str) -> str:
        if v and not all(_SEGMENT.match(part) for part in v.split("/")):
            raise KeyProblem(
                f"location {v!r} must be a folder under the export dir: letters, digits, '_', '-', '.' and '/' "
                "between folders (e.g. 'transcripts' or 'hr/transcripts')",
                "location",
            )
        return v

    @model_validator(mode="after")
    def _defaults(self) -> ExportConnection:
        if not self.location:
            self.location = DEFAULT_LOCATION[self.kind]
        defaults = SftpConfig.model_fields
        pulled = [k for k in PULL_ONLY if self.sftp is not None and getattr(self.sftp, k) != defaults[k].default]
        if pulled:
            raise KeyProblem(f"{pulled[0]} applies to imports only: an export pushes its file", "sftp", pulled[0])
        if self.workday is not None and self.kind != "skills_export":
            raise KeyProblem(
                "[connections.workday] on an export sends skills: it applies to skills_export only", "workday"
            )
        if self.kind != "transcript_export":
            if self.status is not None:
                raise KeyProblem("status filters transcript rows: it applies to kind transcript_export only", "status")
            return self
        if self.status is None:
            self.status = ["completed", "in_progress", "not_started", "unenrolled"]
        if not self.status:
            raise KeyProblem('status must name at least one of "completed", "in_progress", "not_started"', "status")
        return self
