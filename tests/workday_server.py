"""A Workday tenant of ours on 127.0.0.1: the Human_Resources service's ``Get_Workers`` over SOAP
with a WS-Security UsernameToken, and a RaaS report, shaped as Workday documents them
(../shared/reference/wave3-anchors.md §3: the Get_Workers request Entra sends, Response_Results with
Total_Results/Total_Pages/Page_Results/Page, Response_Data/Worker/Worker_Data, a SOAP Fault with
``Client.authenticationError`` for a bad user or password).

It checks what it receives and records every problem in ``problems`` (a test asserts there are
none): the Security header's user and password, the request's version, its Request_Criteria,
Response_Filter (Page from 1, Count at most 999, the same As_Of_Entry_DateTime on every page) and
Response_Group (a part of the worker not asked for is not sent, as Workday does). The Talent
service's ``Manage_Skills`` is served by tests/workday_talent.py through ``talent``.
"""

from __future__ import annotations

import base64
import json
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

TENANT = "contoso4"
USER = "ISU_feedsync"
PASSWORD = "Wd-Pa55word-That-Must-Never-Leak-77c1"  # noqa: S105 -- a test secret, grepped for in logs
VERSION = "v40.1"
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WD = "urn:com.workday/bsvc"
N = {"env": SOAP, "wsse": WSSE, "wd": WD}
LOG = "wd:Request_Criteria/wd:Transaction_Log_Criteria_Data/wd:Transaction_Date_Range_Data"


@dataclass
class Worker:
    employee_id: str
    email: str
    first: str
    last: str
    active: bool = True
    contingent: bool = False
    manager: str | None = None  # the manager's Employee_ID
    title: str = "Engineer"
    #: When the worker last changed (Transaction_Log_Criteria's Updated_From/Updated_Through select on it).
    updated: str = "2026-01-05T09:00:00Z"
    #: The position the worker fills (Position_ID, Position_Title) and their supervisory organisation.
    position: tuple[str, str] | None = None
    unit: str | None = None

    @property
    def wid(self) -> str:
        return f"{int(self.employee_id):032x}"


def workers(n: int, inactive: int = 10, contingent: int = 25) -> list[Worker]:
    """n employees in a tree (each reports to (i - 1) // 5), ``inactive`` of them (from worker10 on) terminated,
    and ``contingent`` contingent workers (reporting to worker 0) besides."""
    found = [
        Worker(
            employee_id=f"{21000 + i}",
            email=f"worker{i}@contoso.example",
            first=f"Given{i}",
            last=f"Family{i}",
            active=not 10 <= i < 10 + inactive,
            manager=f"{21000 + (i - 1) // 5}" if i else None,
        )
        for i in range(n)
    ]
    found += [
        Worker(f"{90000 + i}", f"cw{i}@contoso.example", f"Cw{i}", "Contractor", contingent=True, manager="21000")
        for i in range(contingent)
    ]
    return found


@dataclass
class Tenant:
    people: list[Worker]
    seen: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    base_url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: The report's records (RaaS), and a handler for the Talent service (tests/workday_talent.py).
    report: list[dict[str, Any]] = field(default_factory=list)
    talent: Callable[[ET.Element], tuple[int, bytes]] | None = None
    #: A handler for Get_Organizations (tests/workday_orgs.py).
    organizations: Callable[[ET.Element], tuple[int, bytes]] | None = None
    #: Answers sent as they are to the next SOAP requests, before anything is checked (faults of the wire).
    planned: list[tuple[int, bytes]] = field(default_factory=list)

    def problem(self, text: str) -> None:
        with self.lock:
            self.problems.append(text)


def fault(code: str, text: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="{SOAP}"><SOAP-ENV:Body>'
        f"<SOAP-ENV:Fault><faultcode>SOAP-ENV:{code}</faultcode><faultstring>{text}</faultstring>"
        "</SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>"
    ).encode()


def authenticated(root: ET.Element) -> bool:
    token = root.find("env:Header/wsse:Security/wsse:UsernameToken", N)
    if token is None:
        return False
    password = token.find("wsse:Password", N)
    return (
        token.findtext("wsse:Username", namespaces=N) == f"{USER}@{TENANT}"
        and password is not None
        and password.text == PASSWORD
        and (password.get("Type") or "").endswith("#PasswordText")
    )


def answer(children: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="{SOAP}"><env:Body>{children}'
        "</env:Body></env:Envelope>"
    ).encode()


def _text(parent: ET.Element, path: str) -> str | None:
    return parent.findtext(path, namespaces=N)


