"""What the Workday tests share: the mapping of Get_Workers paths, a connection aimed at the tenant
of tests/workday_server.py, and a fetch spec for it."""

from __future__ import annotations

from typing import Any

from schemas.workday import WorkdayConfig
from tests.workday_server import TENANT, USER
from workers.sources import FetchSpec

MANAGER_PATH = (
    "Management_Chain_Data/Worker_Supervisory_Management_Chain_Data/Management_Chain_Data[last()]/"
    "Manager_Reference/ID[@type='Employee_ID']"
)
MAPPING = {
    "email": "Personal_Data/Contact_Data/Email_Address_Data/Email_Address",
    "first_name": "Personal_Data/Name_Data/Legal_Name_Data/Name_Detail_Data/First_Name",
    "last_name": "Personal_Data/Name_Data/Legal_Name_Data/Name_Detail_Data/Last_Name",
    "manager": MANAGER_PATH,
    "state": "Employment_Data/Worker_Status_Data/Active",
    "employee_id": "Worker_Reference/ID[@type='Employee_ID']",
    "title": "Employment_Data/Worker_Job_Data/Position_Data/Business_Title",
}


def config(url: str, **extra: Any) -> WorkdayConfig:
    return WorkdayConfig.model_validate(
        {
            "base_url": url,
            "tenant": TENANT,
            "username": USER,
            "password_env": "WORKDAY_PASSWORD",
            "exclude_inactive_workers": False,
            "exclude_contingent_workers": True,
            "page_size": 400,
            "backoff_s": 0.01,
            "max_backoff_s": 0.05,
            **extra,
        }
    )


def spec(url: str, mapping: dict[str, str] = MAPPING, source: str = "workday", **extra: Any) -> FetchSpec:
    return FetchSpec.from_mapping("workday-workers", source, config(url, **extra), mapping)  # type: ignore[arg-type]


def workday_toml(url: str, extra: str = "", workday_extra: str = "") -> str:
    mapping = "\n".join(f'{a} = "{p}"' for a, p in MAPPING.items())
    return f"""
[[connections]]
name = "workday-workers"
kind = "users"
source = "workday"
full_feed = true
max_deactivate = "20%"
{extra}
[connections.mapping]
{mapping}

[connections.workday]
base_url = "{url}"
tenant = "{TENANT}"
username = "{USER}"
password_env = "WORKDAY_PASSWORD"
exclude_inactive_workers = false
exclude_contingent_workers = true
page_size = 400
backoff_s = 0.01
max_backoff_s = 0.05
{workday_extra}"""


UNIT_PATH = (
    "Organization_Data/Worker_Organization_Data[Organization_Data/Organization_Type_Reference/ID='SUPERVISORY']/"
    "Organization_Reference/ID[@type='Organization_Reference_ID']"
)
#: The hierarchy kind's mappings with Workday paths: units into Get_Organizations' Organization_Data,
#: positions and people into Get_Workers' Worker_Data.
HIERARCHY = {
    "org": {
        "key": "Reference_ID",
        "name": "Name",
        "parent": "Hierarchy_Data/Superior_Organization_Reference/ID[@type='Organization_Reference_ID']",
    },
    "pos": {
        "key": "Employment_Data/Worker_Job_Data/Position_Data/Position_ID",
        "name": "Employment_Data/Worker_Job_Data/Position_Data/Position_Title",
    },
    "user": {
        "key": "Worker_Reference/ID[@type='Employee_ID']",
        "email": MAPPING["email"],
        "first_name": MAPPING["first_name"],
        "last_name": MAPPING["last_name"],
        "unit": UNIT_PATH,
        "position": "Employment_Data/Worker_Job_Data/Position_Data/Position_ID",
        "manager": MANAGER_PATH,
    },
}


def hierarchy_toml(url: str, extra: str = "", workday_extra: str = "") -> str:
    """A hierarchy connection (``workday-hr``) pulling its bundle from the tenant at ``url``."""
    files = "\n".join(
        f"[connections.files.{part}.mapping]\n" + "\n".join(f'{a} = "{p}"' for a, p in mapping.items())
        for part, mapping in HIERARCHY.items()
    )
    return f"""
[[connections]]
name = "workday-hr"
kind = "hierarchy"
source = "workday"
full_feed = true
max_deactivate = "20%"
{extra}
{files}

[connections.workday]
base_url = "{url}"
tenant = "{TENANT}"
username = "{USER}"
password_env = "WORKDAY_PASSWORD"
exclude_inactive_workers = true
exclude_contingent_workers = true
page_size = 5
backoff_s = 0.01
max_backoff_s = 0.05
{workday_extra}"""
