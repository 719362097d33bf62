"""The ``xapi`` import kind's connection: CSV rows become xAPI 1.0.3 statements.

```toml
[[connections]]
name = "lrs-import"
kind = "xapi"
path = "import/xapi/*.csv"             # default
source_file = "activity.csv"           # optional: only this exact name is taken

[[connections.filters]]                # a row is imported only if every filter holds
name = "completions only"
column = "Verb"
op = "eq"                              # eq ne contains gt gte lt lte in empty not_empty
value = "http://adlnet.gov/expapi/verbs/completed"

[connections.xapi]                     # JSON path = CSV column with a type, or a constant
"actor.mbox" = { column = "Email" }
"verb.id" = { column = "Verb" }
"object.id" = { column = "Activity" }
"result.score.scaled" = { column = "Score", type = "number" }
"verb.display.en-US" = { value = "completed" }
# statement_column = "Statement JSON"  # instead: each row carries a whole statement
```
"""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.config_base import Connection
from schemas.config_parts import KeyProblem

__all__ = ["ADL_COMPLETED", "ADL_PASSED", "XapiConnection", "XapiField", "XapiFilter"]

ADL_COMPLETED = "http://adlnet.gov/expapi/verbs/completed"
ADL_PASSED = "http://adlnet.gov/expapi/verbs/passed"

#: Top-level statement properties a mapping may fill (stored and authority are the LRS's).
MAPPABLE = ("id", "actor", "verb", "object", "result", "context", "timestamp", "version")
#: The three paths ALM's mapping starts with; a mapping must fill an actor, verb.id and object.id.
REQUIRED_PATHS = ("verb.id", "object.id")
_SEGMENT = re.compile(r"^[A-Za-z0-9_:/-]+$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")

FilterOp = Literal["eq", "ne", "contains", "gt", "gte", "lt", "lte", "in", "empty", "not_empty"]
Scalar = str | int | float | bool


class XapiField(BaseModel):
    """One JSON path's source: a CSV column read as ``type``, or a constant ``value``."""

    model_config = ConfigDict(extra="forbid", strict=True)
    column: str | None = None
    value: Scalar | None = None
    type: Literal["string", "number", "boolean", "date"] = "string"

    @model_validator(mode="after")
    def _one_source(self) -> XapiField:
        if (self.column is None) == (self.value is None):
            raise ValueError('give either column = "CSV column" or value = a constant, not both or neither')
        if self.column is not None and not self.column.strip():
            raise ValueError("column is empty: name the CSV column that holds this path's value")
        if self.value is not None and self.type != "string":
            raise ValueError("a constant is written as given (TOML is typed): leave out type")
        return self


class XapiFilter(BaseModel):
    """A row is imported only if every filter holds; a row a filter drops is counted, not an error."""

    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = ""
    column: str
    op: FilterOp
    value: Scalar | list[Scalar] | None = None

    @model_validator(mode="after")
    def _value_fits(self) -> XapiFilter:
        if self.op in ("empty", "not_empty"):
            if self.value is not None:
                raise ValueError(f"op {self.op!r} takes no value: remove it")
        elif self.op == "in":
            if not isinstance(self.value, list) or not self.value:
                raise ValueError('op "in" needs a list of values, e.g. value = ["a", "b"]')
        elif self.value is None or isinstance(self.value, list):
            raise ValueError(f"op {self.op!r} needs one value")
        return self


