"""``feedsync api check``: a token, the first page, and what the mapping makes of it, written nowhere.

Values are masked past their first characters: the admin sees that a field is filled and what it
starts with (an address, a state), never a whole value on a screen or in a terminal's scrollback.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from schemas.filters import FilterConfig
from schemas.kinds.hierarchy import HierarchyConnection
from schemas.kinds.users import DONT_IMPORT, USER_CORE_ATTRIBUTES, UsersConnection
from schemas.settings import Settings
from workers.errors import TerminalError
from workers.http import FetchError
from workers.sources.pull import FetchSpec, pull
from workers.sources.records import cell, lookup

#: Records of the first page shown through the mapping.
SHOWN = 5
#: Characters of a value shown before the mask.
KEPT = 2
#: Vendor bookkeeping in a record, not a field anyone maps (Graph's ``@odata.*``, Salesforce's ``attributes``).
_BOOKKEEPING = ("@", "attributes")


def spec_of(name: str, config: object) -> FetchSpec:
    """What to fetch for a connection's config; a config without an API source is refused."""
    if isinstance(config, UsersConnection):
        source, mapping = config.source, config.mapping
        if (source == "workday" or source == "workday_raas") and config.workday is not None:
            return FetchSpec.from_mapping(name, source, config.workday, mapping)
        if (source == "msgraph" or source == "salesforce") and config.api is not None:
            return FetchSpec.from_mapping(name, source, config.api, mapping)
    if isinstance(config, HierarchyConnection) and config.source == "workday" and config.workday is not None:
        # The check reads the first Get_Workers page through the user file's mapping (managers by key).
        if "user" not in config.parts:
            raise TerminalError(f"{name}: the API check reads the user file's mapping, and parts has no 'user'")
        fields = tuple(dict.fromkeys(f for f in check_mapping(name, config).values()))
        return FetchSpec(name, "workday", config.workday, fields)
    raise TerminalError(
        f"{name}: the connection has no API source (source = 'msgraph', 'salesforce', 'workday' or 'workday_raas')"
    )


def check_mapping(name: str, config: object) -> dict[str, str]:
    """The mapping ``feedsync api check`` shows a connection's first page through (a hierarchy
    connection: its user file's)."""
    if isinstance(config, HierarchyConnection):
        return {a: f for a, f in config.files["user"].mapping.items() if f != DONT_IMPORT}
    return dict(getattr(config, "mapping", {}))


@dataclass(frozen=True)
class Preview:
    #: Every field (dotted for nested ones) the first page's records carry, sorted.
    fields: list[str]
    #: Mapped source fields no record of the first page carries.
    missing: list[str]
    #: The first records as the mapping reads them: attribute -> masked cell.
    rows: list[dict[str, str]]
    records: int
    more: bool
    #: Records of the first page the value filters (exclude_values, include_values) leave out.
    filtered: int = 0
    #: For each row shown: whether the value filters leave it out.
    left_out: tuple[bool, ...] = ()
    #: under_managers is set: decided on the whole feed's tree at import, not on one page.
    by_tree: bool = False


def mask(value: str) -> str:
    if not value:
        return ""
    return value[:KEPT] + "***"


def preview(
    spec: FetchSpec, mapping: Mapping[str, str], settings: Settings, filters: FilterConfig | None = None
) -> Preview:
    """A token and the first page of ``spec``'s source, and what ``filters``' values leave out of it;
    nothing written."""
    problems = spec.api.problems_for(spec.source)
    if problems:
        raise FetchError(f"{spec.name}: [connections.api] {problems[0][0]}: {problems[0][1]}")
    with pull(spec, settings, first_page=True) as source:
        page = next(iter(source.pages), None)
    records = page.records if page is not None else []
    fields: set[str] = set()
    for record in records:
        fields.update(_paths(record))
    # The core attributes first, in their usual order, then the others by name (a stored mapping has
    # lost the file's order: PostgreSQL's jsonb orders keys its own way).
    order = {a: n for n, a in enumerate(USER_CORE_ATTRIBUTES)}
    attributes = sorted((a for a, f in mapping.items() if f != DONT_IMPORT), key=lambda a: (order.get(a, 99), a))
    imported = {a: mapping[a] for a in attributes}
    missing = [f for f in spec.fields if all(lookup(r, f) is None for r in records)]
    rows = [{a: mask(cell(lookup(r, f), f)) for a, f in imported.items()} for r in records[:SHOWN]]
    out = [_left_out(r, imported, filters) for r in records] if filters is not None else [False] * len(records)
    return Preview(
        sorted(fields),
        missing,
        rows,
        len(records),
        bool(page and page.more),
        filtered=sum(out),
        left_out=tuple(out[:SHOWN]),
        by_tree=bool(filters and filters.under_managers),
    )


def _left_out(record: Any, imported: Mapping[str, str], filters: FilterConfig) -> bool:
    """Whether the value filters leave ``record`` out, compared as the import compares (trimmed,
    case-insensitively; filters.py in the users kind does the same in SQL)."""

    def value(attribute: str) -> str:
        field = imported.get(attribute)
        return cell(lookup(record, field), field).strip().lower() if field else ""

    for attribute, values in filters.exclude_values.items():
        if value(attribute) in {v.strip().lower() for v in values}:
            return True
    return any(value(a) not in {v.strip().lower() for v in vs} for a, vs in filters.include_values.items())


def _paths(record: Any, prefix: str = "") -> list[str]:
    if not isinstance(record, Mapping):
        return []
    found = []
    for key, value in record.items():
        if not isinstance(key, str) or key.startswith(_BOOKKEEPING):
            continue
        if isinstance(value, Mapping):
            found += _paths(value, f"{prefix}{key}.")
        else:
            found.append(f"{prefix}{key}")
    return found
