"""Local servers of ours that speak Microsoft Graph's and Salesforce's documented protocols, on
127.0.0.1 in a thread, and check what they receive.

Each serves a token endpoint (client credentials; Salesforce JWT bearer too) and the people API
with the vendor's paging and error bodies, returns only the fields a request selects (as the real
APIs do, so a field the client forgets to ask for comes back missing), and records every request.
Faults are planned per request: ``fail(path_part, status, times, headers)`` answers the next
``times`` requests whose path and query contain ``path_part`` with ``status``; ``cut(path_part,
times)`` sends a page whose body stops mid-way (Content-Length longer than what is sent);
``expire_tokens_after(n)`` revokes every token issued so far once the n-th API page has been served.

The vendors themselves are in tests/api_vendors.py, from the shapes in their public docs
(../shared/reference/wave3-anchors.md §1 and §2).
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

CLIENT_ID = "feedsync-test-app"
CLIENT_SECRET = "s3cr3t-Value-That-Must-Never-Leak-41f9"  # noqa: S105 -- a test secret, grepped for in logs


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    form: dict[str, list[str]]
    status: int = 0
    at: float = field(default_factory=time.monotonic)


@dataclass
class _Fault:
    part: str
    status: int
    times: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Vendor:
    """What both fake APIs share: tokens, faults and the log of requests."""

    people: list[dict[str, Any]]
    page_cap: int = 100  # the most records one page holds, whatever the client asks for
    seen: list[Seen] = field(default_factory=list)
    valid_tokens: set[str] = field(default_factory=set)
    issued: int = 0
    pages_served: int = 0
    expire_after_pages: int | None = None
    faults: list[_Fault] = field(default_factory=list)
    cuts: dict[str, int] = field(default_factory=dict)
    base_url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: Salesforce's query locators: the fields each query selected; its Bulk API jobs.
    locators: list[list[str]] = field(default_factory=list)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Graph: people by id, for the managers $expand brings (built at the first page).
    by_id: dict[str, dict[str, Any]] = field(default_factory=dict)
    bulk_polls_in_progress: int = 1
    bulk_final_state: str = "JobComplete"
    #: The vendor's error code in the body of a planned fault (default: one that fits the status).
    error_code: str = ""
    #: A JWT bearer assertion's verifier (Salesforce): the claims it decoded, or None if refused.
    verify_assertion: Any = None

    def fail(self, part: str, status: int, times: int = 1, headers: dict[str, str] | None = None) -> None:
        self.faults.append(_Fault(part, status, times, headers or {}, b""))

    def cut(self, part: str, times: int = 1) -> None:
        self.cuts[part] = times

    def expire_tokens_after(self, pages: int) -> None:
        self.expire_after_pages = pages

    def api_requests(self) -> list[Seen]:
        return [s for s in self.seen if "token" not in s.path.lower()]

    def token_requests(self) -> list[Seen]:
        return [s for s in self.seen if "token" in s.path.lower()]

    def new_token(self) -> str:
        self.issued += 1
        token = f"tok-{self.issued}-{int(time.time() * 1000)}"
        self.valid_tokens.add(token)
        return token

    def fault_for(self, path: str) -> _Fault | None:
        for fault in self.faults:
            if fault.part in path and fault.times > 0:
                fault.times -= 1
                return fault
        return None

    def page_served(self) -> None:
        self.pages_served += 1
        if self.expire_after_pages is not None and self.pages_served == self.expire_after_pages:
            self.valid_tokens.clear()

    # What each vendor says in its own protocol (tests/api_vendors.py).
    def token(self, form: dict[str, list[str]]) -> tuple[int, Any]:
        raise NotImplementedError

    def unauthorized(self) -> Any:
        raise NotImplementedError

    def fault_body(self) -> Any:
        raise NotImplementedError

    def get(self, path: str, query: dict[str, list[str]], headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        """An API GET that got past the token check: status, body (bytes: CSV) and extra headers."""
        raise NotImplementedError

    def takes_post(self, path: str) -> bool:
        """An API POST (with a bearer token), rather than the token endpoint's."""
        return False

    def post(self, path: str, raw: str, headers: dict[str, str]) -> tuple[int, Any]:
        raise NotImplementedError