class XapiConnection(Connection):
    OWN_KEYS: ClassVar[tuple[str, ...]] = (
        "source_file",
        "filters",
        "xapi",
        "statement_column",
        "completion_verbs",
        "activity_map",
        "voiding_reverts",
    )
    DEFAULT_PATH: ClassVar[str] = "import/xapi/*.csv"

    kind: Literal["xapi"]
    # Only a file of exactly this name is taken (ALM's "Source File Name"); others are refused.
    source_file: str | None = None
    filters: list[XapiFilter] = Field(default_factory=list)
    # JSON path -> its source; or statement_column: the column that holds each row's whole statement.
    xapi: dict[str, XapiField] = Field(default_factory=dict)
    statement_column: str | None = None
    # Statements with these verbs on an activity that is a course write a completion.
    completion_verbs: list[str] = Field(default_factory=lambda: [ADL_COMPLETED, ADL_PASSED])
    # Activity IRI -> "provider:external_id" of a course, for activities whose IRI is not the course's launch URL.
    activity_map: dict[str, str] = Field(default_factory=dict)
    # A voided completion takes the completion back (ALM keeps it: false by default).
    voiding_reverts: bool = False

    @field_validator("source_file")
    @classmethod
    def _plain_name(cls, v: str | None) -> str | None:
        if v is not None and (not v.strip() or "/" in v or "\\" in v):
            raise KeyProblem("source_file is a file name without folders, e.g. 'activity.csv'", "source_file")
        return v

    @field_validator("xapi")
    @classmethod
    def _paths(cls, v: dict[str, XapiField]) -> dict[str, XapiField]:
        for path in v:
            segments = path.split(".")
            if segments[0] not in MAPPABLE or not all(_SEGMENT.match(s) for s in segments):
                raise KeyProblem(
                    f"{path!r} is not a statement path: start with one of {', '.join(MAPPABLE)} and join keys with "
                    "'.' (e.g. 'result.score.scaled')",
                    "xapi",
                    path,
                )
            if segments[0] in ("id", "timestamp", "version") and len(segments) > 1:
                raise KeyProblem(f"{segments[0]!r} is a single value: map it as {segments[0]!r}", "xapi", path)
        for path in v:
            inner = [p for p in v if p.startswith(path + ".")]
            if inner:
                raise KeyProblem(f"{path!r} and {inner[0]!r} both set the same property: keep one", "xapi", path)
        return v

    @field_validator("completion_verbs")
    @classmethod
    def _iris(cls, v: list[str]) -> list[str]:
        for verb in v:
            if not _SCHEME.match(verb):
                raise KeyProblem(f"completion verb {verb!r} is not an IRI (e.g. {ADL_COMPLETED})", "completion_verbs")
        return v

    @field_validator("activity_map")
    @classmethod
    def _courses(cls, v: dict[str, str]) -> dict[str, str]:
        for iri, course in v.items():
            provider, _, external_id = course.partition(":")
            if not provider or not external_id:
                raise KeyProblem(
                    f"activity {iri!r} maps to {course!r}: write the course as 'provider:external_id' "
                    "(e.g. 'hmm:A123')",
                    "activity_map",
                    iri,
                )
        return v

    @model_validator(mode="after")
    def _source(self) -> XapiConnection:
        if self.statement_column is not None:
            if not self.statement_column.strip():
                raise KeyProblem(
                    "statement_column is empty: name the column holding each statement", "statement_column"
                )
            if self.xapi:
                raise KeyProblem(
                    "statement_column takes each whole statement from one column: remove [connections.xapi] or "
                    "statement_column",
                    "statement_column",
                )
            return self
        missing = [p for p in REQUIRED_PATHS if p not in self.xapi]
        if not any(p.startswith("actor.") for p in self.xapi):
            missing.insert(0, "actor.mbox")
        if missing:
            raise KeyProblem(
                f"[connections.xapi] must map {missing[0]!r} (a statement needs an actor, verb.id and object.id), "
                "or set statement_column",
                "xapi",
            )
        return self

    @property
    def columns(self) -> list[str]:
        """Every CSV column the connection reads, in a fixed order: the file's header must have them all."""
        wanted = [self.statement_column] if self.statement_column else []
        wanted += [f.column for f in self.xapi.values() if f.column is not None]
        wanted += [f.column for f in self.filters]
        return list(dict.fromkeys(wanted))
