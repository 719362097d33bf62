"""``[connections.api]``: how a connection with ``source = "msgraph"`` or ``"salesforce"`` reaches its API.

```toml
[connections.api]
client_id = "0f6c…"                          # the app registration's (Graph) or the external client app's id
client_secret_env = "GRAPH_CLIENT_SECRET"    # the environment variable that holds the secret, or:
# private_key_file = "sf-jwt.pem"            # Salesforce JWT bearer: the key, under FEEDSYNC_KEYS_DIR unless absolute
# username = "integration@example.com"       #   and the user the token is issued for
tenant = "contoso.onmicrosoft.com"          # msgraph: the tenant (a GUID or a domain)
# token_url / base_url                       # default: the vendor's; point them elsewhere (sovereign cloud, tests)
object = "Contact"                          # salesforce: Contact or User
api_version = "v62.0"                       # salesforce
bulk_threshold = 50000                      # salesforce: Bulk API 2.0 past this many records
incremental = true                          # msgraph: /users/delta between full pulls (needs state = "accountEnabled")
full_every_days = 7                         # msgraph, incremental: a full pull this often
ca_bundle = "/etc/ssl/certs/corp-ca.pem"    # TLS is always verified; this adds the CA that signed a proxy's certificate
```

A secret is never written in the file: only the name of the environment variable (or key file) that
holds it, so it never reaches the database, a log line, the history or the console. A key that
would hold a secret itself is refused on its line without repeating what it holds.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.config_parts import KeyProblem

#: The API sources this version can fetch from (a connection's ``source``; ``"files"`` is none of them).
API_SOURCES = ("msgraph", "salesforce")
ApiSourceName = Literal["msgraph", "salesforce"]

GRAPH_BASE_URL = "https://graph.microsoft.com"
GRAPH_TOKEN_URL = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"  # noqa: S105 -- a URL
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
# The JWT bearer flow of production orgs; a sandbox uses https://test.salesforce.com, and client
# credentials need the org's own My Domain URL (https://<domain>.my.salesforce.com/services/oauth2/token).
SALESFORCE_TOKEN_URL = "https://login.salesforce.com/services/oauth2/token"  # noqa: S105 -- a URL

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$")
#: Keys that would hold a secret itself: refused, naming the key to write instead.
_SECRET_KEYS = {
    "client_secret": "client_secret_env",
    "secret": "client_secret_env",
    "password": "client_secret_env",
    "access_token": "client_secret_env",
    "refresh_token": "client_secret_env",
    "token": "client_secret_env",
    "api_key": "client_secret_env",
    "private_key": "private_key_file",
}


def _url_problem(v: str) -> str | None:
    parts = urlsplit(v)
    if parts.username is not None or parts.password is not None:
        return "carries a user or password: credentials go in client_secret_env, never in a URL"
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and parts.hostname:
        try:
            loopback = ipaddress.ip_address(parts.hostname).is_loopback
        except ValueError:
            loopback = parts.hostname == "localhost"
        if loopback:  # a server on this host (tests, a local relay): nothing crosses the network
            return None
        return "is not https: the API is only reached over TLS (http is allowed for this host's own addresses only)"
    return "is not a URL such as 'https://graph.microsoft.com'"


class ApiConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    client_id: str = Field(min_length=1, max_length=255)
    client_secret_env: str | None = None
    private_key_file: str | None = None
    username: str | None = Field(default=None, min_length=1, max_length=255)
    tenant: str | None = None
    base_url: str | None = None
    token_url: str | None = None
    scope: str | None = None
    object: Literal["Contact", "User"] = "Contact"
    api_version: str = Field(default="v62.0", pattern=r"^v\d{2,3}\.\d$")
    # Records asked for per page: Graph's $top (at most 999; with $expand Graph sends 100 at most),
    # Salesforce's batchSize (200 to 2,000; the server may send fewer).
    page_size: int = Field(default=999, ge=1, le=2000)
    # A run stops, and fails, past these: a paging loop or a wrong filter must not pull forever.
    max_pages: int = Field(default=10_000, ge=1)
    max_records: int = Field(default=2_000_000, ge=1)
    connect_timeout_s: float = Field(default=10.0, gt=0, le=300)
    read_timeout_s: float = Field(default=120.0, gt=0, le=3600)
    # Retries of one request after a 429, a 5xx, a network error or a page that does not parse.
    max_retries: int = Field(default=5, ge=0, le=20)
    backoff_s: float = Field(default=1.0, gt=0, le=60)
    max_backoff_s: float = Field(default=60.0, gt=0, le=3600)
    # A Retry-After longer than this fails the run instead of holding a worker that long.
    max_retry_after_s: float = Field(default=300.0, ge=0, le=3600)
    ca_bundle: str | None = None
    # Salesforce: past this many records (a COUNT() query first), Bulk API 2.0 query jobs instead of
    # REST query pages; None: always REST. Jobs are polled every bulk_poll_s (doubling, at most 30 s)
    # until done, or the fetch fails after bulk_timeout_s.
    bulk_threshold: int | None = Field(default=None, ge=0)
    bulk_poll_s: float = Field(default=2.0, gt=0, le=60)
    bulk_timeout_s: float = Field(default=3600.0, gt=0, le=86400)
    # msgraph: runs pull only what changed since the last round (/users/delta and its stored
    # @odata.deltaLink), with a full pull every full_every_days days; a delta run is no full feed.
    incremental: bool = False
    full_every_days: int = Field(default=7, ge=1, le=365)

    @model_validator(mode="before")
    @classmethod
    def _no_literal_secret(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key, instead in _SECRET_KEYS.items():
                if key in data:
                    # The value is never echoed: it is a secret that should not be in the file at all.
                    example = "GRAPH_CLIENT_SECRET" if instead == "client_secret_env" else "sf-jwt.pem"
                    raise KeyProblem(
                        f"{key} is never written in the connections file: keep the secret in an environment "
                        f'variable or key file and name it, e.g. {instead} = "{example}"',
                        "api",
                        key,
                    )
        return data

    @field_validator("client_secret_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        if v is not None and not _ENV_NAME.match(v):
            # Most likely the secret itself was pasted here: say so without repeating it.
            raise KeyProblem(
                "client_secret_env names an environment variable (letters, digits and '_', e.g. "
                "'GRAPH_CLIENT_SECRET'), never the secret itself",
                "api",
                "client_secret_env",
            )
        return v

    @field_validator("private_key_file", "ca_bundle")
    @classmethod
    def _file(cls, v: str | None) -> str | None:
        if v is not None and (not v.strip() or "\x00" in v or "\n" in v or "-----BEGIN" in v):
            raise ValueError("names a file (a path), never the key or certificate itself")
        return v

    @field_validator("tenant")
    @classmethod
    def _tenant(cls, v: str | None) -> str | None:
        if v is not None and not _TENANT.match(v):
            raise ValueError("tenant is the directory's id or domain, e.g. 'contoso.onmicrosoft.com'")
        return v

    @field_validator("base_url", "token_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and (problem := _url_problem(v)):
            raise ValueError(f"the URL {problem}")
        return v.rstrip("/") if v is not None else None

    @model_validator(mode="after")
    def _one_credential(self) -> ApiConfig:
        if (self.client_secret_env is None) == (self.private_key_file is None):
            raise KeyProblem(
                "give exactly one credential: client_secret_env (client credentials) or private_key_file (JWT bearer)",
                "api",
                "client_secret_env",
            )
        if self.private_key_file is not None and self.username is None:
            raise KeyProblem(
                "private_key_file (JWT bearer) needs username: the user the token is issued for",
                "api",
                "private_key_file",
            )
        if self.max_backoff_s < self.backoff_s:
            raise KeyProblem("max_backoff_s is shorter than backoff_s", "api", "max_backoff_s")
        return self

    def problems_for(self, source: str) -> list[tuple[str, str]]:
        """(key, sentence) for what ``source`` needs of this table and does not find."""
        found: list[tuple[str, str]] = []
        if source == "msgraph":
            if self.token_url is None and self.tenant is None:
                found.append(("tenant", "source 'msgraph' needs tenant (the directory's id or domain) or token_url"))
            if self.private_key_file is not None:
                found.append(
                    (
                        "private_key_file",
                        "source 'msgraph' takes client_secret_env; certificate credentials are not supported yet",
                    )
                )
        elif source == "salesforce":
            if self.incremental:
                found.append(("incremental", "incremental = true is for source 'msgraph' (Graph delta) only"))
            if self.private_key_file is None and self.token_url is None:
                found.append(
                    (
                        "token_url",
                        "client credentials need the org's own token_url, e.g. "
                        "'https://example.my.salesforce.com/services/oauth2/token'",
                    )
                )
        else:
            found.append(("source", f"source {source!r} has no API; the API sources are {', '.join(API_SOURCES)}"))
        return found

    def resolved_token_url(self, source: str) -> str:
        if self.token_url is not None:
            return self.token_url
        if source == "msgraph":
            return GRAPH_TOKEN_URL.format(tenant=self.tenant)
        return SALESFORCE_TOKEN_URL

    def resolved_scope(self, source: str) -> str | None:
        if self.scope is not None:
            return self.scope
        return GRAPH_SCOPE if source == "msgraph" else None
