"""``[connections.workday]``: how a connection reaches a Workday tenant, for workers in
(``source = "workday"``: SOAP ``Get_Workers``; ``source = "workday_raas"``: a RaaS report) and for
skills out (a ``skills_export`` with a ``[connections.workday]`` destination).

```toml
[connections.workday]
base_url = "https://wd3-impl-services1.workday.com"   # the tenant's web-services host
tenant = "contoso4"
username = "ISU_feedsync"          # the Integration System User; sent as ISU_feedsync@contoso4
password_env = "WORKDAY_PASSWORD"  # the environment variable that holds its password (never the password)
version = "v40.1"                  # Human_Resources (and Talent) web-service version
exclude_inactive_workers = false   # true: only active workers (then nobody is deactivated by state)
exclude_contingent_workers = true
# report_url = "https://wd3-impl-services1.workday.com/ccx/service/customreport2/contoso4/ISU_feedsync/Workers?format=json"
```

The password is read from the environment when a request is sent, never stored, logged or shown.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.api import _url_problem
from schemas.config_parts import KeyProblem

WorkdaySourceName = Literal["workday", "workday_raas"]
WORKDAY_SOURCES = ("workday", "workday_raas")
DEFAULT_VERSION = "v40.1"

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_TENANT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_SECRET_KEYS = ("password", "secret", "client_secret", "token")


class WorkdayConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    base_url: str
    tenant: str
    username: str = Field(min_length=1, max_length=255)
    password_env: str
    version: str = Field(default=DEFAULT_VERSION, pattern=r"^v\d{2}\.\d$")
    # Request_Criteria of Get_Workers.
    exclude_inactive_workers: bool = True
    exclude_contingent_workers: bool = False
    exclude_employees: bool = False
    # Response_Filter/As_Of_Effective_Date: the day the workers are read as of (default: today).
    as_of_effective_date: date | None = None
    # Incremental pulls: only workers changed since the last completed pull (Transaction_Log_Criteria
    # Updated_From/Updated_Through), with a full pull (the one that may deactivate) every N days.
    incremental: bool = False
    full_pull_every_days: int = Field(default=7, ge=1, le=365)
    # The hierarchy kind: the Organization_Type_ID of the organisations Get_Organizations pulls as units.
    organization_type: str = Field(default="SUPERVISORY", pattern=r"^[A-Za-z0-9_]{1,64}$")
    # Response_Filter/Count: workers a page (Workday allows at most 999).
    page_size: int = Field(default=100, ge=1, le=999)
    # A RaaS report (source = "workday_raas"): its JSON URL, records under Report_Entry.
    report_url: str | None = None
    # Skills out: the profile attribute that holds each person's Workday worker ID, and its ID type.
    worker_id_attribute: str = Field(default="employee_id", pattern=r"^[a-z][a-z0-9_]{0,62}$")
    worker_id_type: Literal["Employee_ID", "Contingent_Worker_ID", "WID"] = "Employee_ID"
    # Skills out: people per batch (one Manage_Skills request a person); each batch's results are logged.
    batch_size: int = Field(default=50, ge=1, le=500)
    # The same limits the HTTP layer applies to every API (schemas/api.py).
    max_pages: int = Field(default=10_000, ge=1)
    max_records: int = Field(default=2_000_000, ge=1)
    connect_timeout_s: float = Field(default=10.0, gt=0, le=300)
    read_timeout_s: float = Field(default=300.0, gt=0, le=3600)
    max_retries: int = Field(default=5, ge=0, le=20)
    backoff_s: float = Field(default=1.0, gt=0, le=60)
    max_backoff_s: float = Field(default=60.0, gt=0, le=3600)
    max_retry_after_s: float = Field(default=300.0, ge=0, le=3600)
    ca_bundle: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_literal_secret(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in _SECRET_KEYS:
                if key in data:
                    raise KeyProblem(
                        f"{key} is never written in the connections file: keep the Integration System User's "
                        'password in an environment variable and name it, e.g. password_env = "WORKDAY_PASSWORD"',
                        "workday",
                        key,
                    )
        return data

    @field_validator("password_env")
    @classmethod
    def _env_name(cls, v: str) -> str:
        if not _ENV_NAME.match(v):
            raise KeyProblem(
                "password_env names an environment variable (letters, digits and '_', e.g. 'WORKDAY_PASSWORD'), "
                "never the password itself",
                "workday",
                "password_env",
            )
        return v

    @field_validator("tenant")
    @classmethod
    def _tenant(cls, v: str) -> str:
        if not _TENANT.match(v):
            raise ValueError("tenant is the Workday tenant's name as in its URLs, e.g. 'contoso4'")
        return v

    @field_validator("base_url", "report_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and (problem := _url_problem(v)):
            raise ValueError(f"the URL {problem}")
        return v.rstrip("/") if v is not None else None

    @field_validator("ca_bundle")
    @classmethod
    def _file(cls, v: str | None) -> str | None:
        if v is not None and (not v.strip() or "\x00" in v or "\n" in v or "-----BEGIN" in v):
            raise ValueError("names a file (a path), never the certificate itself")
        return v

    @model_validator(mode="after")
    def _limits(self) -> WorkdayConfig:
        if self.max_backoff_s < self.backoff_s:
            raise KeyProblem("max_backoff_s is shorter than backoff_s", "workday", "max_backoff_s")
        if self.report_url is not None and urlsplit(self.report_url)[:2] != urlsplit(self.base_url)[:2]:
            raise KeyProblem(
                "report_url is not on base_url's host: the password is only sent to the tenant's own host",
                "workday",
                "report_url",
            )
        if self.report_url is not None and "/customreport2/" not in urlsplit(self.report_url).path:
            raise KeyProblem(
                "report_url is a RaaS report's URL, e.g. 'https://<host>/ccx/service/customreport2/<tenant>/<owner>/"
                "<report>?format=json'",
                "workday",
                "report_url",
            )
        return self

    @property
    def user(self) -> str:
        """The user name Workday expects: ``user@tenant`` (kept as written when it already has a tenant)."""
        return self.username if "@" in self.username else f"{self.username}@{self.tenant}"

    def service_url(self, service: str) -> str:
        return f"{self.base_url}/ccx/service/{self.tenant}/{service}/{self.version}"

    def problems_for(self, source: str) -> list[tuple[str, str]]:
        """(key, sentence) for what ``source`` needs of this table and does not find."""
        if source == "workday_raas" and self.report_url is None:
            return [("report_url", "source 'workday_raas' needs report_url, the RaaS report's JSON URL")]
        if source not in WORKDAY_SOURCES:
            return [("source", f"source {source!r} does not read [connections.workday]")]
        return []
