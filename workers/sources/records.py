"""From an API record (nested JSON) to the cells of one CSV row."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
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


def getter(field: str) -> Callable[[Any], str]:
    """``cell(lookup(record, field), field)`` with the path split once: a fetch calls it for every
    field of every record. Plain JSON objects reached by exact names and str or null values are
    answered here; anything else (a flat dotted key, another case, a bool, a number, a list...) by
    lookup and cell, so the answer is the same for every shape."""
    parts = tuple(field.split("."))

    def generic(record: Any) -> str:
        return cell(lookup(record, field), field)

    if len(parts) == 1:
        return _flat(field, generic)
    return _dotted(field, parts, generic)


def _flat(field: str, generic: Callable[[Any], str]) -> Callable[[Any], str]:
    state = field in STATE_FIELDS

    def get(record: Any) -> str:
        if type(record) is dict:
            value = record.get(field, generic)  # generic: a marker no JSON value can be
            if type(value) is str:
                return value
            if value is None:
                return ""
            if state and type(value) is bool:
                return ACTIVE if value else INACTIVE
        return generic(record)

    return get


def _dotted(field: str, parts: tuple[str, ...], generic: Callable[[Any], str]) -> Callable[[Any], str]:
    def get(record: Any) -> str:
        if type(record) is not dict or field in record:
            return generic(record)
        value: Any = record
        for part in parts:
            if type(value) is not dict or part not in value:
                return generic(record)
            value = value[part]
        if type(value) is str:
            return value
        return "" if value is None else generic(record)

    return get


def converter(fields: tuple[str, ...]) -> Callable[[Any], list[str]]:
    """A record's row of cells, one per field: the getters built once, for every page of a fetch."""
    getters = tuple(getter(f) for f in fields)
    return lambda record: [get(record) for get in getters]


def rows(records: list[Any], fields: tuple[str, ...]) -> Iterator[list[str]]:
    return map(converter(fields), records)
