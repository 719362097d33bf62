"""What the Graph tests share: a mapping, a tree of people as Graph returns them, a fetch spec aimed at a
server of ours, and a reader for the file written."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from producers.commands import apply_connections
from schemas.api import ApiConfig
from schemas.connections import load_connections_toml
from tests.api_vendors import TENANT, GraphVendor
from tests.apiservers import CLIENT_ID, CLIENT_SECRET, Served
from tests.stubpipeline import USERS_TOML
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


def contacts(n: int) -> list[dict[str, Any]]:
    found = []
    for i in range(n):
        contact: dict[str, Any] = {
            "Id": f"003RO{i:013d}",
            "Email": f"contact{i}@example.org",
            "FirstName": f"First{i}",
            "LastName": f"Last{i}",
            "IsActive": i != 2,
            "Department": "Sales",
        }
        contact["ReportsTo"] = None if i == 0 else {"Email": f"contact{(i - 1) // 4}@example.org"}
        found.append(contact)
    return found


def entra_toml(url: str, extra: str = "", api_extra: str = "") -> str:
    return f"""
[[connections]]
name = "entra-users"
kind = "users"
source = "msgraph"
full_feed = true
max_deactivate = "20%"
{extra}
[connections.mapping]
email = "mail"
first_name = "givenName"
last_name = "surname"
manager = "manager.mail"
state = "accountEnabled"
worker_type = "employeeType"

[connections.api]
client_id = "{CLIENT_ID}"
client_secret_env = "GRAPH_CLIENT_SECRET"
tenant = "{TENANT}"
base_url = "{url}"
token_url = "{url}/{TENANT}/oauth2/v2.0/token"
backoff_s = 0.01
max_backoff_s = 0.05
{api_extra}"""


@pytest.fixture(name="graph")
def graph_with_secret(monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    """A Graph-shaped server of 250 people, its client secret in the environment."""
    monkeypatch.setenv("GRAPH_CLIENT_SECRET", CLIENT_SECRET)
    with Served(GraphVendor(people=people(250))) as served:
        yield served


def apply(text: str) -> list[tuple[str, str]]:
    return apply_connections(load_connections_toml(USERS_TOML + text))
