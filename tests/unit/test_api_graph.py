"""The Microsoft Graph source against a local server of ours that speaks Graph's protocol: what it
sends (token request, $select, $expand, $top, the nextLink whole), and what it writes."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from schemas.settings import Settings
from tests.api_vendors import TENANT, GraphVendor
from tests.apidata import HEADER, people, read, spec
from tests.apiservers import CLIENT_SECRET, Served, serve
from workers.http import FetchError
from workers.sources import FetchResult, fetch


@pytest.fixture
def api_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("GRAPH_CLIENT_SECRET", CLIENT_SECRET)
    return Settings(drop_dir=tmp_path / "drop", store_dir=tmp_path / "store", keys_dir=tmp_path / "keys")


@pytest.fixture
def graph() -> Iterator[Served]:
    yield from serve(GraphVendor(people=people(250)))


def run(served: Served, settings: Settings, tmp_path: Path, **api: Any) -> FetchResult:
    return fetch(spec(served, **api), settings, tmp_path / "users.csv")


def nothing_written(tmp_path: Path) -> bool:
    return not any(p.name.startswith(("users.csv", ".users.csv")) for p in tmp_path.iterdir())


def test_every_page_is_written_under_the_mapped_fields_and_graph_receives_what_it_documents(
    graph: Served, api_settings: Settings, tmp_path: Path
) -> None:
    result = run(graph, api_settings, tmp_path)

    rows = read(result.path)
    assert rows[0] == HEADER
    assert (result.rows, result.pages, len(rows) - 1) == (250, 3, 250)
    assert result.sha256 == hashlib.sha256(result.path.read_bytes()).hexdigest()
    by_mail = {r[0]: r for r in rows[1:]}
    assert by_mail["person7@contoso.example"] == [
        "person7@contoso.example",
        "Given7",
        "Surname7",
        "person1@contoso.example",  # manager.mail, through $expand
        "ACTIVE",
        "Employee",
    ]
    assert by_mail["person0@contoso.example"][3] == "", "the top of the tree has no manager"
    assert [r[0] for r in rows[1:] if r[4] == "INACTIVE"] == ["person3@contoso.example", "person4@contoso.example"]
    assert [r[0] for r in rows[1:] if r[5] == "Contingent"] == ["person9@contoso.example"]

    vendor = graph.vendor
    (token,) = vendor.token_requests()
    assert token.path == f"/{TENANT}/oauth2/v2.0/token"
    assert token.form["grant_type"] == ["client_credentials"]
    assert token.form["scope"] == ["https://graph.microsoft.com/.default"]
    first, *following = vendor.api_requests()
    assert set(first.query["$select"][0].split(",")) == {
        "id",
        "mail",
        "givenName",
        "surname",
        "accountEnabled",
        "employeeType",
    }
    assert first.query["$expand"] == ["manager($select=mail)"]
    assert first.query["$top"] == ["999"]
    assert len(following) == 2 and all(set(s.query) == {"$skiptoken"} for s in following)
    assert all(s.headers["Authorization"].startswith("Bearer tok-1-") for s in vendor.api_requests())


def test_an_expired_token_mid_run_is_fetched_again_once_and_the_run_goes_on(
    graph: Served, api_settings: Settings, tmp_path: Path
) -> None:
    graph.vendor.expire_tokens_after(pages=1)

    result = run(graph, api_settings, tmp_path)

    assert result.rows == 250
    assert len(graph.vendor.token_requests()) == 2
    assert [s.status for s in graph.vendor.api_requests()] == [200, 401, 200, 200]


def test_a_token_refused_again_after_its_refresh_fails_the_fetch_and_writes_nothing(
    graph: Served, api_settings: Settings, tmp_path: Path
) -> None:
    graph.vendor.fail("skiptoken", 401, times=2)

    with pytest.raises(FetchError, match=r"refused a freshly issued token too \(HTTP 401"):
        run(graph, api_settings, tmp_path)

    assert len(graph.vendor.token_requests()) == 2, "one refresh, not a loop"
    assert nothing_written(tmp_path)


def test_a_429_with_retry_after_is_waited_out_before_the_page_is_asked_again(
    graph: Served, api_settings: Settings, tmp_path: Path
) -> None:
    graph.vendor.fail("skiptoken", 429, times=1, headers={"Retry-After": "1"})

    result = run(graph, api_settings, tmp_path)

    assert result.rows == 250
    requests = graph.vendor.api_requests()
    assert [s.status for s in requests] == [200, 429, 200, 200]
    # The backoff is 0.01 s here: only the server's Retry-After explains a wait of a second.
    assert requests[2].at - requests[1].at >= 1.0


def test_a_retry_after_longer_than_allowed_fails_at_once(graph: Served, api_settings: Settings, tmp_path: Path) -> None:
    graph.vendor.fail("skiptoken", 503, times=1, headers={"Retry-After": "3600"})

    with pytest.raises(FetchError, match=r"Retry-After 3600 s, longer than max_retry_after_s \(300 s\)"):
        run(graph, api_settings, tmp_path)

    assert len(graph.vendor.api_requests()) == 2
    assert nothing_written(tmp_path)


def test_a_5xx_that_recovers_within_the_retries_loses_no_page(
    graph: Served, api_settings: Settings, tmp_path: Path
) -> None:
    graph.vendor.fail("skiptoken", 502, times=2)

    result = run(graph, api_settings, tmp_path)

    assert (result.rows, result.pages) == (250, 3)
    assert [s.status for s in graph.vendor.api_requests()] == [200, 502, 502, 200, 200]
    assert len({r[0] for r in read(result.path)[1:]}) == 250


def test_a_5xx_that_does_not_recover_fails_with_one_sentence_and_writes_nothing(
    graph: Served, api_settings: Settings, tmp_path: Path
) -> None:
    graph.vendor.fail("skiptoken", 500, times=100)

    with pytest.raises(FetchError) as raised:
        run(graph, api_settings, tmp_path, max_retries=2)

    assert str(raised.value) == (
        "entra-users: GET /v1.0/users failed 3 times, last with HTTP 500; the fetch was cut off and nothing "
        "was imported: check the service's status and run it again"
    )
    assert len(graph.vendor.api_requests()) == 1 + 3
    assert nothing_written(tmp_path)


def test_a_page_cut_in_the_middle_is_asked_again(graph: Served, api_settings: Settings, tmp_path: Path) -> None:
    graph.vendor.cut("skiptoken", times=1)

    result = run(graph, api_settings, tmp_path)

    assert (result.rows, result.pages) == (250, 3)
    assert len(graph.vendor.api_requests()) == 4


def test_a_page_cut_every_time_fails_the_fetch_and_writes_nothing(
    graph: Served, api_settings: Settings, tmp_path: Path
) -> None:
    graph.vendor.cut("skiptoken", times=100)

    with pytest.raises(FetchError, match=r"failed 2 times, last with network error RemoteProtocolError"):
        run(graph, api_settings, tmp_path, max_retries=1)

    assert nothing_written(tmp_path)


def test_a_record_without_the_key_is_still_written_for_the_import_to_reject(
    api_settings: Settings, tmp_path: Path
) -> None:
    found = people(5)
    del found[2]["mail"]
    with Served(GraphVendor(people=found)) as served:
        result = run(served, api_settings, tmp_path)

    rows = read(result.path)
    assert result.rows == 5
    assert rows[3][:3] == ["", "Given2", "Surname2"], "the row stays, with its position, for the row error"


def test_a_paging_link_to_another_host_is_not_followed_with_the_token(
    graph: Served, api_settings: Settings, tmp_path: Path
) -> None:
    graph.vendor.base_url = graph.url.replace("127.0.0.1", "localhost")  # where its nextLinks point

    with pytest.raises(FetchError, match=r"not on base_url"):
        run(graph, api_settings, tmp_path)

    assert len(graph.vendor.api_requests()) == 1
    assert nothing_written(tmp_path)


def test_the_page_cap_stops_before_asking_for_a_page_past_it(
    graph: Served, api_settings: Settings, tmp_path: Path
) -> None:
    with pytest.raises(FetchError, match=r"more than max_pages \(2\) pages"):
        run(graph, api_settings, tmp_path, max_pages=2)

    assert len(graph.vendor.api_requests()) == 2
    assert nothing_written(tmp_path)


def test_the_record_cap_stops_the_fetch(graph: Served, api_settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match=r"more than max_records \(150\) records"):
        run(graph, api_settings, tmp_path, max_records=150)

    assert nothing_written(tmp_path)


def test_a_token_endpoint_that_is_briefly_unavailable_is_asked_again(
    graph: Served, api_settings: Settings, tmp_path: Path
) -> None:
    graph.vendor.fail("/oauth2/v2.0/token", 503, times=1, headers={"Retry-After": "0"})

    result = run(graph, api_settings, tmp_path)

    assert result.rows == 250
    assert [s.status for s in graph.vendor.token_requests()] == [503, 200]


def test_a_secret_refused_by_the_token_endpoint_is_one_sentence_without_it(
    graph: Served, api_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRAPH_CLIENT_SECRET", "a-wrong-secret-value")

    with pytest.raises(FetchError) as raised:
        run(graph, api_settings, tmp_path)

    assert "refused the credentials (HTTP 401, error 'invalid_client')" in str(raised.value)
    assert "GRAPH_CLIENT_SECRET" in str(raised.value)
    assert "a-wrong-secret-value" not in str(raised.value)
    assert graph.vendor.api_requests() == []


def test_a_secret_missing_from_the_environment_is_named_not_guessed(
    graph: Served, api_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GRAPH_CLIENT_SECRET")

    with pytest.raises(FetchError, match=r"the environment variable GRAPH_CLIENT_SECRET \(client_secret_env\) is not"):
        run(graph, api_settings, tmp_path)

    assert graph.vendor.seen == []
