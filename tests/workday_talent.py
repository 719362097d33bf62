"""The Talent service of the Workday tenant of tests/workday_server.py: ``Manage_Skills`` (one
worker, its skill items by ``Skill_Name``, ``Remove_Skill``) as Workday's Talent web service
defines it, recording what each worker was sent and answering a worker it does not know with the
validation fault Workday sends (``Client.validationError``, its ``Xpath`` on the Worker_Reference)."""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from tests.workday_server import SOAP, VERSION, WD, N, answer, fault, local


@dataclass
class Talent:
    known: set[str]
    #: Employee_ID -> the skill names sent for that worker, in the order sent (every request).
    received: dict[str, list[str]] = field(default_factory=dict)
    requests: int = 0
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: ET.Element) -> tuple[int, bytes]:
        with self.lock:
            self.requests += 1
            return self._answer(request)

    def _answer(self, request: ET.Element) -> tuple[int, bytes]:
        if local(request.tag) != "Manage_Skills_Request" or request.get(f"{{{WD}}}version") != VERSION:
            self.problems.append(f"{local(request.tag)} version {request.get(f'{{{WD}}}version')!r}")
            return 500, fault("Client.validationError", "unknown operation")
        data = request.findall("wd:Manage_Skills_Data", N)
        ids = request.findall("wd:Manage_Skills_Data/wd:Worker_Reference/wd:ID", N)
        if len(data) != 1 or len(ids) != 1 or ids[0].get(f"{{{WD}}}type") != "Employee_ID":
            self.problems.append("Manage_Skills_Data needs one Worker_Reference with one Employee_ID")
            return 500, fault("Client.validationError", "bad worker reference")
        worker = ids[0].text or ""
        skills = []
        for skill in data[0].findall("wd:Skill", N):
            if skill.findtext("wd:Remove_Skill", namespaces=N) != "false" or not skill.findtext(
                "wd:Skill_Name", namespaces=N
            ):
                self.problems.append("a Skill without Remove_Skill false and a Skill_Name")
            skills.append(skill.findtext("wd:Skill_Name", namespaces=N) or "")
        if worker not in self.known:
            return 500, validation_fault(worker)
        self.received.setdefault(worker, []).extend(skills)
        refs = "".join(
            f'<wd:Skill_Item_Reference><wd:ID wd:type="Skill_Item_ID">{s}</wd:ID></wd:Skill_Item_Reference>'
            for s in skills
        )
        return 200, answer(
            f'<wd:Manage_Skills_Response xmlns:wd="{WD}" wd:version="{VERSION}"><wd:Worker_Reference>'
            f'<wd:ID wd:type="Employee_ID">{worker}</wd:ID></wd:Worker_Reference>{refs}</wd:Manage_Skills_Response>'
        )


def validation_fault(worker: str) -> bytes:
    message = f"Invalid ID value.  '{worker}' is not a valid ID value for type = 'Employee_ID'"
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="{SOAP}"><SOAP-ENV:Body>'
        f'<SOAP-ENV:Fault xmlns:wd="{WD}"><faultcode>SOAP-ENV:Client.validationError</faultcode>'
        f"<faultstring>Validation error occurred. {message}</faultstring><detail><wd:Validation_Fault>"
        f"<wd:Validation_Error><wd:Message>{message}</wd:Message><wd:Detail_Message>{message}</wd:Detail_Message>"
        "<wd:Xpath>/ns0:Manage_Skills_Request[1]/ns0:Manage_Skills_Data[1]/ns0:Worker_Reference[1]</wd:Xpath>"
        "</wd:Validation_Error></wd:Validation_Fault></detail></SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>"
    ).encode()
