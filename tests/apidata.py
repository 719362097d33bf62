"""What the Graph tests share: a mapping, a tree of people as Graph returns them, a fetch spec aimed at a
server of ours, and a reader for the file written."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from schemas.api import ApiConfig
from tests.api_vendors import TENANT
from tests.apiservers import CLIENT_ID, Served
from workers.sources import FetchSpec

MAPPING = {
    "email": "mail",
    "first_name": "givenName",
    "last_name": "surname",
    "manager": "manager.mail",
    "state": "accountEnabled",
    "worker_type": "employeeType",
}
HEADER = ["mail", "givenName", "surname", "manager.mail", "accountEnabled", "employeeType"]


def people(n: int) -> list[dict[str, Any]]:
    """n people in a tree (each reports to (i - 1) // 5), two disabled, one contingent worker."""
    found = []
    for i in range(n):
        person: dict[str, Any] = {
            "id": f"00000000-0000-0000-0000-{i:012d}",
            "mail": f"person{i}@contoso.example",
            "givenName": f"Given{i}",
            "surname": f"Surname{i}",
            "displayName": f"Given{i} Surname{i}",
            "accountEnabled": i not in (3, 4),
            "employeeType": "Contingent" if i == 9 else "Employee",
            "jobTitle": "Engineer",
        }
        if i:
            person["_manager"] = f"00000000-0000-0000-0000-{(i - 1) // 5:012d}"
        found.append(person)
    return found


def spec(served: Served, mapping: dict[str, str] = MAPPING, **api: Any) -> FetchSpec:
    config = ApiConfig.model_validate(
        {
            "client_id": CLIENT_ID,
            "client_secret_env": "GRAPH_CLIENT_SECRET",
            "tenant": TENANT,
            "base_url": served.url,
            "token_url": f"{served.url}/{TENANT}/oauth2/v2.0/token",
            # Short backoff: the tests wait for what the server says (Retry-After), not for our defaults.
            "backoff_s": 0.01,
            "max_backoff_s": 0.05,
            **api,
        }
    )
    return FetchSpec.from_mapping("entra-users", "msgraph", config, mapping)


def read(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.reader(f))
