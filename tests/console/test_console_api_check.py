"""The console's "API check" button on a connection with an API source: the page shows what
`feedsync api check` prints (fields found, the first 5 records through the mapping, masked, and
what the filters would leave out), writes nothing, and shows no secret and no whole value."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.apidata import apply, entra_toml, graph_with_secret
from tests.apiservers import CLIENT_SECRET, Served
from tests.conftest import sql
from tests.console.conftest import form_token
from tests.stubpipeline import Pipeline

__all__ = ["graph_with_secret"]  # the fixture "graph", used by name

FILTERS = '\n[connections.filters]\nexclude_values = { worker_type = ["Contingent"] }\n'


def test_the_api_check_button_shows_the_masked_preview_and_what_would_be_filtered_and_writes_nothing(
    as_admin: TestClient, pipeline: Pipeline, graph: Served
) -> None:
    # The filters table after the api table: the TOML's last table.
    apply(entra_toml(graph.url) + FILTERS)
    connection_page = as_admin.get("/connections/entra-users").text
    assert 'action="/connections/entra-users/api-check"' in connection_page
    runs_before = sql("SELECT count(*) FROM sync.runs")[0][0]

    r = as_admin.post("/connections/entra-users/api-check", data={"csrf": form_token(as_admin)})

    assert r.status_code == 200, r.text
    page = r.text
    assert "first page of msgraph: 100 records, more pages follow. Nothing was written." in page
    assert "accountEnabled, employeeType, givenName, id, mail, manager.mail, surname" in page
    table = page.split('id="api-preview"')[1].split("</table>")[0]
    assert table.count("<tr>") == 6  # the header and the first 5 records
    assert (
        "<td>pe***</td><td>Gi***</td><td>Su***</td><td>pe***</td><td>AC***</td><td>Em***</td><td>imported</td>" in table
    )
    # person9 (the 10th record) is the contingent worker: on the page, not among the five shown.
    assert "Filters: 1 of the 100 records of this page would be filtered out." in page
    assert "person1@contoso.example" not in page and "Given1" not in page and CLIENT_SECRET not in page
    assert sql("SELECT count(*) FROM sync.runs")[0][0] == runs_before
    assert sql("SELECT count(*) FROM sync.feed_files")[0][0] == 0
    assert sql("SELECT action, target, outcome FROM sync.audit WHERE action = 'api_check'") == [
        ("api_check", "entra-users", "ok")
    ]


def test_the_api_check_button_is_only_on_connections_with_an_api_source_and_needs_the_form_token(
    as_admin: TestClient, pipeline: Pipeline, graph: Served
) -> None:
    apply(entra_toml(graph.url))
    assert "/api-check" not in as_admin.get("/connections/hr-users").text
    r = as_admin.post("/connections/entra-users/api-check", data={"csrf": "forged"})
    assert r.status_code == 403
    assert graph.vendor.api_requests() == []
    r = as_admin.post("/connections/hr-users/api-check", data={"csrf": form_token(as_admin)})
    assert r.status_code == 502 and "the connection has no API source" in r.text
