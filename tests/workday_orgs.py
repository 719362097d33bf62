"""Get_Organizations of the tenant in tests/workday_server.py, shaped as Workday documents it
(Human_Resources, Get_Organizations: Request_Criteria/Organization_Type_Reference and Include_Inactive,
Response_Filter paging, Response_Results, Response_Data/Organization with its Organization_Reference
and Organization_Data: Reference_ID, Name, Inactive, Organization_Type_Reference and Hierarchy_Data's
Superior_Organization_Reference), and the 3-level tree with 50 workers the hierarchy tests import.

The WS-Security header is checked by the tenant's handler before this is called; what this checks
(version, the organisation type, Include_Inactive, Page from 1 and Count at most 999, the same
As_Of_Entry_DateTime on every page, Include_Hierarchy_Data) lands in the tenant's ``problems``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from tests.workday_server import VERSION, WD, N, Tenant, Worker, answer, fault, workers


@dataclass(frozen=True)
class Org:
    ref: str
    name: str
    parent: str | None = None
    inactive: bool = False
    kind: str = "SUPERVISORY"


def tree() -> list[Org]:
    """One root, 3 divisions under it, 3 teams under each (13 units), a cost centre (another type)
    and an inactive team."""
    found = [Org("SUP-ROOT", "Contoso")]
    for d in range(3):
        found.append(Org(f"SUP-D{d}", f"Division {d}", "SUP-ROOT"))
        found += [Org(f"SUP-D{d}-T{t}", f"Team {d}.{t}", f"SUP-D{d}") for t in range(3)]
    return [*found, Org("CC-100", "Cost centre 100", kind="COST_CENTER"), Org("SUP-OLD", "Gone", "SUP-D0", True)]


TEAMS = [f"SUP-D{d}-T{t}" for d in range(3) for t in range(3)]


def people() -> list[Worker]:
    """50 employees (worker 0 at the root, each other in team i % 9), 45 filling a position of their own
    (P-1000 on), and 5 contingent workers (excluded by the connection)."""
    found = workers(50, inactive=0, contingent=5)
    for i, w in enumerate(found):
        if w.contingent:
            continue
        w.unit = "SUP-ROOT" if i == 0 else TEAMS[i % 9]
        if i < 45:
            w.position = (f"P-{1000 + i}", f"Role {i % 7}")
    return found


def _reference(org: Org, element: str) -> str:
    return (
        f'<wd:{element}><wd:ID wd:type="WID">{abs(hash(org.ref)):032x}</wd:ID>'
        f'<wd:ID wd:type="Organization_Reference_ID">{org.ref}</wd:ID></wd:{element}>'
    )


def org_xml(org: Org, by_ref: dict[str, Org], hierarchy: bool) -> str:
    superior = by_ref.get(org.parent or "")
    data = (
        f"<wd:Reference_ID>{org.ref}</wd:Reference_ID><wd:Name>{org.name}</wd:Name>"
        f"<wd:Inactive>{int(org.inactive)}</wd:Inactive>"
        f'<wd:Organization_Type_Reference><wd:ID wd:type="Organization_Type_ID">{org.kind}</wd:ID>'
        "</wd:Organization_Type_Reference>"
    )
    if hierarchy:
        top = _reference(by_ref["SUP-ROOT"], "Top-Level_Organization_Reference")
        up = _reference(superior, "Superior_Organization_Reference") if superior else ""
        data += f"<wd:Hierarchy_Data>{top}{up}</wd:Hierarchy_Data>"
    ref = _reference(org, "Organization_Reference")
    return f"<wd:Organization>{ref}<wd:Organization_Data>{data}</wd:Organization_Data></wd:Organization>"


class Organizations:
    """The handler: ``tenant.organizations = Organizations(tenant, tree())``."""

    def __init__(self, tenant: Tenant, orgs: list[Org]) -> None:
        self.tenant, self.orgs = tenant, orgs

    def __call__(self, req: ET.Element) -> tuple[int, bytes]:
        tenant = self.tenant
        if req.get(f"{{{WD}}}version") != VERSION:
            tenant.problem(f"Get_Organizations version {req.get(f'{{{WD}}}version')!r}")
        kind = req.findtext("wd:Request_Criteria/wd:Organization_Type_Reference/wd:ID", namespaces=N)
        id_type = req.find("wd:Request_Criteria/wd:Organization_Type_Reference/wd:ID", N)
        if id_type is None or id_type.get(f"{{{WD}}}type") != "Organization_Type_ID":
            tenant.problem("Organization_Type_Reference/ID without wd:type='Organization_Type_ID'")
        inactive = req.findtext("wd:Request_Criteria/wd:Include_Inactive", namespaces=N)
        page = int(req.findtext("wd:Response_Filter/wd:Page", namespaces=N) or 0)
        count = int(req.findtext("wd:Response_Filter/wd:Count", namespaces=N) or 0)
        if page < 1:
            return 500, fault("Client.validationError", "Page number cannot be zero")
        if not 1 <= count <= 999:
            tenant.problem(f"Get_Organizations Count {count}")
        hierarchy = req.findtext("wd:Response_Group/wd:Include_Hierarchy_Data", namespaces=N) == "true"
        seen: dict[str, Any] = {
            "op": "Get_Organizations",
            "page": page,
            "count": count,
            "type": kind,
            "include_inactive": inactive,
            "as_of": req.findtext("wd:Response_Filter/wd:As_Of_Entry_DateTime", namespaces=N),
            "hierarchy": hierarchy,
        }
        with tenant.lock:
            tenant.seen.append(seen)
        chosen = [o for o in self.orgs if o.kind == kind and (inactive == "true" or not o.inactive)]
        pages = (len(chosen) + count - 1) // count
        chunk = chosen[(page - 1) * count : page * count]
        by_ref = {o.ref: o for o in self.orgs}
        body = "".join(org_xml(o, by_ref, hierarchy) for o in chunk)
        return 200, answer(
            f'<wd:Get_Organizations_Response xmlns:wd="{WD}" wd:version="{VERSION}"><wd:Response_Results>'
            f"<wd:Total_Results>{len(chosen)}</wd:Total_Results><wd:Total_Pages>{pages}</wd:Total_Pages>"
            f"<wd:Page_Results>{len(chunk)}</wd:Page_Results><wd:Page>{page}</wd:Page></wd:Response_Results>"
            f"<wd:Response_Data>{body}</wd:Response_Data></wd:Get_Organizations_Response>"
        )
