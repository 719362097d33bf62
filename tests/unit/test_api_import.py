"""A file fetched from a Graph-shaped server is a feed like any other: the users kind imports it
through the stub-broker pipeline (real PostgreSQL), managers from ``manager.mail``, disabled
accounts inactive, a record without the key a row error at its own line while the others go on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from producers import queries
from producers.commands import apply_connections
from schemas.connections import load_connections_toml
from tests.api_vendors import GraphVendor
from tests.apidata import MAPPING, people, spec
from tests.apiservers import CLIENT_SECRET, Served
from tests.conftest import sql
from tests.stubpipeline import USERS_TOML, Pipeline
from workers.sources import fetch

ENTRA_TOML = """
[[connections]]
name = "entra-users"
kind = "users"
path = "import/user/entra/*.csv"
full_feed = true

[connections.mapping]
email = "mail"
first_name = "givenName"
last_name = "surname"
manager = "manager.mail"
state = "accountEnabled"
worker_type = "employeeType"
"""


def users() -> dict[str, dict[str, Any]]:
    rows = sql(
        """SELECT u.email, u.first_name, m.email, u.attributes, u.active
           FROM lms.users u LEFT JOIN lms.users m ON m.id = u.manager_id"""
    )
    return {r[0]: {"first": r[1], "manager": r[2], "attrs": r[3], "active": r[4]} for r in rows}


def test_a_fetched_graph_feed_imports_like_a_dropped_file(
    pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRAPH_CLIENT_SECRET", CLIENT_SECRET)
    apply_connections(load_connections_toml(USERS_TOML + ENTRA_TOML))
    found = people(250)
    del found[20]["mail"]  # a record without the key: the 21st record, line 22 of the file
    sink = pipeline.settings.drop_dir / "import/user/entra/entra-users.csv"
    sink.parent.mkdir(parents=True)
    with Served(GraphVendor(people=found)) as served:
        result = fetch(spec(served, MAPPING), pipeline.settings, sink)
    assert (result.rows, result.pages) == (250, 3)

    run_id = pipeline.import_files()

    run = queries.history()[0]
    assert run["run_id"] == run_id and run["status"] == "completed_with_errors", sql("SELECT plan FROM sync.runs")
    assert (run["counts"]["read"], run["counts"]["rejected"]) == (250, 1)
    assert [e["line"] for e in queries.errors(run_id)] == [22]
    u = users()
    assert len(u) == 249
    assert u["person7@contoso.example"]["manager"] == "person1@contoso.example"
    assert u["person0@contoso.example"]["manager"] is None
    assert sorted(e for e, p in u.items() if not p["active"]) == ["person3@contoso.example", "person4@contoso.example"]
    assert u["person9@contoso.example"]["attrs"] == {"worker_type": "Contingent"}
