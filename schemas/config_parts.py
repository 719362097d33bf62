"""What every kind's connection config shares: key-aware problems (for the line number), safety
thresholds, schedules, warnings, a bundle file's options, and the checks on names and paths."""

from __future__ import annotations

import codecs
import re
from datetime import UTC, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ATTRIBUTE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
#: Attributes one mapping may name: each is a column of the file's staging table, and PostgreSQL
#: allows 1,600 columns in a table.
MAX_MAPPED_ATTRIBUTES = 1000
_THRESHOLD = re.compile(r"^\d+(\.\d+)?%$")
#: max_deactivate of a full feed that names none: a truncated export must not deactivate people
#: in bulk with the default settings.
DEFAULT_MAX_DEACTIVATE = "10%"


class KeyProblem(ValueError):
    """A validation problem that knows which key of the connection it is about, for the line number."""

    def __init__(self, message: str, *loc: str) -> None:
        super().__init__(message)
        self.loc = list(loc)


class Threshold(BaseModel):
    """A safety limit: a whole number of people, or a share of the connection's people."""

    model_config = ConfigDict(frozen=True)
    count: int | None = None
    percent: float | None = None

    @classmethod
    def parse(cls, value: int | str) -> Threshold:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return cls(count=value)
        if isinstance(value, str) and _THRESHOLD.match(value.strip()):
            return cls(percent=float(value.strip()[:-1]))
        raise ValueError(f"{value!r} is not a threshold: write a whole number (50) or a percentage ('10%')")

    def exceeded(self, changed: int, population: int) -> bool:
        if self.count is not None:
            return changed > self.count
        assert self.percent is not None
        return population > 0 and changed * 100.0 / population > self.percent


class Schedule(BaseModel):
    """Runs every ``every_days`` days or ``every_hours`` hours from ``start`` (UTC), like the products
    our users know; its runs take ``access`` as `feedsync sync --access` does."""

    model_config = ConfigDict(extra="forbid", strict=True)
    start: datetime
    # At most ten years: a longer period is a typo, and would not fit the database's integer.
    every_days: int | None = Field(default=None, ge=1, le=3650)
    every_hours: int | None = Field(default=None, ge=1, le=87600)
    access: Literal["online", "exclusive"] = "online"
    enabled: bool = True

    @model_validator(mode="after")
    def _one_period(self) -> Schedule:
        if (self.every_days is None) == (self.every_hours is None):
            raise KeyProblem(
                "a schedule needs one of every_days or every_hours (e.g. every_hours = 3, or 12 for twice daily)",
                "schedule",
                "every_days",
            )
        return self

    @property
    def period_hours(self) -> int:
        return self.every_hours if self.every_hours is not None else (self.every_days or 1) * 24

    @field_validator("start", mode="before")
    @classmethod
    def _utc(cls, v: object) -> object:
        if isinstance(v, str):
            try:
                v = datetime.fromisoformat(v)
            except ValueError:
                raise KeyProblem(
                    f"start {v!r} is not an ISO date-time; write e.g. 2026-11-01T02:00:00Z", "schedule", "start"
                ) from None
        if isinstance(v, datetime) and v.tzinfo is None:
            v = v.replace(tzinfo=UTC)  # the schedule is in UTC unless it says otherwise
        return v


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_NAMES = {**{d: i for i, d in enumerate(WEEKDAYS)}, "tues": 1, "thur": 3, "thurs": 3} | {
    name: i for i, name in enumerate(("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"))
}
_BY = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_EVERY = re.compile(r"^(\d+)\s*(m|h|d)$")
_EVERY_UNITS = {"m": 1, "h": 60, "d": 1440}


class Expect(BaseModel):
    """When a connection's feed must have arrived and been imported, and what else raises an alarm
    (producers/alarms.py). ``by`` is a local time in ``tz`` on the ``days`` given, ``grace_min``
    later; or ``every``: a successful import at least this often. Failed runs in a row, held runs
    and dead letters raise alarms on every connection, with or without this table."""

    model_config = ConfigDict(extra="forbid", strict=True)
    by: str | None = None
    tz: str = "UTC"
    days: str | list[str] = "mon-sun"
    grace_min: int = Field(default=0, ge=0, le=1440)
    every: str | None = None
    max_row_drift: str | None = None
    #: Successful runs the drift is measured against (their median); no drift alarm before there are this many.
    drift_runs: int = Field(default=14, ge=3, le=1000)
    max_failed_runs: int = Field(default=3, ge=0, le=1000)  # 0: no alarm for failed runs
    held: bool = True
    dead_letters: bool = True

    @field_validator("by")
    @classmethod
    def _clock_time(cls, v: str | None) -> str | None:
        if v is not None and not _BY.match(v.strip()):
            raise ValueError(f"by {v!r} is not a time of day: write HH:MM on a 24-hour clock, e.g. '07:30'")
        return None if v is None else v.strip()

    @field_validator("tz")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}: use an IANA name such as 'Europe/Zurich' or 'UTC'") from None
        return v

    @field_validator("days")
    @classmethod
    def _days(cls, v: str | list[str]) -> str | list[str]:
        parse_days(v)
        return v

    @field_validator("every")
    @classmethod
    def _every(cls, v: str | None) -> str | None:
        if v is not None:
            m = _EVERY.match(v.strip())
            if not m or int(m.group(1)) == 0:
                raise ValueError(f"every {v!r} is not a period: write a number and m, h or d, e.g. '24h' or '90m'")
        return v

    @field_validator("max_row_drift")
    @classmethod
    def _drift(cls, v: str | None) -> str | None:
        if v is not None and not _THRESHOLD.match(v.strip()):
            raise ValueError(f"max_row_drift {v!r} is not a share: write a percentage, e.g. '20%'")
        return v

    @model_validator(mode="after")
    def _one_deadline(self) -> Expect:
        if self.by is not None and self.every is not None:
            raise KeyProblem(
                "expect takes by (a time of day, for daily feeds) or every (for continuous feeds), not both",
                "expect",
                "every",
            )
        return self

    @property
    def by_time(self) -> time | None:
        return None if self.by is None else time(int(self.by[:2]), int(self.by[3:]))

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    @property
    def weekdays(self) -> frozenset[int]:
        """Monday is 0, as ``date.weekday()`` counts."""
        return parse_days(self.days)

    @property
    def period(self) -> timedelta | None:
        if self.every is None:
            return None
        m = _EVERY.match(self.every.strip())
        assert m is not None
        return timedelta(minutes=int(m.group(1)) * _EVERY_UNITS[m.group(2)])

    @property
    def grace(self) -> timedelta:
        return timedelta(minutes=self.grace_min)

    @property
    def drift_percent(self) -> float | None:
        return None if self.max_row_drift is None else float(self.max_row_drift.strip()[:-1])


