"""What the standard kind suite (tests/unit/test_standard_kinds.py) delivers to each registered
import kind: a tiny delivery, one that changes what the first wrote, a file with a bad header and a
file with one bad row. Kept here, beside the tests, not in the product: a new kind adds one entry."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

from openpyxl import Workbook

from tests.api_linkedin import activity, course, linkedin_toml, renamed

PEOPLE_HEADER = "Email,First Name,Last Name,Manager Email,Department\n"
PEOPLE = PEOPLE_HEADER + "ann@x.com,Ann,A,,Sales\nbob@x.com,Bob,B,,Sales\n"


@dataclass(frozen=True)
class Sample:
    name: str  # the connection's name
    toml: str  # the connection (and what it needs)
    folder: str  # where its files are dropped, under the drop dir
    first: dict[str, str | bytes]  # a delivery that creates rows
    second: dict[str, str | bytes]  # a delivery that changes rows the first wrote (and creates no people)
    bad_header: dict[str, str | bytes]  # a delivery whose file (the last one) lacks a column the kind needs
    bad_row: dict[str, str | bytes]  # a delivery with one bad row ...
    bad_line: int  # ... on this line
    bad_column: str  # ... in this column (as the file names it)
    rules: str = ""  # [[rules]] applied after the connection
    people: bool = True  # people are imported (hr-users) before the kind's deliveries
    #: An API kind: ``toml`` aims at LINKEDIN_URL (replaced by the test server's), and a delivery
    #: is what the server answers (catalog.json, activity.json, read from ``folder`` per request).
    api: bool = False
    extra: list[str] = field(default_factory=list)


_HIER_MAPPING = """
[connections.files.org.mapping]
key = "Unit ID"
name = "Unit"
parent = "Parent ID"
[connections.files.pos.mapping]
key = "Position ID"
name = "Position"
[connections.files.user.mapping]
key = "Employee ID"
email = "Email"
first_name = "First"
last_name = "Last"
unit = "Unit ID"
position = "Position ID"
manager = "Manager ID"
"""
_ORG = "Unit ID,Unit,Parent ID\nSALES,Sales,\nEAST,East,SALES\n"
_POS = "Position ID,Position\nREP,Sales rep\n"
_USER = "Employee ID,Email,First,Last,Unit ID,Position ID,Manager ID\n"

_HMM_META = (
    "Product ID,Asset Type,Asset Format,Title,Description,URL,Image URL,Authors,Duration,Language,"
    "Publication Date,Copyright Holder,Subject Tags,Status,Collection,Major Discipline,Parent Product ID,"
    "Last Modified Date,Skills\n"
)
_HMM_PROGRESS = (
    "Username,Topic Code,Completion Date,Topic Title,First Accessed Date,Last Accessed Date,Assessment Date,"
    "Assessment Score,Total Time in Topic,Number of Visits,First Name,Last Name,Email Address\n"
)


def _course(pid: str, title: str) -> str:
    return f"{pid},Course,HTML,{title},About,https://x.test/{pid},,HBP,45,English,9/14/2014,HBP,Teams,Active,HMM,S,,5/2/2024,Coaching\n"


def _progress(user: str, code: str, completed: str = "", first: str = "") -> str:
    return f"{user},{code},{completed},T,{first},{first},,,{'10' if first else ''},,U,L,{user}\n"


_XAPI_TOML = """
[[connections]]
name = "lrs"
kind = "xapi"

