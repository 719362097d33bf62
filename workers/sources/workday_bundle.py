"""A hierarchy bundle from Workday (``source = "workday"`` on the hierarchy kind): the units from
``Get_Organizations`` of the Human_Resources service (the organisations of one type,
``organization_type``, SUPERVISORY by default, inactive ones left out, with their ``Hierarchy_Data``),
the positions and the people from ``Get_Workers`` (the positions the workers fill, from their
``Position_Data``, one row a position), written as the bundle's three CSV files.

The org mapping's values are paths into an organisation's ``Organization_Data`` (or, starting with
``Organization_Reference``, on the Organization element), as Workday's Get_Organizations
documentation names the elements:

    Reference_ID                                                                  (the key)
    Name
    Hierarchy_Data/Superior_Organization_Reference/ID[@type='Organization_Reference_ID']   (the parent)

The pos and user mappings' values are paths into a worker, as for the users kind
(workers/sources/workday.py): ``Employment_Data/Worker_Job_Data/Position_Data/Position_ID``, the
unit from ``Organization_Data/Worker_Organization_Data[...]``, the manager's Employee_ID from the
management chain (the hierarchy kind links managers by key, so no e-mail is looked up).

Both pulls are read as of one moment; the files are written whole or not at all (the fetch stage
throws away its work folder on any failure). A vacant position (one nobody fills) is not in
Get_Workers and so not in the bundle.
"""

from __future__ import annotations

import csv
import hashlib
import os
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import structlog

from schemas.kinds.hierarchy import HierarchyConnection
from schemas.kinds.users import DONT_IMPORT
from schemas.settings import Settings
from schemas.workday import WorkdayConfig
from workers.http import FetchError
from workers.http.soap import WD, WorkdayClient
from workers.sources import workday
from workers.sources.pull import FetchResult

log = structlog.get_logger(__name__)

SOURCE = "workday"
ON_ORGANIZATION = ("Organization_Reference",)
#: The first element of a path under Organization_Data -> the Response_Group flag that brings it.
ORG_INCLUDES = {
    "Hierarchy_Data": "Include_Hierarchy_Data",
    "Roles_Data": "Include_Roles_Data",
    "Supervisory_Data": "Include_Supervisory_Data",
    "Staffing_Restrictions_Data": "Include_Staffing_Restrictions_Data",
}


@dataclass(frozen=True)
class OrgPath:
    field: str
    path: workday.WorkerPath


def org_path(field: str, name: str) -> OrgPath:
    """An org mapping's path, compiled as a worker path is (the same syntax), read on
    ``Organization_Data`` unless it starts on the Organization element."""
    path, _, attribute = field.rpartition("/@") if "/@" in field.rpartition("]")[2] else (field, "", "")
    try:
        steps = workday._compile(path)
    except (SyntaxError, KeyError, TypeError, ValueError):
        raise FetchError(
            f"{name}: the org mapping's path {field!r} is not a path such as 'Name' or "
            "'Hierarchy_Data/Superior_Organization_Reference/ID[@type=\\'Organization_Reference_ID\\']'"
        ) from None
    found = workday.WorkerPath(field, steps, attribute or None, False)
    return OrgPath(field, replace(found, on_worker=found.head in ON_ORGANIZATION))


