"""GET JSON pages from one API with one connection's token, limits and TLS settings.

What an answer becomes:

    2xx, JSON (or text, for CSV) .......... the page
    2xx, body cut off or not JSON ......... tried again (bounded), then FetchError
    401 .................................. the token is fetched again, the request sent once more;
                                           a second 401 is a FetchError (permissions)
    429, 503 ............................. waited out as Retry-After says (else backoff), then again
    other 5xx, network error, timeout ..... backoff with jitter, then again (bounded)
    other 4xx ............................ FetchError naming the status and the vendor's error code

Every request is logged with its method, host and path and its status: never the query (it can
carry paging tokens), a header (the token) or a body (records).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import structlog

from schemas.api import GRAPH_BASE_URL, ApiConfig
from schemas.settings import Settings
from workers.http.errors import FetchError, error_code
from workers.http.retry import Limits, Retry, retry_after, transport_failure, with_retries
from workers.http.tokens import Token, TokenSource

log = structlog.get_logger(__name__)
T = TypeVar("T")

# httpx logs each request's full URL (with its query) at INFO; ours says the path and the status.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)


def http_options(api: Limits, name: str) -> dict[str, Any]:
    """What the fetch's one client is built with (it asks for the tokens too)."""
    # Always verified: the CA bundle adds to nothing, it replaces the default trust store (certifi)
    # for a corporate proxy or a private cloud's own CA. There is no way to turn verification off.
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=api.ca_bundle) if api.ca_bundle else True

    def logged(response: httpx.Response) -> None:
        request = response.request
        log.info(
            "api request",
            connection=name,
            method=request.method,
            host=request.url.host,
            path=request.url.path,
            status=response.status_code,
        )

    return {
        "timeout": httpx.Timeout(api.read_timeout_s, connect=api.connect_timeout_s),
        "verify": verify,
        # A redirect would carry the token to wherever it points: an answer of its own, refused below.
        "follow_redirects": False,
        "event_hooks": {"response": [logged]},
    }


def _vendor_code(response: httpx.Response) -> str:
    """Graph's ``error.code`` or Salesforce's ``[{"errorCode"}]``: an identifier, never the message."""
    try:
        body = response.json()
    except ValueError:
        return "none"
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return error_code(body[0].get("errorCode"))
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return error_code(body["error"].get("code"))
    return "none"


class ApiClient:
    """One connection's requests to its API, closed on exit (``with ApiClient(...) as client``)."""

    def __init__(self, name: str, source: str, api: ApiConfig, settings: Settings) -> None:
        self.name, self.source, self.api = name, source, api
        try:
            options = http_options(api, name)
        except OSError as exc:  # ssl.SSLError too: a file that holds no PEM certificate
            reason = exc.strerror if not isinstance(exc, ssl.SSLError) else "no PEM certificate in it"
            raise FetchError(
                f"{name}: the CA bundle {api.ca_bundle} cannot be read ({reason}): fix ca_bundle"
            ) from None
        self._http = httpx.Client(**options)
        self.tokens = TokenSource(name, source, api, settings, self._http)
        self.requests = 0

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def base_url(self) -> str:
        if self.api.base_url is not None:
            return self.api.base_url
        if self.source == "salesforce":
            instance = self.tokens.current().instance_url
            if instance is None:
                raise FetchError(
                    f"{self.name}: the token response named no instance_url: set base_url to the org's URL, e.g. "
                    "'https://example.my.salesforce.com'"
                )
            return instance.rstrip("/")
        return GRAPH_BASE_URL

    def get_json(self, url: str, params: dict[str, str] | None = None, headers: dict[str, str] | None = None) -> Any:
        """The JSON body of ``GET url`` (a path under base_url, or a link the API gave on its own host)."""
        return self.call("GET", url, _json, params=params, headers=headers)

    def post_json(self, url: str, body: dict[str, Any]) -> Any:
        """The JSON answer to a JSON ``POST`` (a Bulk API job: creating one again after a lost answer
        only leaves an extra read-only query job behind)."""
        return self.call("POST", url, _json, body=body)

    def get_text(
        self, url: str, params: dict[str, str] | None = None, headers: dict[str, str] | None = None
    ) -> tuple[str, httpx.Headers]:
        """A text body (Bulk API CSV results) and the response's headers (its locator)."""
        return self.call("GET", url, _text, params=params, headers=headers)

    def call(
        self,
        method: str,
        url: str,
        parse: Callable[[httpx.Response], T],
        *,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> T:
        base = self.base_url()
        if url.startswith("/"):
            url = base + url
        target, origin = urlsplit(url), urlsplit(base)
        if (target.scheme, target.netloc) != (origin.scheme, origin.netloc):
            # The token is for the API only: a paging link elsewhere would hand it to another host.
            raise FetchError(
                f"{self.name}: the API sent a link to {target.scheme}://{target.hostname}{target.path}, which is "
                f"not on base_url ({base}); the token is only sent there, so the fetch stopped"
            )
        request = _Request(method, url, params, headers, body, f"{self.name}: {method} {target.path}")
        return with_retries(lambda: parse(self._attempt(request)), self.api, request.describe)

    def _send(self, request: _Request, token: Token) -> httpx.Response:
        self.requests += 1
        sent = {
            "Accept": "application/json",
            **(request.headers or {}),
            "Authorization": f"Bearer {token.access_token}",
        }
        try:
            return self._http.request(
                request.method, request.url, params=request.params, headers=sent, json=request.body
            )
        except httpx.TransportError as exc:  # a cut-off body is read here too (RemoteProtocolError)
            raise transport_failure(exc, request.describe, urlsplit(request.url).hostname) from None

    def _attempt(self, request: _Request) -> httpx.Response:
        describe = request.describe
        response = self._send(request, self.tokens.current())
        if response.status_code == 401:
            # Expired (Salesforce says nothing of when; Graph's can end mid-run): fetched once more.
            response = self._send(request, self.tokens.refresh())
            if response.status_code == 401:
                raise FetchError(
                    f"{describe} refused a freshly issued token too (HTTP 401, error "
                    f"{_vendor_code(response)!r}): check the app's permissions and admin consent"
                )
        status = response.status_code
        if 200 <= status < 300:
            return response
        if status in (429, 503):
            raise Retry(f"HTTP {status}", retry_after(response))
        if status >= 500:
            raise Retry(f"HTTP {status}")
        code = _vendor_code(response)
        if code == "REQUEST_LIMIT_EXCEEDED":
            raise FetchError(
                f"{describe} was refused: the org's 24-hour API request limit is used up (HTTP {status}, "
                "REQUEST_LIMIT_EXCEEDED); run it again once the limit has room"
            )
        if 300 <= status < 400:
            raise FetchError(f"{describe} was redirected (HTTP {status}): set base_url to where the API answers")
        raise FetchError(
            f"{describe} was refused (HTTP {status}, error {code!r}): check the mapping's field names, the "
            "connection's api settings and the app's permissions"
        )


@dataclass(frozen=True)
class _Request:
    method: str
    url: str
    params: dict[str, str] | None
    headers: dict[str, str] | None
    body: dict[str, Any] | None
    #: "<connection>: <METHOD> <path>", for sentences and logs (never the query).
    describe: str


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise Retry("a page that did not parse as JSON (cut off or not JSON)") from None


def _text(response: httpx.Response) -> tuple[str, httpx.Headers]:
    return response.text, response.headers
