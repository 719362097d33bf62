"""The Salesforce source against a local server of ours that speaks Salesforce's REST protocol: the
token response's instance_url, SOQL from the mapping, nextRecordsUrl, INVALID_SESSION_ID, limits."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from schemas.api import ApiConfig
from schemas.settings import Settings
from tests.api_vendors import SalesforceVendor
from tests.apidata import contacts
from tests.apiservers import CLIENT_ID, CLIENT_SECRET, Served, serve
from workers.http import FetchError
from workers.sources import FetchSpec, fetch

MAPPING = {"email": "Email", "first_name": "FirstName", "last_name": "LastName", "manager": "ReportsTo.Email"}


@pytest.fixture
def api_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("SF_CLIENT_SECRET", CLIENT_SECRET)
    return Settings(drop_dir=tmp_path / "drop", store_dir=tmp_path / "store", keys_dir=tmp_path / "keys")


@pytest.fixture
def org() -> Iterator[Served]:
    yield from serve(SalesforceVendor(people=contacts(250)))


def spec(served: Served, mapping: dict[str, str] = MAPPING, **api: Any) -> FetchSpec:
    keys = {
        "client_id": CLIENT_ID,
        "client_secret_env": "SF_CLIENT_SECRET",
        # No base_url: the API is where the token response's instance_url says.
        "token_url": f"{served.url}/services/oauth2/token",
        "backoff_s": 0.01,
        "max_backoff_s": 0.05,
        **api,
    }
    return FetchSpec.from_mapping("sf-contacts", "salesforce", ApiConfig.model_validate(keys), mapping)


def read(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def test_contacts_are_queried_by_soql_from_the_mapping_and_every_page_followed(
    org: Served, api_settings: Settings, tmp_path: Path
) -> None:
    result = fetch(spec(org), api_settings, tmp_path / "contacts.csv")

    rows = read(result.path)
    assert rows[0] == ["Email", "FirstName", "LastName", "ReportsTo.Email"]
    assert (result.rows, result.pages) == (250, 3)
    assert rows[1] == ["contact0@example.org", "First0", "Last0", ""], "a null ReportsTo is an empty cell"
    assert rows[10] == ["contact9@example.org", "First9", "Last9", "contact2@example.org"]

    (token,) = org.vendor.token_requests()
    assert token.form["grant_type"] == ["client_credentials"] and token.form["client_id"] == [CLIENT_ID]
    first, *following = org.vendor.api_requests()
    assert first.path == "/services/data/v62.0/query"
    assert first.query["q"] == ["SELECT Id, Email, FirstName, LastName, ReportsTo.Email FROM Contact"]
    assert [s.path for s in following] == [
        "/services/data/v62.0/query/01gFAKE0-100",
        "/services/data/v62.0/query/01gFAKE0-200",
    ]
    assert all(s.query == {} for s in following), "nextRecordsUrl is followed as given"
    assert {s.headers["Sforce-Query-Options"] for s in org.vendor.api_requests()} == {"batchSize=999"}


def test_users_with_is_active_become_state_values_the_users_kind_knows(
    org: Served, api_settings: Settings, tmp_path: Path
) -> None:
    result = fetch(spec(org, {"email": "Email", "state": "IsActive"}, object="User"), api_settings, tmp_path / "u.csv")

    rows = read(result.path)
    assert org.vendor.api_requests()[0].query["q"] == ["SELECT Id, Email, IsActive FROM User"]
    assert [r[1] for r in rows[1:4]] == ["ACTIVE", "ACTIVE", "INACTIVE"]


def test_an_invalid_session_mid_run_fetches_a_token_once_more(
    org: Served, api_settings: Settings, tmp_path: Path
) -> None:
    org.vendor.expire_tokens_after(pages=2)

    result = fetch(spec(org), api_settings, tmp_path / "contacts.csv")

    assert result.rows == 250
    assert len(org.vendor.token_requests()) == 2
    assert [s.status for s in org.vendor.api_requests()] == [200, 200, 401, 200]


def test_the_daily_api_limit_fails_at_once_without_retries(org: Served, api_settings: Settings, tmp_path: Path) -> None:
    org.vendor.faults.clear()
    org.vendor.fail("01gFAKE", 403, times=1)
    org.vendor.error_code = "REQUEST_LIMIT_EXCEEDED"

    with pytest.raises(FetchError, match=r"24-hour API request limit is used up"):
        fetch(spec(org), api_settings, tmp_path / "contacts.csv")

    assert len(org.vendor.api_requests()) == 2
    assert os.listdir(tmp_path) == []


def test_a_mapped_field_that_is_no_salesforce_name_is_refused_before_any_query(
    org: Served, api_settings: Settings, tmp_path: Path
) -> None:
    with pytest.raises(FetchError, match=r"the mapped field 'Email FROM User --' is not a Salesforce field name"):
        fetch(spec(org, {"email": "Email FROM User --"}), api_settings, tmp_path / "contacts.csv")

    assert org.vendor.api_requests() == []


def test_jwt_bearer_signs_an_assertion_for_the_user_with_the_key_file(
    org: Served, api_settings: Settings, tmp_path: Path
) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    api_settings.keys_dir.mkdir(parents=True)
    key_file = api_settings.keys_dir / "sf-jwt.pem"
    key_file.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_file.chmod(0o600)
    public = RSAKey.import_key(
        private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    claims_seen: list[dict[str, Any]] = []

    def verify(assertion: str) -> dict[str, Any] | None:
        try:
            claims = jwt.decode(assertion, public, algorithms=["RS256"]).claims
        except (JoseError, ValueError):
            return None
        claims_seen.append(claims)
        return claims

    org.vendor.verify_assertion = verify
    keys: dict[str, Any] = {
        "private_key_file": "sf-jwt.pem",
        "username": "integration@example.org",
        "client_secret_env": None,
    }
    result = fetch(spec(org, **keys), api_settings, tmp_path / "contacts.csv")

    assert result.rows == 250
    (claims,) = claims_seen
    assert (claims["iss"], claims["sub"], claims["aud"]) == (
        CLIENT_ID,
        "integration@example.org",
        "https://login.salesforce.com",
    )
    assert 0 < claims["exp"] - claims["iat"] <= 180
    (token,) = org.vendor.token_requests()
    assert "client_secret" not in token.form


def test_an_unreadable_key_file_is_one_sentence_naming_it(org: Served, api_settings: Settings, tmp_path: Path) -> None:
    keys: dict[str, Any] = {
        "private_key_file": "missing.pem",
        "username": "integration@example.org",
        "client_secret_env": None,
    }

    with pytest.raises(
        FetchError, match=r"the private key .*missing\.pem cannot be read \(No such file or directory\)"
    ):
        fetch(spec(org, **keys), api_settings, tmp_path / "contacts.csv")

    assert org.vendor.seen == []


def test_a_key_file_others_can_read_is_refused(org: Served, api_settings: Settings, tmp_path: Path) -> None:
    api_settings.keys_dir.mkdir(parents=True)
    key_file = api_settings.keys_dir / "sf-jwt.pem"
    key_file.write_bytes(b"-----BEGIN PRIVATE KEY-----\n")
    key_file.chmod(0o644)
    keys: dict[str, Any] = {
        "private_key_file": "sf-jwt.pem",
        "username": "integration@example.org",
        "client_secret_env": None,
    }

    with pytest.raises(FetchError, match=r"can be read by other users \(mode 0644\): run `chmod 600 "):
        fetch(spec(org, **keys), api_settings, tmp_path / "contacts.csv")

    assert org.vendor.seen == []


def test_past_the_bulk_threshold_a_bulk_api_job_gives_the_same_file_as_rest_pages(
    org: Served, api_settings: Settings, tmp_path: Path
) -> None:
    by_rest = fetch(spec(org, {**MAPPING, "state": "IsActive"}), api_settings, tmp_path / "rest.csv")
    org.vendor.seen.clear()

    by_bulk = fetch(
        spec(org, {**MAPPING, "state": "IsActive"}, bulk_threshold=100, bulk_poll_s=0.01),
        api_settings,
        tmp_path / "bulk.csv",
    )

    assert (by_bulk.rows, by_bulk.pages) == (250, 3)
    assert by_bulk.sha256 == by_rest.sha256, "nulls, booleans and relationship fields come out the same"
    rows = read(by_bulk.path)
    assert rows[1][3:] == ["", "ACTIVE"] and rows[3][4] == "INACTIVE" and rows[10][3] == "contact2@example.org"
    count, create, *polls_and_pages = org.vendor.api_requests()
    assert count.query["q"] == ["SELECT COUNT() FROM Contact"]
    assert (create.method, create.path) == ("POST", "/services/data/v62.0/jobs/query")
    job = next(iter(org.vendor.jobs))
    assert [s.path.rsplit("/", 1)[-1] for s in polls_and_pages] == [job, job, "results", "results", "results"]
    results = polls_and_pages[2:]
    assert [s.query.get("locator") for s in results] == [None, ["100"], ["200"]]
    assert all(s.headers["Accept"] == "text/csv" for s in results)


def test_under_the_bulk_threshold_the_rest_query_is_used(org: Served, api_settings: Settings, tmp_path: Path) -> None:
    result = fetch(spec(org, bulk_threshold=250), api_settings, tmp_path / "contacts.csv")

    assert result.rows == 250
    assert org.vendor.jobs == {}


def test_a_bulk_results_page_cut_in_the_middle_is_asked_again(
    org: Served, api_settings: Settings, tmp_path: Path
) -> None:
    org.vendor.cut("results", times=1)

    result = fetch(spec(org, bulk_threshold=0, bulk_poll_s=0.01), api_settings, tmp_path / "contacts.csv")

    assert result.rows == 250
    assert len({r[0] for r in read(result.path)[1:]}) == 250


def test_a_failed_bulk_job_fails_the_fetch_and_writes_nothing(
    org: Served, api_settings: Settings, tmp_path: Path
) -> None:
    org.vendor.bulk_final_state = "Failed"

    with pytest.raises(FetchError, match=r"the Bulk API query job 750FAKE\d+ ended Failed; nothing was imported"):
        fetch(spec(org, bulk_threshold=0, bulk_poll_s=0.01), api_settings, tmp_path / "contacts.csv")

    assert os.listdir(tmp_path) == []
