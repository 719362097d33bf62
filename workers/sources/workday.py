"""Workday workers: ``Get_Workers`` of the Human_Resources web service, page after page until
``Total_Pages``, or a RaaS report (``source = "workday_raas"``, records under ``Report_Entry``).

Mapped fields are paths into a worker's ``Worker_Data`` as Workday's Get_Workers documentation names
the elements, without namespace prefixes, in ElementTree's path syntax:

    Personal_Data/Contact_Data/Email_Address_Data/Email_Address
    Personal_Data/Name_Data/Legal_Name_Data/Name_Detail_Data/First_Name
    Employment_Data/Worker_Status_Data/Active                       (1/0: ACTIVE/INACTIVE)
    Management_Chain_Data/Worker_Supervisory_Management_Chain_Data/Management_Chain_Data[last()]/Manager_Reference/ID[@type='Employee_ID']
    Worker_Reference/ID[@type='Employee_ID']                         (read on the Worker, not its data)
    Personal_Data/Name_Data/Legal_Name_Data/Name_Detail_Data/@Formatted_Name   (an attribute)

A path that ends at a worker reference's ``ID`` and is mapped to ``manager`` is resolved to that
worker's e-mail (the path mapped to ``email``) once every page is in: the users kind links managers
by e-mail. A manager outside the pull (inactive, contingent and excluded) leaves the cell empty.

Every page is read as of one moment (``As_Of_Entry_DateTime`` fixed at the first request, as
Workday's paging requires); ``Response_Group`` asks only for the parts of a worker the mapping
reads. The pages are kept in a temporary file until the last one is in, so a cut-off pull yields
nothing.
"""

from __future__ import annotations

import json
import re
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import IO, Any

import structlog

from schemas.workday import WorkdayConfig
from workers.http import FetchError
from workers.http.soap import WD, WorkdayClient
from workers.sources.records import ACTIVE, INACTIVE, Page

log = structlog.get_logger(__name__)

SERVICE = "Human_Resources"
#: The first element of a path under Worker_Data -> the Response_Group flag that brings it.
INCLUDES = {
    "Worker_ID": None,
    "User_ID": None,
    "Universal_ID": None,
    "Personal_Data": "Include_Personal_Information",
    "Employment_Data": "Include_Employment_Information",
    "Organization_Data": "Include_Organizations",
    "Management_Chain_Data": "Include_Management_Chain_Data",
    "Role_Data": "Include_Roles",
    "Qualification_Data": "Include_Qualifications",
    "Compensation_Data": "Include_Compensation",
    "Related_Person_Data": "Include_Related_Persons",
    "Skill_Data": "Include_Skills",
    "Worker_Document_Data": "Include_Worker_Documents",
    "Photo_Data": "Include_Photo",
    "Employee_Contract_Data": "Include_Employee_Contract_Data",
}
#: Paths read on the Worker element itself rather than its Worker_Data.
ON_WORKER = ("Worker_Reference", "Worker_Descriptor")
_TRUE, _FALSE = frozenset({"1", "true"}), frozenset({"0", "false"})


@dataclass(frozen=True)
class Deep:
    """A step whose condition looks deeper than one child: ``Email_Address_Data[Usage_Data/Type_Data/
    Type_Reference/ID='WORK']`` (ElementTree's own predicates reach one child only)."""

    name: str
    sub: str
    value: str | None

    def matches(self, el: ET.Element) -> bool:
        if self.value is None:
            return el.find(self.sub) is not None
        return any((e.text or "").strip() == self.value for e in el.findall(self.sub))


_DEEP = re.compile(
    r"^(?P<name>[A-Za-z_][\w.-]*)\[(?P<sub>[A-Za-z_][\w.-]*(?:/[A-Za-z_][\w.-]*(?:\[@?[\w.-]+(?:='[^']*')?\])?)+)"
    r"(?:='(?P<value>[^']*)')?\]$"
)


@dataclass(frozen=True)
class WorkerPath:
    field: str
    #: ElementTree paths and deep steps, in order.
    steps: tuple[str | Deep, ...]
    attribute: str | None
    on_worker: bool

    @property
    def head(self) -> str:
        first = self.steps[0]
        return first.name if isinstance(first, Deep) else first.split("/", 1)[0].split("[", 1)[0]

    def find(self, base: ET.Element) -> ET.Element | None:
        current = [base]
        for step in self.steps:
            if isinstance(step, Deep):
                current = [c for el in current for c in el.findall(step.name) if step.matches(c)]
            else:
                current = [c for el in current for c in el.findall(step)]
            if not current:
                return None
        return current[0]