def organizations_request(config: WorkdayConfig, paths: Sequence[OrgPath], page: int, as_of: datetime) -> ET.Element:
    """A page of Get_Organizations, its Response_Group asking only for what ``paths`` read."""

    def el(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        child = ET.SubElement(parent, f"{{{WD}}}{tag}", {f"{{{WD}}}{k}": v for k, v in attrs.items()})
        child.text = text
        return child

    root = ET.Element(f"{{{WD}}}Get_Organizations_Request", {f"{{{WD}}}version": config.version})
    criteria = el(root, "Request_Criteria")
    el(el(criteria, "Organization_Type_Reference"), "ID", config.organization_type, type="Organization_Type_ID")
    el(criteria, "Include_Inactive", "false")
    response_filter = el(root, "Response_Filter")
    effective = config.as_of_effective_date or as_of.date()
    el(response_filter, "As_Of_Effective_Date", effective.isoformat())
    el(response_filter, "As_Of_Entry_DateTime", workday._instant(as_of))
    el(response_filter, "Page", str(page))
    el(response_filter, "Count", str(config.page_size))
    group = el(root, "Response_Group")
    for flag in sorted({ORG_INCLUDES[p.path.head] for p in paths if p.path.head in ORG_INCLUDES}):
        el(group, flag, "true")
    return root


def _read(organization: ET.Element, path: workday.WorkerPath) -> str:
    base = organization if path.on_worker else organization.find("Organization_Data")
    found = path.find(base) if base is not None else None
    if found is None:
        return ""
    value = found.get(path.attribute, "") if path.attribute else (found.text or "")
    return value.strip()


@dataclass
class Counter:
    pages: int = 0
    requests: int = 0


def organizations(
    client: WorkdayClient, paths: Sequence[OrgPath], as_of: datetime, counter: Counter
) -> Iterator[list[str]]:
    """Every organisation of the type, page after page until Total_Pages, as rows of ``paths``."""
    describe = f"{client.name}: Get_Organizations"
    number, seen, total = 0, 0, None
    while total is None or number < total.pages:
        number += 1
        answer = client.soap(workday.SERVICE, organizations_request(client.config, paths, number, as_of))
        results = workday._results(answer, describe)
        if results.page != number and results.total:
            raise FetchError(f"{describe} answered page {results.page} when asked for page {number}")
        if total is None:
            workday._check_limits(client.config, results, client.name)
            total = results
        counter.pages += 1
        found = answer.findall("Response_Data/Organization")
        seen += len(found)
        for organization in found:
            yield [_read(organization, p.path) for p in paths]
        if not results.total:
            break
    if total is not None and seen != total.total:
        raise FetchError(
            f"{describe}: the pages held {seen} organisations where Total_Results said {total.total}; the fetch was "
            "cut off and nothing was imported: run it again"
        )


def _fields(mapping: dict[str, str]) -> list[str]:
    return list(dict.fromkeys(v for v in mapping.values() if v != DONT_IMPORT))


class _Csv:
    """One file of the bundle, its SHA-256 taken as it is written."""

    def __init__(self, path: Path, header: Sequence[str]) -> None:
        self.path, self.digest, self.rows = path, hashlib.sha256(), 0
        self.out = path.open("w", encoding="utf-8", newline="")
        self.writer = csv.writer(self, lineterminator="\n")
        self.writer.writerow(header)

    def write(self, text: str) -> int:
        self.digest.update(text.encode("utf-8"))
        return self.out.write(text)

    def rows_out(self, rows: Iterable[Sequence[str]]) -> None:
        for row in rows:
            self.writer.writerow(row)
            self.rows += 1

    def close(self) -> None:
        self.out.flush()
        os.fsync(self.out.fileno())
        self.out.close()


def pull(name: str, cfg: HierarchyConnection, settings: Settings, work: Path) -> list[tuple[str, FetchResult]]:
    """The bundle's files (name, what was pulled) in ``work``, in the order they are applied."""
    config = cfg.workday
    assert config is not None  # the config's rules require it
    files = cfg.expected_files()
    as_of = datetime.now(UTC).replace(microsecond=0)
    found: list[tuple[str, FetchResult]] = []
    with WorkdayClient(name, config, settings) as client:
        if "org" in files:
            started, counter = time.monotonic(), Counter()
            fields = _fields(cfg.files["org"].mapping)
            paths = [org_path(f, name) for f in fields]
            out = _Csv(work / files["org"], fields)
            try:
                out.rows_out(organizations(client, paths, as_of, counter))
            finally:
                out.close()
            found.append(("org", _result(out, counter.pages, client.requests, started)))
        people: list[str] = [p for p in ("pos", "user") if p in files]
        if people:
            found += _workers(name, cfg, client, people, as_of, work)
    return [(files[part], result) for part, result in found]


def _workers(
    name: str, cfg: HierarchyConnection, client: WorkdayClient, parts: list[str], as_of: datetime, work: Path
) -> list[tuple[str, FetchResult]]:
    """The positions (one row a Position_ID) and the people, from one Get_Workers pull."""
    started, before = time.monotonic(), client.requests
    mapped = {p: _fields(cfg.files[p].mapping) for p in parts}
    fields = tuple(dict.fromkeys(f for p in parts for f in mapped[p]))
    outs = {p: _Csv(work / cfg.files[p].name, mapped[p]) for p in parts}
    pos_key = cfg.files["pos"].mapping["key"] if "pos" in parts else ""
    positions: set[str] = set()
    pages = 0
    try:
        for page in workday.pages(client, fields, None, None, as_of=as_of):
            pages += 1
            for record in page.records:
                if "user" in outs:
                    outs["user"].rows_out([[str(record.get(f, "")) for f in mapped["user"]]])
                key = str(record.get(pos_key, "")) if pos_key else ""
                if key and key not in positions:  # a worker without a position fills none
                    positions.add(key)
                    outs["pos"].rows_out([[str(record.get(f, "")) for f in mapped["pos"]]])
    finally:
        for out in outs.values():
            out.close()
    requests = client.requests - before
    log.info("workday bundle workers pulled", connection=name, pages=pages, positions=len(positions))
    # The pages and requests are counted once, on the first file the workers gave.
    return [
        (p, _result(outs[p], pages if i == 0 else 0, requests if i == 0 else 0, started)) for i, p in enumerate(parts)
    ]


def _result(out: _Csv, pages: int, requests: int, started: float) -> FetchResult:
    return FetchResult(out.path, out.rows, pages, out.digest.hexdigest(), time.monotonic() - started, requests)