class GetWorkers:
    """One Get_Workers request checked and answered."""

    def __init__(self, tenant: Tenant, request: ET.Element) -> None:
        self.tenant, self.request = tenant, request

    def criteria(self) -> dict[str, bool]:
        found = {}
        for name in ("Exclude_Inactive_Workers", "Exclude_Employees", "Exclude_Contingent_Workers"):
            value = _text(self.request, f"wd:Request_Criteria/wd:{name}")
            if value not in ("true", "false"):
                self.tenant.problem(f"Request_Criteria/{name} is {value!r}")
            found[name] = value == "true"
        return found

    def answer(self) -> bytes:
        req = self.request
        if req.get(f"{{{WD}}}version") != VERSION:
            self.tenant.problem(f"version {req.get(f'{{{WD}}}version')!r}")
        page = int(_text(req, "wd:Response_Filter/wd:Page") or 0)
        count = int(_text(req, "wd:Response_Filter/wd:Count") or 0)
        if page < 1:
            return fault("Client.validationError", "Page number cannot be zero")
        if not 1 <= count <= 999:
            self.tenant.problem(f"Count {count}")
        group = {local(e.tag) for e in req.findall("wd:Response_Group/*", N) if e.text == "true"}
        criteria = self.criteria()
        seen: dict[str, Any] = {
            "page": page,
            "count": count,
            "as_of": _text(req, "wd:Response_Filter/wd:As_Of_Entry_DateTime"),
            "effective": _text(req, "wd:Response_Filter/wd:As_Of_Effective_Date"),
            "criteria": criteria,
            "updated_from": _text(req, f"{LOG}/wd:Updated_From"),
            "updated_through": _text(req, f"{LOG}/wd:Updated_Through"),
            "group": group,
        }
        with self.tenant.lock:
            self.tenant.seen.append(seen)
            people = list(self.tenant.people)
        c = criteria
        chosen = [
            w
            for w in people
            if not (c["Exclude_Inactive_Workers"] and not w.active)
            and not (c["Exclude_Contingent_Workers"] and w.contingent)
            and not (c["Exclude_Employees"] and not w.contingent)
            and (seen["updated_from"] is None or seen["updated_from"] <= w.updated <= seen["updated_through"])
        ]
        pages = (len(chosen) + count - 1) // count
        chunk = chosen[(page - 1) * count : page * count]
        by_id = {w.employee_id: w for w in people}
        body = "".join(worker_xml(w, by_id, group) for w in chunk)
        return answer(
            f'<wd:Get_Workers_Response xmlns:wd="{WD}" wd:version="{VERSION}"><wd:Response_Results>'
            f"<wd:Total_Results>{len(chosen)}</wd:Total_Results><wd:Total_Pages>{pages}</wd:Total_Pages>"
            f"<wd:Page_Results>{len(chunk)}</wd:Page_Results><wd:Page>{page}</wd:Page></wd:Response_Results>"
            f"<wd:Response_Data>{body}</wd:Response_Data></wd:Get_Workers_Response>"
        )


def local(tag: str) -> str:
    return tag.rpartition("}")[2]


def reference(w: Worker, element: str) -> str:
    kind = "Contingent_Worker_ID" if w.contingent else "Employee_ID"
    return (
        f'<wd:{element}><wd:ID wd:type="WID">{w.wid}</wd:ID><wd:ID wd:type="{kind}">{w.employee_id}</wd:ID>'
        f"</wd:{element}>"
    )