[connections.xapi]
"actor.mbox" = { column = "Email" }
"verb.id" = { column = "Verb" }
"object.id" = { column = "Activity" }
"result.score.scaled" = { column = "Score", type = "number" }
"timestamp" = { column = "When", type = "date" }
"verb.display.en-US" = { value = "did" }
"""
_XAPI = "Email,Verb,Activity,Score,When\n"
_DONE = "http://adlnet.gov/expapi/verbs/completed"

_GA = ["customerId", "externalId", "email", "firstName", "lastName", "dataId", "language", "downloadDate",
       "downloadTime", "mainTitle", "primaryCategory", "mediaType", "downloadType"]  # fmt: skip


def _report(header: list[str], rows: list[tuple[str, object, object, str]]) -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(header)
    for email, data_id, day, title in rows:
        ws.append([1, email, email, "F", "L", data_id, "en", day, 0.5, title, "Sales", "Audio", "PULL"][: len(header)])
    out = BytesIO()
    wb.save(out)
    return out.getvalue()


#: Where an API sample's connection points; the suite puts its server's address here.
LINKEDIN_URL = "http://127.0.0.1:9"


def _linkedin(courses: list[dict[str, Any]], reports: list[dict[str, Any]]) -> dict[str, str | bytes]:
    return {"catalog.json": json.dumps(courses), "activity.json": json.dumps(reports)}


SAMPLES: dict[str, Sample] = {
    "users": Sample(
        name="hr-users",
        toml="",  # the stub pipeline's own users connection
        folder="import/user/internal",
        first={"day1.csv": PEOPLE + "cy@x.com,Cy,C,ann@x.com,Ops\n"},
        second={"day2.csv": PEOPLE_HEADER + "ann@x.com,Ann,Renamed,,Sales\nbob@x.com,Bob,B,ann@x.com,Ops\n"},
        bad_header={"h.csv": "Email,First Name,Department\nann@x.com,Ann,Sales\n"},
        bad_row={"r.csv": PEOPLE + "not-an-email,Dee,D,,Ops\n"},
        bad_line=4,
        bad_column="Email",
        # Its assign step: the second delivery moves Bob out of the group, which undo gives back.
        rules='[[rules]]\ngroup = "Sales"\nattributes = { department = "Sales" }\nprograms = ["Onboarding"]\n',
        people=False,
    ),
    "hierarchy": Sample(
        name="hr",
        toml=f'[[connections]]\nname = "hr"\nkind = "hierarchy"\n{_HIER_MAPPING}',
        rules='[[rules]]\ngroup = "Sales"\nunit = "SALES"\ndescendants = true\nprograms = ["Onboarding"]\n',
        folder="import/hierarchy",
        first={"org.csv": _ORG, "pos.csv": _POS, "user.csv": _USER + "e1,e1@x.com,E,One,SALES,REP,\n"},
        second={
            "org.csv": "Unit ID,Unit,Parent ID\nSALES,Sales and more,\nEAST,East,SALES\n",
            "pos.csv": _POS,
            "user.csv": _USER + "e1,e1@x.com,E,Moved,EAST,REP,\n",
        },
        bad_header={"org.csv": _ORG, "pos.csv": _POS, "user.csv": "Employee ID,First\ne1,E\n"},
        bad_row={"org.csv": _ORG, "pos.csv": _POS, "user.csv": _USER + "e1,e1@x.com,E,One,NOWHERE,REP,\n"},
        bad_line=2,
        bad_column="Unit ID",
        people=False,
    ),
    "hmm": Sample(
        name="hmm",
        toml='[[connections]]\nname = "hmm"\nkind = "hmm"\ntrigger = "on_schedule"\n',
        folder="import/hmm",
        first={
            "hmm12_metadata.csv": _HMM_META + _course("C1", "One") + _course("C2", "Two"),
            "client_hmm12_20260101.csv": _HMM_PROGRESS + _progress("ann@x.com", "C1", first="1/1/2026"),
        },
        second={
            "hmm12_metadata.csv": _HMM_META + _course("C1", "One again") + _course("C2", "Two"),
            "client_hmm12_20260102.csv": _HMM_PROGRESS
            + _progress("ann@x.com", "C1", completed="1/2/2026", first="1/1/2026")
            + _progress("bob@x.com", "C2", first="1/2/2026"),
        },
        bad_header={"client_hmm12_20260103.csv": "Username,Completion Date\nann@x.com,\n"},
        bad_row={"client_hmm12_20260104.csv": _HMM_PROGRESS + _progress("ann@x.com", "C1", first="someday")},
        bad_line=2,
        bad_column="First Accessed Date",
    ),
    "xapi": Sample(
        name="lrs",
        toml=_XAPI_TOML,
        folder="import/xapi",
        first={"a.csv": _XAPI + f"ann@x.com,{_DONE},https://x.test/c1,0.5,2026-11-01\n"},
        second={"b.csv": _XAPI + f"bob@x.com,{_DONE},https://x.test/c1,0.7,2026-11-02\n"},
        bad_header={"h.csv": "Email,Verb\nann@x.com,x\n"},
        bad_row={"r.csv": _XAPI + f"ann@x.com,{_DONE},https://x.test/c1,high,2026-11-01\n"},
        bad_line=2,
        bad_column="Score",
    ),
    "nicknames": Sample(
        name="nicks",
        toml='[[connections]]\nname = "nicks"\nkind = "nicknames"\nattribute = "alias"\n',
        folder="import/nicknames",
        first={"n1.csv": "Email,Nickname\nann@x.com,Annie\n"},
        second={"n2.csv": "Email,Nickname\nann@x.com,Nan\nbob@x.com,Bobby\n"},
        bad_header={"h.csv": "Email,Alias\nann@x.com,A\n"},
        bad_row={"r.csv": "Email,Nickname\nann@x.com,Annie\nbob@x.com,\n"},
        bad_line=3,
        bad_column="Nickname",
    ),
    "getabstract": Sample(
        name="ga",
        toml='[[connections]]\nname = "ga"\nkind = "getabstract"\ntrigger = "on_schedule"\n',
        folder="import/getabstract",
        first={"report_export_2026_01_01.xlsx": _report(_GA, [("ann@x.com", 11, "2026-01-01", "Eleven")])},
        second={
            "report_export_2026_01_02.xlsx": _report(
                _GA, [("ann@x.com", 11, "2026-01-02", "Eleven"), ("bob@x.com", 11, "2026-01-02", "Eleven")]
            )
        },
        bad_header={"report_export_2026_01_03.xlsx": _report(_GA[:3], [("ann@x.com", 11, "x", "x")])},
        bad_row={"report_export_2026_01_04.xlsx": _report(_GA, [("ann@x.com", 12, "someday", "Twelve")])},
        bad_line=2,
        bad_column="downloadDate",
    ),
    "linkedin_learning": Sample(
        name="linkedin",
        toml=linkedin_toml(LINKEDIN_URL),
        folder="vendor/linkedin",
        first=_linkedin(
            [course(1, skills=("Python",)), course(2)], [activity("ann@x.com", 1, seconds=600, progress=50)]
        ),
        # Course 1 renamed, course 2 gone from the catalog (retired), Ann completes course 1 (its skill).
        second=_linkedin(
            [renamed(course(1, skills=("Python",)), "One again")],
            [
                activity("ann@x.com", 1, seconds=900, progress=100, completions=1),
                activity("bob@x.com", 2, seconds=60, progress=10),
            ],
        ),
        bad_header={},  # the fetch writes the file's header itself
        bad_row=_linkedin([course(1), renamed(course(2), "")], []),
        bad_line=3,
        bad_column="title",
        api=True,
    ),
}
