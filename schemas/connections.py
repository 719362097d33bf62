"""Connection configuration: the TOML people review in git, validated before it is stored.

``load_connections_toml`` refuses a wrongly-typed file with the line at fault, because the person
fixing it works in the file, not in a pydantic location tuple.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from schemas.config_base import MAX_RETENTION_DAYS, MAX_SETTLE_SECONDS, Connection, KindConfig
from schemas.config_parts import KeyProblem, Notify, Schedule, Threshold
from schemas.exports import ExportConnection
from schemas.kinds import config_class, connection_from_json, known_kinds, owners, owners_phrase
from schemas.kinds.hierarchy import BUNDLE_CORE, BUNDLE_PARTS, HierarchyConnection
from schemas.kinds.users import DONT_IMPORT, USER_CORE_ATTRIBUTES, UsersConnection

__all__ = [
    "BUNDLE_CORE",
    "BUNDLE_PARTS",
    "DONE_SUFFIX",
    "DONT_IMPORT",
    "MAX_RETENTION_DAYS",
    "MAX_SETTLE_SECONDS",
    "USER_CORE_ATTRIBUTES",
    "ConfigError",
    "Connection",
    "EntryProblem",
    "ExportConnection",
    "HierarchyConnection",
    "KeyProblem",
    "KindConfig",
    "Notify",
    "Schedule",
    "Threshold",
    "UsersConnection",
    "connection_from_json",
    "load_connections_toml",
    "validate_entry",
]

#: The suffix of the marker file an HR system writes next to a finished feed (``done_marker``).
DONE_SUFFIX = ".done"


class ConfigError(ValueError):
    """A connections file that cannot be applied; ``str()`` is the whole message for the admin."""


@dataclass(frozen=True)
class _Problem:
    line: int
    text: str


def load_connections_toml(text: str, filename: str = "connections.toml") -> list[KindConfig]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{filename}: not valid TOML: {exc}") from None
    raw = data.get("connections")
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{filename}: no [[connections]] table found; declare each connection under [[connections]]")

    connections: list[KindConfig] = []
    problems: list[_Problem] = []
    for index, entry in enumerate(raw):
        config, found = validate_entry(entry)
        if config is not None:
            connections.append(config)
        for p in found:
            line = _locate(text, index, p.loc)
            where = ".".join(p.loc) if p.loc else "connection"
            problems.append(_Problem(line, f"{filename}:{line}: connections[{index}] {where}: {p.message}"))
    problems += _overlaps(text, filename, raw, connections)
    names = [c.name for c in connections]
    for name in {n for n in names if names.count(n) > 1}:
        problems.append(_Problem(0, f"{filename}: connection name {name!r} is declared more than once"))
    if problems:
        raise ConfigError("\n".join(p.text for p in sorted(problems, key=lambda p: p.line)))
    return connections


@dataclass(frozen=True)
class EntryProblem:
    """Why one [[connections]] entry is refused: the key it is about (``["mapping", "email"]``;
    empty for the whole connection) and the sentence."""

    loc: list[str]
    message: str


def validate_entry(entry: object) -> tuple[KindConfig | None, list[EntryProblem]]:
    """One [[connections]] entry as ``connections apply`` validates it (the console's setup pages
    call this too): its config, or the problems, each with the key it is about."""
    cls = config_class(entry.get("kind")) if isinstance(entry, dict) else None
    if cls is None or not isinstance(entry, dict):
        return None, [EntryProblem(["kind"], _no_kind(entry))]
    refused = _refused_keys(cls, entry)
    if refused:
        return None, [EntryProblem([key], why) for key, why in refused]
    try:
        return cls.model_validate(entry), []
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = [str(p) for p in err["loc"]]
            cause = (err.get("ctx") or {}).get("error")
            if isinstance(cause, KeyProblem):
                loc = cause.loc
            problems.append(EntryProblem(loc, err["msg"].removeprefix("Value error, ")))
        return None, problems


def _overlaps(text: str, filename: str, raw: list[Any], connections: list[KindConfig]) -> list[_Problem]:
    """Two connections of the file whose path patterns some file could match both, on both lines."""
    from schemas.pathpattern import overlap

    index = {e.get("name"): i for i, e in enumerate(raw) if isinstance(e, dict)}
    # An API connection takes no files from the drop dir, so its path overlaps nothing.
    found = [c for c in connections if isinstance(c, Connection) and getattr(c, "source", "files") == "files"]
    problems = []
    for n, a in enumerate(found):
        for b in found[n + 1 :]:
            if a.name != b.name and overlap(a.path, b.path):
                la, lb = _locate(text, index[a.name], ["path"]), _locate(text, index[b.name], ["path"])
                problems.append(
                    _Problem(
                        la,
                        f"{filename}:{la}: connection {a.name!r} path {a.path!r} overlaps line {lb}, connection "
                        f"{b.name!r} path {b.path!r}: a file could match both, and such a file is never taken; "
                        "narrow one of them (* stays inside one folder, ** is any depth)",
                    )
                )
    return problems


def _no_kind(entry: object) -> str:
    if not isinstance(entry, dict):
        return "each [[connections]] entry is a table of keys"
    if "kind" not in entry:
        return "Field required"
    return f"unknown kind {entry['kind']!r}; this version supports: {', '.join(known_kinds())}"


def _refused_keys(cls: type[KindConfig], entry: dict[str, Any]) -> list[tuple[str, str]]:
    """The keys of ``entry`` its kind does not take and says why: its own refusals, and the keys
    other kinds own (a key meant for another kind is a mistake, never ignored)."""
    refused = []
    for key in entry:
        if key in cls.model_fields:
            continue
        if key in cls.REFUSED:
            refused.append((key, cls.REFUSED[key]))
        elif taken_by := owners(key):
            refused.append(
                (
                    key,
                    f"{key} applies to {owners_phrase(taken_by)} only, not to kind {entry['kind']!r}; "
                    "remove it or correct the kind",
                )
            )
    return refused


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
    if len(loc) >= 2 and loc[0] in {"mapping", "schedule", "sftp", "expect", "api", "filters"}:
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
