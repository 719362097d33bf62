"""The console's run and rerun buttons on a connection with an API source: the run pulls from a
Graph-shaped server of ours, and its page says what was pulled; the secret is on no page."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.apidata import apply, entra_toml, graph_with_secret
from tests.apiservers import CLIENT_SECRET, Served
from tests.conftest import sql
from tests.console.conftest import form_token
from tests.stubpipeline import Pipeline

__all__ = ["graph_with_secret"]  # the fixture "graph", used by name


def test_the_run_and_rerun_buttons_pull_from_the_api_and_the_run_page_says_what_was_pulled(
    as_admin: TestClient, pipeline: Pipeline, graph: Served
) -> None:
    apply(entra_toml(graph.url))

    r = as_admin.post("/connections/entra-users/sync", data={"csrf": form_token(as_admin)}, follow_redirects=False)
    assert r.status_code == 303
    run_id = int(r.headers["location"].rsplit("/", 1)[1])
    pipeline.drain()
    page = as_admin.get(f"/runs/{run_id}").text
    assert "Pulled from the API: 250 records in 3 pages (3 requests, " in page
    assert "api/msgraph/entra-users-" in page and CLIENT_SECRET not in page
    assert CLIENT_SECRET not in as_admin.get("/connections/entra-users").text

    graph.vendor.people = graph.vendor.people[:240]
    r = as_admin.post("/connections/entra-users/rerun", data={"csrf": form_token(as_admin)}, follow_redirects=False)
    assert r.status_code == 303
    rerun_id = int(r.headers["location"].rsplit("/", 1)[1])
    pipeline.drain()
    assert sql("SELECT trigger, status, rerun_of FROM sync.runs WHERE id = %s", (rerun_id,)) == [
        ("rerun", "completed", run_id)
    ]
    assert "Pulled from the API: 240 records in 3 pages" in as_admin.get(f"/runs/{rerun_id}").text
    assert sql("SELECT count(*) FROM lms.users WHERE active")[0][0] == 238
