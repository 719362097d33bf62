"""Access tokens by OAuth 2.0 client credentials or JWT bearer, fetched again on demand.

authlib builds the token request and signs the JWT assertion; the request goes through this
connection's own httpx client (timeouts, TLS). authlib's httpx integration is not used: it runs on
httpx2, which only the tests have.

The secret is read from the environment (or the key file) when a token is fetched, never kept on
an object that could be logged, and never put in a sentence: errors name the variable or file.
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import structlog
from authlib.oauth2.rfc6749.parameters import prepare_token_request
from authlib.oauth2.rfc7523.assertion import sign_jwt_bearer_assertion
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from schemas.api import ApiConfig
from schemas.settings import Settings
from workers.http.errors import FetchError, error_code
from workers.http.retry import Retry, retry_after, transport_failure, with_retries

log = structlog.get_logger(__name__)

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: A token this close to its expiry is fetched again before the next request rather than after a 401.
EARLY_S = 60.0


@dataclass(frozen=True)
class Token:
    # repr=False: a token printed in a traceback or a debug line would be a credential in a log.
    access_token: str = field(repr=False)
    expires_at: float | None
    #: Salesforce: where the org's API is (its token response says so).
    instance_url: str | None = None


class TokenSource:
    """One connection's tokens: ``current()`` fetches one when there is none or it is about to
    expire; ``refresh()`` fetches a new one (after a 401)."""

    def __init__(self, name: str, source: str, api: ApiConfig, settings: Settings, http: httpx.Client) -> None:
        self.name, self.source, self.api, self.settings = name, source, api, settings
        self.token_url = api.resolved_token_url(source)
        # The fetch's one client (its timeouts, TLS settings and request log), for the token host too.
        self._http = http
        self._token: Token | None = None
        self.fetched = 0

    def current(self) -> Token:
        token = self._token
        if token is None or (token.expires_at is not None and token.expires_at - EARLY_S < time.time()):
            token = self.refresh()
        return token

    def refresh(self) -> Token:
        self._token = with_retries(self._fetch, self.api, f"{self.name}: the token request to {self._path()}")
        self.fetched += 1
        return self._token

    def _path(self) -> str:
        parts = urlsplit(self.token_url)
        return f"{parts.hostname}{parts.path}"

    def _fetch(self) -> Token:
        api = self.api
        if api.private_key_file is not None:
            form = prepare_token_request(JWT_BEARER, assertion=self._assertion())
        else:
            # As both vendors document the request: the secret in the form body (client_secret_post).
            form = prepare_token_request(
                "client_credentials",
                scope=api.resolved_scope(self.source),
                client_id=api.client_id,
                client_secret=self._secret(),
            )
        try:
            response = self._http.post(
                self.token_url,
                content=form,
                headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
            )
        except httpx.TransportError as exc:
            raise transport_failure(
                exc, f"{self.name}: the token request to {self._path()}", urlsplit(self.token_url).hostname
            ) from None
        try:
            raw = response.json()
        except ValueError:
            raw = None
        if response.status_code == 429 or response.status_code >= 500:
            raise self._status(response)
        if isinstance(raw, dict) and "error" in raw:
            raise FetchError(
                f"{self.name}: the token endpoint {self._path()} refused the credentials (HTTP "
                f"{response.status_code}, error {error_code(raw['error'])!r}): check client_id, "
                f"{self._credential_name()} and the app's permissions"
            )
        if response.status_code != 200:
            raise self._status(response)
        if not isinstance(raw, dict):  # a proxy's error page, an answer cut off
            raise Retry("a token response that did not parse as JSON")
        access = raw.get("access_token")
        if not isinstance(access, str) or not access:
            raise FetchError(f"{self.name}: the token endpoint {self._path()} answered without an access_token")
        expires_in = raw.get("expires_in")
        expires_at = time.time() + float(expires_in) if isinstance(expires_in, int | float) else None
        instance = raw.get("instance_url")
        return Token(access, expires_at, instance if isinstance(instance, str) else None)

    def _status(self, response: httpx.Response) -> Exception:
        status = response.status_code
        if status == 429 or status >= 500:
            return Retry(f"HTTP {status}", retry_after(response) if status in (429, 503) else None)
        return FetchError(
            f"{self.name}: the token endpoint {self._path()} answered HTTP {status}: check token_url and "
            f"{self._credential_name()}"
        )

    def _credential_name(self) -> str:
        if self.api.client_secret_env is not None:
            return f"the secret in {self.api.client_secret_env} (client_secret_env)"
        return f"the key in {self._key_path()} (private_key_file)"

    def _secret(self) -> str:
        assert self.api.client_secret_env is not None
        secret = os.environ.get(self.api.client_secret_env)
        if not secret:
            raise FetchError(
                f"{self.name}: the environment variable {self.api.client_secret_env} (client_secret_env) is not set "
                "for feedsync: set it where feedsync runs (e.g. /etc/feedsync/env)"
            )
        return secret

    def _key_path(self) -> Path:
        assert self.api.private_key_file is not None
        path = Path(self.api.private_key_file).expanduser()
        return path if path.is_absolute() else self.settings.keys_dir / path

    def _assertion(self) -> str:
        """The signed JWT of Salesforce's JWT bearer flow: issued by the app, for ``username``."""
        path = self._key_path()
        try:
            # One open: the mode checked is that of the very file whose key is used.
            with path.open("rb") as f:
                mode = stat.S_IMODE(os.fstat(f.fileno()).st_mode)
                if mode & 0o077:  # as OpenSSH refuses such a key: it is no longer a secret of this host
                    raise FetchError(
                        f"{self.name}: the private key {path} can be read by other users (mode {mode:04o}): "
                        f"run `chmod 600 {path}`"
                    )
                key = RSAKey.import_key(f.read())
        except OSError as exc:
            raise FetchError(
                f"{self.name}: the private key {path} cannot be read ({exc.strerror}): fix private_key_file"
            ) from None
        except (JoseError, ValueError, TypeError):
            raise FetchError(
                f"{self.name}: the private key {path} is not an RSA private key in PEM: fix private_key_file"
            ) from None
        if not key.is_private:
            raise FetchError(f"{self.name}: {path} holds a public key: private_key_file names the private key")
        host = urlsplit(self.token_url).hostname or ""
        audience = "https://test.salesforce.com" if host == "test.salesforce.com" else "https://login.salesforce.com"
        signed = sign_jwt_bearer_assertion(
            key, issuer=self.api.client_id, audience=audience, subject=self.api.username, alg="RS256", expires_in=180
        )
        return signed if isinstance(signed, str) else signed.decode("ascii")