def _split(path: str) -> list[str]:
    """The path's steps, split on the slashes outside brackets."""
    steps, depth, start = [], 0, 0
    for i, ch in enumerate(path):
        depth += (ch == "[") - (ch == "]")
        if ch == "/" and depth == 0:
            steps.append(path[start:i])
            start = i + 1
    return [*steps, path[start:]]


def _compile(path: str) -> tuple[str | Deep, ...]:
    found: list[str | Deep] = []
    plain: list[str] = []
    for step in _split(path):
        deep = _DEEP.match(step) if "/" in step else None
        if deep is None:
            plain.append(step)
            continue
        if plain:
            found.append("/".join(plain))
            plain = []
        found.append(Deep(deep["name"], deep["sub"], deep["value"]))
    if plain:
        found.append("/".join(plain))
    for part in found:  # ElementTree says whether it can read each (a SyntaxError, else nothing found)
        ET.Element("Worker_Data").find(part.sub if isinstance(part, Deep) else part)
    return tuple(found)


def parse_path(field: str, name: str) -> WorkerPath:
    path, _, attribute = field.rpartition("/@") if "/@" in field.rpartition("]")[2] else (field, "", "")
    try:
        found = WorkerPath(field, _compile(path), attribute or None, False)
    except (SyntaxError, KeyError, TypeError, ValueError):  # what ElementTree's path parser raises
        raise FetchError(
            f"{name}: the mapped path {field!r} is not a path such as "
            "'Personal_Data/Contact_Data/Email_Address_Data/Email_Address'"
        ) from None
    if found.head not in INCLUDES and found.head not in ON_WORKER:
        raise FetchError(
            f"{name}: the mapped path {field!r} starts with {found.head!r}, which is not part of a Get_Workers worker: "
            f"start paths with one of {', '.join([*ON_WORKER, *INCLUDES])}"
        )
    return replace(found, on_worker=found.head in ON_WORKER)