class _Handler(BaseHTTPRequestHandler):
    vendor: Vendor  # set per server by _handler
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: with Nagle's algorithm each answer would wait for
    # the client's delayed ACK (~40 ms), which would be measured as the fetch's own time.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # quiet: pytest shows failures
        pass

    def _reply(self, status: int, body: Any, headers: dict[str, str] | None = None, cut: bool = False) -> None:
        data = json.dumps(body).encode() if not isinstance(body, bytes) else body
        self.send_response(status)
        self.send_header("Content-Type", "text/csv" if isinstance(body, bytes) else "application/json")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        if cut:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data[: len(data) // 2] if cut else data)
        self.wfile.flush()
        if cut:
            self.close_connection = True

    def _seen(self, form: dict[str, list[str]]) -> Seen:
        parts = urlsplit(self.path)
        seen = Seen(self.command, parts.path, parse_qs(parts.query), dict(self.headers.items()), form)
        with self.vendor.lock:
            self.vendor.seen.append(seen)
        return seen

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length).decode()
        if self.vendor.takes_post(self.path):
            return self._api_post(raw)
        form = parse_qs(raw)
        seen = self._seen(form)
        with self.vendor.lock:
            fault = self.vendor.fault_for(self.path)
        if fault is not None:
            seen.status = fault.status
            return self._reply(fault.status, {"error": "temporarily_unavailable"}, fault.headers)
        # Graph's and Salesforce's /token, LinkedIn's /oauth/v2/accessToken.
        if (
            not seen.path.lower().endswith(("/token", "/accesstoken"))
            or self.headers.get("Content-Type") != "application/x-www-form-urlencoded"
        ):
            seen.status = 400
            return self._reply(400, {"error": "invalid_request"})
        with self.vendor.lock:
            status, body = self.vendor.token(form)
        seen.status = status
        self._reply(status, body)

    def _api_post(self, raw: str) -> None:
        seen = self._seen({})
        auth = self.headers.get("Authorization", "").removeprefix("Bearer ")
        with self.vendor.lock:
            if auth not in self.vendor.valid_tokens:
                status, body = 401, self.vendor.unauthorized()
            else:
                status, body = self.vendor.post(seen.path, raw, dict(self.headers.items()))
        seen.status = status
        self._reply(status, body)

    def do_GET(self) -> None:
        seen = self._seen({})
        auth = self.headers.get("Authorization", "")
        with self.vendor.lock:
            valid = auth.startswith("Bearer ") and auth.removeprefix("Bearer ") in self.vendor.valid_tokens
            # A planned fault or cut is spent on a request that gets past the token check only.
            fault = self.vendor.fault_for(self.path) if valid else None
            cut = next((part for part, times in self.vendor.cuts.items() if times > 0 and part in self.path), None)
            if cut is not None and valid and fault is None:
                self.vendor.cuts[cut] -= 1
            else:
                cut = None
        if not valid:
            seen.status = 401
            headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
            return self._reply(401, self.vendor.unauthorized(), headers)
        if fault is not None:
            seen.status = fault.status
            return self._reply(fault.status, self.vendor.fault_body(), fault.headers)
        with self.vendor.lock:
            status, body, extra = self.vendor.get(seen.path, seen.query, dict(self.headers.items()))
            if cut is None and status == 200:
                self.vendor.page_served()
        seen.status = status
        self._reply(status, body, extra, cut=cut is not None and status == 200)


def _handler(vendor: Vendor) -> type[BaseHTTPRequestHandler]:
    return type("Handler", (_Handler,), {"vendor": vendor})


class Served:
    """The vendor's server on 127.0.0.1 (an ephemeral port), over TLS when given a server context."""

    def __init__(self, vendor: Vendor, tls: ssl.SSLContext | None = None) -> None:
        self.vendor = vendor
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(vendor))
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        vendor.base_url = self.url
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def serve(vendor: Vendor) -> Iterator[Served]:
    with Served(vendor) as served:
        yield served