def worker_xml(w: Worker, by_id: dict[str, Worker], group: set[str]) -> str:
    parts = [f"<wd:Worker_ID>{w.employee_id}</wd:Worker_ID><wd:User_ID>{w.email.split('@')[0]}</wd:User_ID>"]
    if "Include_Personal_Information" in group:
        parts.append(
            "<wd:Personal_Data><wd:Name_Data><wd:Legal_Name_Data>"
            f'<wd:Name_Detail_Data wd:Formatted_Name="{w.first} {w.last}"><wd:First_Name>{w.first}</wd:First_Name>'
            f"<wd:Last_Name>{w.last}</wd:Last_Name></wd:Name_Detail_Data></wd:Legal_Name_Data></wd:Name_Data>"
            "<wd:Contact_Data><wd:Email_Address_Data>"
            f"<wd:Email_Address>{w.email}</wd:Email_Address>"
            '<wd:Usage_Data wd:Public="1"><wd:Type_Data wd:Primary="1"><wd:Type_Reference>'
            '<wd:ID wd:type="Communication_Usage_Type_ID">WORK</wd:ID></wd:Type_Reference></wd:Type_Data>'
            "</wd:Usage_Data></wd:Email_Address_Data></wd:Contact_Data></wd:Personal_Data>"
        )
    if "Include_Employment_Information" in group:
        filled = (
            f"<wd:Position_ID>{w.position[0]}</wd:Position_ID><wd:Position_Title>{w.position[1]}</wd:Position_Title>"
            if w.position
            else ""
        )
        parts.append(
            f"<wd:Employment_Data><wd:Worker_Job_Data><wd:Position_Data>{filled}"
            f"<wd:Business_Title>{w.title}</wd:Business_Title></wd:Position_Data></wd:Worker_Job_Data>"
            f"<wd:Worker_Status_Data><wd:Active>{int(w.active)}</wd:Active>"
            "<wd:Hire_Date>2020-01-06-08:00</wd:Hire_Date></wd:Worker_Status_Data></wd:Employment_Data>"
        )
    if "Include_Organizations" in group and w.unit is not None:
        parts.append(
            "<wd:Organization_Data><wd:Worker_Organization_Data><wd:Organization_Reference>"
            f'<wd:ID wd:type="Organization_Reference_ID">{w.unit}</wd:ID></wd:Organization_Reference>'
            f"<wd:Organization_Data><wd:Organization_Reference_ID>{w.unit}</wd:Organization_Reference_ID>"
            '<wd:Organization_Type_Reference><wd:ID wd:type="Organization_Type_ID">SUPERVISORY</wd:ID>'
            "</wd:Organization_Type_Reference></wd:Organization_Data></wd:Worker_Organization_Data>"
            "</wd:Organization_Data>"
        )
    if "Include_Management_Chain_Data" in group and w.manager is not None:
        # From the top of the chain down to the immediate manager (last), as Workday lists it.
        chain: list[str] = []
        # A manager no longer in the list is still a worker of the tenant (terminated, or excluded).
        manager: Worker | None = by_id.get(w.manager) or Worker(w.manager, "", "", "")
        while manager is not None and len(chain) < 2:
            chain.insert(
                0,
                f'<wd:Management_Chain_Data><wd:Organization_Reference><wd:ID wd:type="Organization_Reference_ID">'
                f"SUP-{manager.employee_id}</wd:ID></wd:Organization_Reference>"
                f"{reference(manager, 'Manager_Reference')}</wd:Management_Chain_Data>",
            )
            manager = by_id.get(manager.manager) if manager.manager else None
        parts.append(
            "<wd:Management_Chain_Data><wd:Worker_Supervisory_Management_Chain_Data>"
            f"{''.join(chain)}</wd:Worker_Supervisory_Management_Chain_Data></wd:Management_Chain_Data>"
        )
    descriptor = f"<wd:Worker_Descriptor>{w.first} {w.last}</wd:Worker_Descriptor>"
    data = f"<wd:Worker_Data>{''.join(parts)}</wd:Worker_Data>"
    return f"<wd:Worker>{reference(w, 'Worker_Reference')}{descriptor}{data}</wd:Worker>"


class _Handler(BaseHTTPRequestHandler):
    tenant: Tenant
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: bytes, content_type: str = "text/xml; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with self.tenant.lock:
            planned = self.tenant.planned.pop(0) if self.tenant.planned else None
        if planned is not None:
            return self._reply(*planned)
        path = urlsplit(self.path).path
        if not self.headers.get("Content-Type", "").startswith("text/xml"):
            self.tenant.problem(f"Content-Type {self.headers.get('Content-Type')!r}")
        try:
            root = ET.fromstring(raw)  # noqa: S314 -- our own client's requests, in a test
        except ET.ParseError:
            self.tenant.problem("a request that is not XML")
            return self._reply(500, fault("Client.validationError", "not XML"))
        if not authenticated(root):
            return self._reply(500, fault("Client.authenticationError", "invalid username or password"))
        request = root.find("env:Body/*", N)
        if request is None:
            return self._reply(500, fault("Client.validationError", "empty Body"))
        if path == f"/ccx/service/{TENANT}/Human_Resources/{VERSION}" and local(request.tag) == "Get_Workers_Request":
            return self._reply(200, GetWorkers(self.tenant, request).answer())
        if (
            path == f"/ccx/service/{TENANT}/Human_Resources/{VERSION}"
            and local(request.tag) == "Get_Organizations_Request"
            and self.tenant.organizations is not None
        ):
            return self._reply(*self.tenant.organizations(request))
        if path == f"/ccx/service/{TENANT}/Talent/{VERSION}" and self.tenant.talent is not None:
            status, body = self.tenant.talent(request)
            return self._reply(status, body)
        self.tenant.problem(f"POST {path} {local(request.tag)}")
        return self._reply(500, fault("Client.validationError", "unknown operation"))

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        auth = self.headers.get("Authorization", "")
        expected = "Basic " + base64.b64encode(f"{USER}@{TENANT}:{PASSWORD}".encode()).decode()
        if auth != expected:
            return self._reply(401, b'{"error":"invalid username or password"}', "application/json")
        if not parts.path.startswith(f"/ccx/service/customreport2/{TENANT}/") or parts.query != "format=json":
            self.tenant.problem(f"GET {parts.path}?{parts.query}")
            return self._reply(404, b"{}", "application/json")
        with self.tenant.lock:
            self.tenant.seen.append({"report": parts.path})
            body = json.dumps({"Report_Entry": self.tenant.report}).encode()
        self._reply(200, body, "application/json")


class Served:
    """The tenant on 127.0.0.1 (an ephemeral port) in a thread."""

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (_Handler,), {"tenant": tenant}))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        tenant.base_url = self.url
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