def request(
    config: WorkdayConfig, paths: list[WorkerPath], page: int, as_of: datetime, updated_from: datetime | None = None
) -> ET.Element:
    def el(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
        child = ET.SubElement(parent, f"{{{WD}}}{tag}")
        child.text = text
        return child

    root = ET.Element(f"{{{WD}}}Get_Workers_Request", {f"{{{WD}}}version": config.version})
    criteria = el(root, "Request_Criteria")
    el(criteria, "Exclude_Inactive_Workers", _bool(config.exclude_inactive_workers))
    el(criteria, "Exclude_Employees", _bool(config.exclude_employees))
    el(criteria, "Exclude_Contingent_Workers", _bool(config.exclude_contingent_workers))
    if updated_from is not None:  # an incremental pull: what changed between the last pull and now
        dates = el(el(criteria, "Transaction_Log_Criteria_Data"), "Transaction_Date_Range_Data")
        el(dates, "Updated_From", _instant(updated_from))
        el(dates, "Updated_Through", _instant(as_of))
    response_filter = el(root, "Response_Filter")
    effective = config.as_of_effective_date or as_of.date()
    el(response_filter, "As_Of_Effective_Date", effective.isoformat())
    el(response_filter, "As_Of_Entry_DateTime", _instant(as_of))
    el(response_filter, "Page", str(page))
    el(response_filter, "Count", str(config.page_size))
    group = el(root, "Response_Group")
    el(group, "Include_Reference", "true")
    flags = {INCLUDES.get(p.head) for p in paths}
    for flag in sorted(f for f in flags if f):
        el(group, flag, "true")
    return root


def _instant(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _read(worker: ET.Element, path: WorkerPath) -> tuple[str, ET.Element | None]:
    base = worker if path.on_worker else worker.find("Worker_Data")
    found = path.find(base) if base is not None else None
    if found is None:
        return "", None
    value = found.get(path.attribute, "") if path.attribute else (found.text or "")
    value = value.strip()
    if path.attribute is None and found.tag == "Active" and value.lower() in _TRUE | _FALSE:
        value = ACTIVE if value.lower() in _TRUE else INACTIVE
    return value, found


@dataclass(frozen=True)
class Results:
    total: int
    pages: int
    page: int


def _results(answer: ET.Element, describe: str) -> Results:
    try:
        return Results(
            int(answer.findtext("Response_Results/Total_Results") or ""),
            int(answer.findtext("Response_Results/Total_Pages") or ""),
            int(answer.findtext("Response_Results/Page") or ""),
        )
    except ValueError:
        raise FetchError(
            f"{describe} answered without Response_Results (Total_Results, Total_Pages, Page): check base_url and "
            "version point at the Human_Resources service; nothing was imported"
        ) from None


def pages(
    client: WorkdayClient,
    fields: tuple[str, ...],
    email: str | None,
    manager: str | None,
    *,
    as_of: datetime | None = None,
    updated_from: datetime | None = None,
    first_page: bool = False,
) -> Iterator[Page]:
    """Every page (``first_page``: only the first, its managers resolved within it), all read before
    the first is yielded, as of ``as_of`` (default: now); with ``updated_from``, only the workers
    changed since then."""
    config, name = client.config, client.name
    paths = [parse_path(f, name) for f in fields]
    as_of = (as_of or datetime.now(UTC)).replace(microsecond=0)
    describe = f"{name}: Get_Workers"
    ids: dict[tuple[str, str], str] = {}  # (ID type, value) -> the worker's e-mail
    with tempfile.TemporaryFile("w+", encoding="utf-8") as spill:
        number, seen, total = 0, 0, None
        while total is None or number < total.pages:
            number += 1
            answer = client.soap(SERVICE, request(config, paths, number, as_of, updated_from))
            results = _results(answer, describe)
            if results.page != number and results.total:
                raise FetchError(f"{describe} answered page {results.page} when asked for page {number}")
            if total is None:
                _check_limits(config, results, name)
                total = results
            workers = answer.findall("Response_Data/Worker")
            seen += len(workers)
            _spill(spill, workers, paths, email, manager, ids)
            if not results.total or first_page:
                break
        if seen != total.total and not first_page:
            raise FetchError(
                f"{describe}: the pages held {seen} workers where Total_Results said {total.total}; the fetch was cut "
                "off and nothing was imported: run it again"
            )
        yield from _pages_back(spill, fields, manager, ids, total.pages)


def _check_limits(config: WorkdayConfig, results: Results, name: str) -> None:
    if results.total > config.max_records:
        raise FetchError(
            f"{name}: Workday holds {results.total} workers, more than max_records ({config.max_records}); nothing "
            "was imported: raise max_records in [connections.workday] if that many is right"
        )
    if results.pages > config.max_pages:
        raise FetchError(
            f"{name}: Workday has {results.pages} pages, more than max_pages ({config.max_pages}); nothing was "
            "imported: raise page_size or max_pages in [connections.workday]"
        )


def _spill(
    spill: IO[str],
    workers: list[ET.Element],
    paths: list[WorkerPath],
    email: str | None,
    manager: str | None,
    ids: dict[tuple[str, str], str],
) -> None:
    records = []
    for worker in workers:
        record: dict[str, Any] = {}
        for path in paths:
            value, found = _read(worker, path)
            if path.field == manager and found is not None and found.tag == "ID" and found.get("type"):
                record["_manager_id"] = [found.get("type"), value]
            record[path.field] = value
        address = record.get(email, "") if email else ""
        if address:
            for ref in worker.findall("Worker_Reference/ID"):
                ids[(ref.get("type", ""), (ref.text or "").strip())] = address
        records.append(record)
    spill.write(json.dumps(records, ensure_ascii=False) + "\n")


def _pages_back(
    spill: IO[str], fields: tuple[str, ...], manager: str | None, ids: dict[tuple[str, str], str], count: int
) -> Iterator[Page]:
    spill.seek(0)
    unresolved = 0
    for number, line in enumerate(spill, start=1):
        records: list[dict[str, Any]] = json.loads(line)
        for record in records:
            ref = record.pop("_manager_id", None)
            if manager and ref is not None:
                record[manager] = ids.get((ref[0], ref[1]), "")
                unresolved += not record[manager]
        yield Page(records, more=number < count)
    if unresolved:
        log.info("workday managers outside the pull", count=unresolved)


def report(client: WorkdayClient) -> Iterator[Page]:
    """A RaaS report: one JSON document, its records under ``Report_Entry``."""
    url = client.config.report_url
    assert url is not None  # problems_for requires it
    body = client.get_json(url)
    records = body.get("Report_Entry") if isinstance(body, dict) else None
    if not isinstance(records, list):
        raise FetchError(
            f"{client.name}: the report has no 'Report_Entry' list: check report_url ends in '?format=json' and "
            "names a RaaS report; nothing was imported"
        )
    yield Page(records, more=False)
