"""From an API record (nested JSON) to the cells of one CSV row."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

#: Fields whose true/false says whether the person is active: written as the state values the users
#: kind knows by default (``state = "accountEnabled"`` in the mapping needs no state_values).
STATE_FIELDS = frozenset({"accountEnabled", "IsActive"})
ACTIVE, INACTIVE = "ACTIVE", "INACTIVE"


@dataclass(frozen=True)
class Page:
    records: list[Any]
    #: The API has a page after this one.
    more: bool


def lookup(record: Any, path: str) -> Any:
    """The value at a dotted path (``manager.mail``, ``ReportsTo.Email``); None where a part is
    missing or null. Names are matched exactly, then ignoring case (both APIs ignore case)."""
    if isinstance(record, Mapping) and path in record:  # flat, as Bulk API CSV columns are named
        return record[path]
    value = record
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        if part in value:
            value = value[part]
            continue
        lowered = part.lower()
        value = next((v for k, v in value.items() if isinstance(k, str) and k.lower() == lowered), None)
    return value


def cell(value: Any, field: str) -> str:
    if value is None:
        return ""
    if field.rsplit(".", 1)[-1] in STATE_FIELDS and isinstance(value, bool):
        return ACTIVE if value else INACTIVE
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in value):
        return ";".join(str(v) for v in value)  # businessPhones, otherMails
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def rows(records: list[Any], fields: tuple[str, ...]) -> Iterator[list[str]]:
    for record in records:
        yield [cell(lookup(record, f), f) for f in fields]
