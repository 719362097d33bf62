"""``[connections.api]``: credentials only by reference, the vendors' defaults, URLs over TLS."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from schemas.api import ApiConfig
from schemas.config_parts import KeyProblem

SECRET = "Zk8~Q_3xvP.d9LmN2rT-5yWb7cHe"  # noqa: S105 -- a made-up secret the refusals must not repeat


def config(**keys: Any) -> ApiConfig:
    return ApiConfig.model_validate({"client_id": "0f6c-app", "client_secret_env": "GRAPH_CLIENT_SECRET", **keys})


def refusal(keys: dict[str, Any]) -> tuple[str, list[str]]:
    """The refusal's text and the key it is about (for the line the connections loader reports)."""
    with pytest.raises(ValidationError) as raised:
        ApiConfig.model_validate(keys)
    (error,) = raised.value.errors()
    cause = (error.get("ctx") or {}).get("error")
    loc = cause.loc if isinstance(cause, KeyProblem) else [str(p) for p in error["loc"]]
    return error["msg"], loc


@pytest.mark.parametrize("key", ["client_secret", "password", "access_token", "private_key"])
def test_a_literal_secret_is_refused_on_its_key_without_repeating_it(key: str) -> None:
    text, loc = refusal({"client_id": "0f6c-app", key: SECRET})

    assert loc == ["api", key]
    assert f"{key} is never written in the connections file" in text
    assert SECRET not in text


def test_a_secret_pasted_where_the_variable_name_goes_is_refused_without_repeating_it() -> None:
    text, loc = refusal({"client_id": "0f6c-app", "client_secret_env": SECRET})

    assert loc == ["api", "client_secret_env"]
    assert "names an environment variable" in text
    assert SECRET not in text


def test_a_key_pasted_where_the_key_file_goes_is_refused() -> None:
    text, _ = refusal({"client_id": "a", "private_key_file": "-----BEGIN PRIVATE KEY-----\nMIIE", "username": "u"})

    assert "never the key or certificate itself" in text and "MIIE" not in text


@pytest.mark.parametrize(
    ("keys", "problem"),
    [
        ({}, "give exactly one credential"),
        ({"private_key_file": "sf.pem"}, "give exactly one credential"),
    ],
)
def test_exactly_one_credential_is_given(keys: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        ApiConfig.model_validate({"client_id": "a", "client_secret_env": "X", **keys} if keys else {"client_id": "a"})


def test_jwt_bearer_needs_the_user_the_token_is_for() -> None:
    text, loc = refusal({"client_id": "a", "private_key_file": "sf.pem"})

    assert loc == ["api", "private_key_file"] and "needs username" in text
    assert ApiConfig.model_validate({"client_id": "a", "private_key_file": "sf.pem", "username": "i@x"}).username


def test_graph_defaults_to_the_tenants_token_endpoint_and_the_graph_scope() -> None:
    api = config(tenant="contoso.onmicrosoft.com")

    assert api.problems_for("msgraph") == []
    assert (
        api.resolved_token_url("msgraph")
        == "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    )
    assert api.resolved_scope("msgraph") == "https://graph.microsoft.com/.default"
    assert [key for key, _ in config().problems_for("msgraph")] == ["tenant"]


def test_salesforce_client_credentials_need_the_orgs_own_token_url() -> None:
    assert [key for key, _ in config().problems_for("salesforce")] == ["token_url"]
    api = config(token_url="https://example.my.salesforce.com/services/oauth2/token")  # noqa: S106 -- a URL
    assert api.problems_for("salesforce") == []
    assert api.resolved_scope("salesforce") is None


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://graph.microsoft.us", True),
        ("http://127.0.0.1:8080", True),
        ("http://localhost:8080", True),
        ("http://graph.example.com", False),
        ("https://user:pw@graph.example.com", False),
        ("graph.microsoft.com", False),
    ],
)
def test_urls_are_https_except_on_this_host(url: str, allowed: bool) -> None:
    if allowed:
        assert config(base_url=url + "/").base_url == url
    else:
        with pytest.raises(ValidationError):
            config(base_url=url)


def test_an_unknown_key_is_refused_rather_than_ignored() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        config(verify_tls=False)
