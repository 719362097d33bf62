"""Connection configuration: the TOML people review in git, validated before it is stored.

``load_connections_toml`` refuses a wrongly-typed file with the line at fault, because the person
fixing it works in the file, not in a pydantic location tuple.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from schemas.config_parts import (
    ATTRIBUTE_NAME,
    DEFAULT_MAX_DEACTIVATE,
    MAX_MAPPED_ATTRIBUTES,
    FileOptions,
    KeyProblem,
    Notify,
    Schedule,
    Threshold,
    check_delimiter,
    check_encoding,
    path_pattern_problem,
    too_wide,
)
from schemas.exports import EXPORT_KINDS, ExportConnection
from schemas.xapi import DEFAULT_PATH as XAPI_PATH
from schemas.xapi import XapiConnection

__all__ = [
    "BUNDLE_CORE",
    "BUNDLE_PARTS",
    "DONE_SUFFIX",
    "DONT_IMPORT",
    "MAX_RETENTION_DAYS",
    "USER_CORE_ATTRIBUTES",
    "ConfigError",
    "Connection",
    "ExportConnection",
    "KeyProblem",
    "Notify",
    "Schedule",
    "Threshold",
    "connection_from_json",
    "import_connection_from_json",
    "load_connections_toml",
]

DONT_IMPORT = "DontImportFromSource"

#: Attributes with a column of their own in lms.users; any other mapped name is a profile attribute.
USER_CORE_ATTRIBUTES = ("email", "first_name", "last_name", "manager")

DEFAULT_PATHS = {
    "users": "import/user/internal/*.csv",
    "hmm": "import/hmm/*.csv",
    "getabstract": "import/getabstract/*.xlsx",
    "hierarchy": "import/hierarchy/*.csv",
    "xapi": XAPI_PATH,
}

IMPLEMENTED_KINDS = ("users", "hmm", "getabstract", "hierarchy", "xapi")

#: The parts of a hierarchy bundle in the order they are applied, with their default file names
#: and the attributes each file's mapping must name.
BUNDLE_PARTS = {"org": "org.csv", "pos": "pos.csv", "user": "user.csv"}
BUNDLE_REQUIRED = {"org": ("key", "name"), "pos": ("key", "name"), "user": ("key", "email")}
#: Attributes with a meaning of their own in each part; any other is kept in ``attributes``.
BUNDLE_CORE = {
    "org": ("key", "name", "parent"),
    "pos": ("key", "name", "parent"),
    "user": ("key", "email", "first_name", "last_name", "unit", "position", "manager"),
}
CONTENT_KINDS = ("hmm", "getabstract")

#: Keys only some kinds take. A connection of another kind that names one is refused on that key's
#: line, saying which kinds take it: a key meant for another kind is a mistake, never ignored.
KEY_OWNERS: dict[str, tuple[str, ...]] = {
    "files": ("hierarchy",),
    "parts": ("hierarchy",),
    "full_feed": ("users", "hierarchy"),
    "max_deactivate": ("users", "hierarchy"),
    "max_change": ("users", "hierarchy"),
    "empty_erases": ("users", "hierarchy"),
    "key": ("users",),
    "required": ("users",),
    "location": EXPORT_KINDS,
    "zip": EXPORT_KINDS,
    "status": EXPORT_KINDS,
    **dict.fromkeys(
        ("source_file", "filters", "xapi", "statement_column", "completion_verbs", "activity_map", "voiding_reverts"),
        ("xapi",),
    ),
}

MAX_RETENTION_DAYS = 3650
MAX_SETTLE_SECONDS = 3600
#: The suffix of the marker file an HR system writes next to a finished feed (``done_marker``).
DONE_SUFFIX = ".done"


class Connection(BaseModel):
    # Strict: TOML values are already typed, so "yes" for a boolean is a mistake to refuse, not coerce.
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")
    kind: str
    path: str = ""
    key: str = "email"
    enabled: bool = True
    trigger: Literal["on_arrival", "on_schedule"] = "on_arrival"
    # users: attribute -> feed column (email required). Content kinds: renames of the provider's
    # columns, only where an export differs (schemas/providers.py).
    mapping: dict[str, str] = Field(default_factory=dict)
    encoding: str = "utf-8"
    delimiter: str = ","
    full_feed: bool = False
    max_deactivate: int | str | None = None
    max_change: int | str | None = None
    empty_erases: bool = False
    required: list[str] = Field(default_factory=lambda: ["email"])
    schedule: Schedule | None = None
    # Content kinds: a learner the platform does not know is created from the feed instead of
    # being a row error.
    create_learners: bool = False
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
    # hierarchy: the bundle's files (org, pos, user), each with its own mapping, and which parts
    # are synced (["user"] syncs users only and leaves units and positions untouched).
    files: dict[str, FileOptions] = Field(default_factory=dict)
    parts: list[str] = Field(default_factory=lambda: list(BUNDLE_PARTS))
    notify: Notify | None = None

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, v: str) -> str:
        if v not in IMPLEMENTED_KINDS or v == "xapi":  # xapi connections are XapiConnection's
            known = ", ".join((*IMPLEMENTED_KINDS, *EXPORT_KINDS))
            raise ValueError(f"unknown kind {v!r}; this version supports: {known}")
        return v

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, v: str) -> str:
        return check_encoding(v)

    @field_validator("delimiter")
    @classmethod
    def _one_char(cls, v: str) -> str:
        return check_delimiter(v)

    @field_validator("max_deactivate", "max_change")
    @classmethod
    def _threshold(cls, v: int | str | None) -> int | str | None:
        if v is not None:
            Threshold.parse(v)
        return v

    @field_validator("mapping")
    @classmethod
    def _mapping(cls, v: dict[str, str]) -> dict[str, str]:
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

    @model_validator(mode="after")
    def _kind_rules(self) -> Connection:
        if not self.path:
            self.path = DEFAULT_PATHS[self.kind]
        problem = path_pattern_problem(self.path)
        if problem:
            raise KeyProblem(f"path {self.path!r} {problem}", "path")
        if self.kind in CONTENT_KINDS:
            return self._content_rules()
        if self.kind == "hierarchy":
            return self._bundle_rules()
        if self.create_learners:
            raise KeyProblem(
                "create_learners applies to content connections (hmm, getabstract) only", "create_learners"
            )
        if self.key != "email":
            raise KeyProblem(f"key {self.key!r} is not supported for kind 'users': use key = \"email\"", "key")
        if self.mapping.get("email", DONT_IMPORT) == DONT_IMPORT:
            raise KeyProblem(
                "mapping must name the feed column for 'email', the key users are matched on", "mapping", "email"
            )
        unmapped = [a for a in self.required if a not in self.imported_mapping]
        if unmapped:
            raise KeyProblem(
                f"required attribute {unmapped[0]!r} is not in the mapping: map it to a feed column", "required"
            )
        return self

    def _bundle_rules(self) -> Connection:
        if self.mapping:
            raise KeyProblem(
                "a hierarchy connection maps each file under [connections.files.<part>.mapping]", "mapping"
            )
        unknown = [p for p in self.parts if p not in BUNDLE_PARTS]
        if unknown or not self.parts:
            raise KeyProblem(f'parts must be some of {list(BUNDLE_PARTS)} (e.g. ["user"] to sync users only)', "parts")
        for part in self.parts:
            options = self.files.get(part)
            if options is None:
                raise KeyProblem(f"part {part!r} needs [connections.files.{part}.mapping]", "files", part)
            if not options.name:
                options.name = BUNDLE_PARTS[part]
            for attribute in BUNDLE_REQUIRED[part]:
                if options.mapping.get(attribute, DONT_IMPORT) == DONT_IMPORT:
                    raise KeyProblem(
                        f"the {part} file's mapping must name the column for {attribute!r}", "files", part, attribute
                    )
            for attribute in options.mapping:
                if not ATTRIBUTE_NAME.match(attribute):
                    raise KeyProblem(f"attribute name {attribute!r} must be lower case letters, digits and _", "files")
        extra = [p for p in self.files if p not in self.parts]
        if extra:
            raise KeyProblem(f"files.{extra[0]} is declared but {extra[0]!r} is not in parts", "files", extra[0])
        return self

    def _content_rules(self) -> Connection:
        from schemas.providers import ATTRIBUTES

        for attribute in self.mapping:
            if attribute not in ATTRIBUTES[self.kind]:
                known = ", ".join(sorted(ATTRIBUTES[self.kind]))
                raise KeyProblem(
                    f"{attribute!r} is not a column of {self.kind} feeds; rename one of: {known}", "mapping", attribute
                )
        if DONT_IMPORT in self.mapping.values():
            raise KeyProblem(f"{DONT_IMPORT} applies to users connections only", "mapping")
        return self

    @property
    def imported_mapping(self) -> dict[str, str]:
        """attribute -> feed column, leaving out attributes the import must never write."""
        return {a: c for a, c in self.mapping.items() if c != DONT_IMPORT}

    @property
    def profile_attributes(self) -> list[str]:
        return [a for a in self.imported_mapping if a not in USER_CORE_ATTRIBUTES]

    @property
    def deactivate_limit(self) -> int | str | None:
        """max_deactivate as it applies: a full feed without one gets DEFAULT_MAX_DEACTIVATE."""
        if self.max_deactivate is None and self.full_feed:
            return DEFAULT_MAX_DEACTIVATE
        return self.max_deactivate

    def thresholds(self) -> tuple[Threshold | None, Threshold | None]:
        limit = self.deactivate_limit
        return (
            Threshold.parse(limit) if limit is not None else None,
            Threshold.parse(self.max_change) if self.max_change is not None else None,
        )


class ConfigError(ValueError):
    """A connections file that cannot be applied; ``str()`` is the whole message for the admin."""


@dataclass(frozen=True)
class _Problem:
    line: int
    text: str


#: Import kinds whose config is a class of its own (the rest are ``Connection``).
_IMPORT_MODELS: dict[object, type[XapiConnection]] = {"xapi": XapiConnection}


def load_connections_toml(
    text: str, filename: str = "connections.toml"
) -> list[Connection | ExportConnection | XapiConnection]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{filename}: not valid TOML: {exc}") from None
    raw = data.get("connections")
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{filename}: no [[connections]] table found; declare each connection under [[connections]]")

    connections: list[Connection | ExportConnection | XapiConnection] = []
    problems: list[_Problem] = []
    for index, entry in enumerate(raw):
        exporting = isinstance(entry, dict) and entry.get("kind") in EXPORT_KINDS
        foreign = _foreign_keys(entry)
        for key, owners in foreign:
            line = _locate(text, index, [key])
            problems.append(
                _Problem(
                    line,
                    f"{filename}:{line}: connections[{index}] {key}: {key} applies to kind {' or '.join(owners)} "
                    f"only, not to kind {entry['kind']!r}; remove it or correct the kind",
                )
            )
        if foreign:
            continue
        try:
            model = ExportConnection if exporting else _IMPORT_MODELS.get(entry.get("kind"), Connection)
            connections.append(model.model_validate(entry))
        except ValidationError as exc:
            for err in exc.errors():
                loc = [str(p) for p in err["loc"]]
                cause = (err.get("ctx") or {}).get("error")
                if isinstance(cause, KeyProblem):
                    loc = cause.loc
                line = _locate(text, index, loc)
                where = ".".join(loc) if loc else "connection"
                msg = err["msg"].removeprefix("Value error, ")
                problems.append(_Problem(line, f"{filename}:{line}: connections[{index}] {where}: {msg}"))
    names = [c.name for c in connections]
    for name in {n for n in names if names.count(n) > 1}:
        problems.append(_Problem(0, f"{filename}: connection name {name!r} is declared more than once"))
    if problems:
        raise ConfigError("\n".join(p.text for p in sorted(problems, key=lambda p: p.line)))
    return connections


def _foreign_keys(entry: object) -> list[tuple[str, tuple[str, ...]]]:
    """The keys of ``entry`` that belong to other kinds than its own (a known kind's only)."""
    if not isinstance(entry, dict) or entry.get("kind") not in (*IMPLEMENTED_KINDS, *EXPORT_KINDS):
        return []
    return [(k, KEY_OWNERS[k]) for k in entry if k in KEY_OWNERS and entry["kind"] not in KEY_OWNERS[k]]


def _locate(text: str, index: int, loc: list[str]) -> int:
    """Best line for a validation error: the key's own line inside the index-th [[connections]]."""
    lines = text.splitlines()
    starts = [i for i, ln in enumerate(lines) if re.match(r"^\s*\[\[\s*connections\s*\]\]", ln)]
    if index >= len(starts):
        return 1
    begin = starts[index]
    end = starts[index + 1] if index + 1 < len(starts) else len(lines)
    section = None
    key = loc[0] if loc else None
    if len(loc) >= 2 and loc[0] in {"mapping", "schedule"}:
        section, key = loc[0], loc[1]
    current_section = None
    for i in range(begin, end):
        header = re.match(r"^\s*\[\s*connections\.(\w+)\s*\]", lines[i])
        if header:
            current_section = header.group(1)
            continue
        if key and current_section == section and re.match(rf'^\s*"?{re.escape(key)}"?\s*=', lines[i]):
            return i + 1
    # A key given as a table of its own ([connections.files.org] ...): its first header.
    table = section or key
    if table:
        for i in range(begin, end):
            if re.match(rf"^\s*\[\s*connections\.{re.escape(table)}\s*[\].]", lines[i]):
                return i + 1
    return begin + 1


def connection_from_json(config: dict[str, Any]) -> Connection:
    return Connection.model_validate(config)


def import_connection_from_json(config: dict[str, Any]) -> Connection | XapiConnection:
    """A stored import connection of any kind, for what every import kind has (path, trigger, encoding)."""
    return _IMPORT_MODELS.get(config.get("kind"), Connection).model_validate(config)


def any_connection_from_json(config: dict[str, Any]) -> Connection | ExportConnection | XapiConnection:
    """A stored connection of any kind, for what every kind has (name, kind, notify, schedule)."""
    from schemas.exports import EXPORT_KINDS, ExportConnection

    if config.get("kind") in EXPORT_KINDS:
        return ExportConnection.model_validate(config)
    return import_connection_from_json(config)
