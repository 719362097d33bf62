"""What every kind's connection config shares: key-aware problems (for the line number), safety
thresholds, schedules, warnings, a bundle file's options, and the checks on names and paths."""

from __future__ import annotations

import codecs
import re
from datetime import UTC, datetime
from typing import Literal

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
    every_days: int | None = Field(default=None, ge=1)
    every_hours: int | None = Field(default=None, ge=1)
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