def parse_days(v: str | list[str]) -> frozenset[int]:
    """``"mon-fri"``, ``"mon,wed,fri"``, ``"mon-wed,sat"`` or a list of such parts; a range may wrap
    the week (``"fri-mon"``)."""
    parts = v if isinstance(v, list) else v.split(",")
    days: set[int] = set()
    for part in parts:
        ends = [e.strip().lower() for e in str(part).split("-")]
        if len(ends) > 2 or any(e not in _DAY_NAMES for e in ends):
            raise ValueError(
                f"days {part!r} is not a day or a range of days: write e.g. 'mon-fri', 'mon,wed,fri' or 'sat-sun'"
            )
        first, last = _DAY_NAMES[ends[0]], _DAY_NAMES[ends[-1]]
        days.update((first + i) % 7 for i in range((last - first) % 7 + 1))
    if not days:
        raise ValueError("days names no day: write e.g. 'mon-fri'")
    return frozenset(days)


class FileOptions(BaseModel):
    """One file of a bundle: its name in the connection's folder, its reading options and mapping."""

    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = ""
    encoding: str | None = None
    delimiter: str | None = None
    mapping: dict[str, str]

    @field_validator("mapping")
    @classmethod
    def _nottoo_wide(cls, v: dict[str, str]) -> dict[str, str]:
        problem = too_wide(v)
        if problem:
            raise ValueError(problem)
        return v

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, v: str | None) -> str | None:
        return None if v is None else check_encoding(v)

    @field_validator("delimiter")
    @classmethod
    def _one_char(cls, v: str | None) -> str | None:
        return None if v is None else check_delimiter(v)


class Notify(BaseModel):
    """Where warnings go when a run has errors (SMTP server and credentials are settings)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    webhook: str | None = Field(default=None, pattern=r"^https?://\S+$")
    email: list[str] = Field(default_factory=list)

    @field_validator("email")
    @classmethod
    def _addresses(cls, v: list[str]) -> list[str]:
        for address in v:
            if not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", address):
                raise ValueError(f"{address!r} is not an e-mail address")
        return v


def check_mapping(v: dict[str, str]) -> dict[str, str]:
    """A mapping's attribute names and columns; a problem names the attribute, for its line."""
    problem = too_wide(v)
    if problem:  # reported on the line of the first attribute past the limit
        raise KeyProblem(problem, "mapping", list(v)[MAX_MAPPED_ATTRIBUTES])
    for attribute, column in v.items():
        if not ATTRIBUTE_NAME.match(attribute):
            raise KeyProblem(
                f"attribute name {attribute!r} must be lower case letters, digits and _ (e.g. 'cost_center')",
                "mapping",
                attribute,
            )
        if not isinstance(column, str) or not column.strip():
            raise KeyProblem(
                f"attribute {attribute!r} is mapped to nothing: name the feed column that holds it",
                "mapping",
                attribute,
            )
    return v


def too_wide(mapping: dict[str, str]) -> str | None:
    if len(mapping) <= MAX_MAPPED_ATTRIBUTES:
        return None
    return f"the mapping names {len(mapping)} attributes; at most {MAX_MAPPED_ATTRIBUTES} can be imported from one file"


def check_encoding(v: str) -> str:
    try:
        codecs.lookup(v)
    except LookupError:
        raise ValueError(f"unknown encoding {v!r}; use a Python codec name such as 'utf-8' or 'cp1252'") from None
    return v


def check_delimiter(v: str) -> str:
    if len(v) != 1 or v in {'"', "\n", "\r"}:
        raise ValueError("delimiter must be one character other than a quote or a line break, e.g. ',' or '\\t'")
    return v


def path_pattern_problem(path: str) -> str | None:
    """Why a path pattern can never match a file the watcher takes, or None. Files are matched by
    their path relative to the drop dir, as ``a/b/c.csv``: no leading ``/`` or ``./``, no empty,
    ``.`` or ``..`` folder, ``/`` between folders; dotfiles and dot-folders are never taken."""
    parts = path.split("/")
    if path.startswith("/"):
        return "is absolute: write it relative to the drop dir, e.g. 'import/user/internal/*.csv'"
    if ".." in parts:
        return "must stay inside the drop dir (no '..')"
    if "." in parts:
        return "can never match: file paths are compared without './'; write e.g. 'import/user/internal/*.csv'"
    if "" in parts:
        return "can never match: it has an empty folder name ('//' or a trailing '/')"
    if "\\" in path:
        return "can never match: folders are separated by '/', not '\\'"
    if any(p.startswith(".") for p in parts):
        return "can never match: files and folders whose name starts with '.' are never taken"
    return None
