"""Local servers of ours that speak Microsoft Graph's and Salesforce's documented protocols, on
127.0.0.1 in a thread, and check what they receive.

Each serves a token endpoint (client credentials; Salesforce JWT bearer too) and the people API
with the vendor's paging and error bodies, returns only the fields a request selects (as the real
APIs do, so a field the client forgets to ask for comes back missing), and records every request.
Faults are planned per request: ``fail(path_part, status, times, headers)`` answers the next
``times`` requests whose path and query contain ``path_part`` with ``status``; ``cut(path_part,
times)`` sends a page whose body stops mid-way (Content-Length longer than what is sent);
``expire_tokens_after(n)`` revokes every token issued so far once the n-th API page has been served.

Shapes (Graph: https://learn.microsoft.com/graph/api/user-list, /graph/paging, /graph/auth-v2-service;
Salesforce: api_rest resources_query.htm and resources_query_more_results.htm, the client
credentials and JWT bearer flows) are in ../shared/reference/wave3-anchors.md §1 and §2.
"""

from __future__ import annotations

import csv
import io
import json
import re
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
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
TENANT = "contoso.onmicrosoft.com"


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
        return [s for s in self.seen if "token" not in s.path]

    def token_requests(self) -> list[Seen]:
        return [s for s in self.seen if "token" in s.path]

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


def select(record: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k in fields}


class GraphVendor(Vendor):
    """``POST /{tenant}/oauth2/v2.0/token`` and ``GET /v1.0/users`` ($select, $expand=manager, $top,
    @odata.nextLink with an opaque $skiptoken)."""

    def token(self, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        want = {"grant_type": ["client_credentials"], "client_id": [CLIENT_ID], "scope": [GRAPH_SCOPE]}
        if any(form.get(k) != v for k, v in want.items()):
            return 400, {"error": "invalid_request", "error_description": "AADSTS900144: bad request body"}
        if form.get("client_secret") != [CLIENT_SECRET]:
            return 401, {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret"}
        return 200, {
            "token_type": "Bearer",
            "expires_in": 3599,
            "ext_expires_in": 3599,
            "access_token": self.new_token(),
        }

    def unauthorized(self) -> dict[str, Any]:
        return {"error": {"code": "InvalidAuthenticationToken", "message": "Access token has expired."}}

    def api(self, path: str, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        if path != "/v1.0/users":
            return 404, {"error": {"code": "Request_ResourceNotFound", "message": "not found"}}
        if "$skiptoken" in query:
            state = json.loads(bytes.fromhex(query["$skiptoken"][0]))
            if set(query) != {"$skiptoken"}:  # the nextLink is followed whole, never added to
                return 400, {"error": {"code": "BadRequest", "message": "unexpected parameters"}}
        else:
            top = int(query.get("$top", ["100"])[0])
            if not 1 <= top <= 999:
                return 400, {"error": {"code": "Request_UnsupportedQuery", "message": "Invalid page size"}}
            fields = query["$select"][0].split(",") if "$select" in query else ["id", "mail", "displayName"]
            manager = None
            if "$expand" in query:
                m = re.fullmatch(r"manager\(\$select=([A-Za-z,]+)\)", query["$expand"][0])
                if m is None:
                    return 400, {"error": {"code": "BadRequest", "message": "bad $expand"}}
                manager = m.group(1).split(",")
                top = min(top, 100)  # Graph's known issue: 100 at most with $expand
            state = {"offset": 0, "top": top, "fields": fields, "manager": manager}
        offset, size = state["offset"], min(state["top"], self.page_cap)
        if len(self.by_id) != len(self.people):  # built once: a page must not cost a pass over everyone
            self.by_id = {p["id"]: p for p in self.people}
        by_id = self.by_id
        value = []
        for person in self.people[offset : offset + size]:
            record = select(person, state["fields"] + ["id"])
            boss = by_id.get(person.get("_manager", ""))
            if state["manager"] is not None and boss is not None:
                record["manager"] = {"@odata.type": "#microsoft.graph.user", **select(boss, state["manager"])}
            value.append(record)
        body: dict[str, Any] = {"@odata.context": f"{self.base_url}/v1.0/$metadata#users", "value": value}
        if offset + size < len(self.people):
            token = json.dumps({**state, "offset": offset + size}).encode().hex()
            body["@odata.nextLink"] = f"{self.base_url}/v1.0/users?$skiptoken={token}"
        return 200, body


class SalesforceVendor(Vendor):
    """``POST /services/oauth2/token`` and ``GET /services/data/vNN.N/query?q=SOQL``, paging by
    ``nextRecordsUrl`` (``/services/data/vNN.N/query/<locator>-<offset>``) until ``done``."""

    api_version: str = "v62.0"

    def token(self, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        grant = form.get("grant_type", [""])[0]
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            claims = self.verify_assertion(form.get("assertion", [""])[0]) if self.verify_assertion else None
            if claims is None:
                return 400, {"error": "invalid_grant", "error_description": "invalid assertion"}
        elif grant == "client_credentials":
            if form.get("client_id") != [CLIENT_ID] or form.get("client_secret") != [CLIENT_SECRET]:
                return 400, {"error": "invalid_client", "error_description": "invalid client credentials"}
        else:
            return 400, {"error": "unsupported_grant_type", "error_description": "grant type not supported"}
        return 200, {
            "access_token": self.new_token(),
            "signature": "c2lnbmF0dXJl",
            "scope": "api",
            "instance_url": self.base_url,
            "id": f"{self.base_url}/id/00Dxx0000000001/005xx0000000001",
            "token_type": "Bearer",
            "issued_at": str(int(time.time() * 1000)),
        }

    def unauthorized(self) -> list[dict[str, str]]:
        return [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]

    def api(self, path: str, query: dict[str, list[str]], batch: int) -> tuple[int, Any]:
        prefix = f"/services/data/{self.api_version}/query"
        if path == prefix:
            m = re.fullmatch(r"SELECT (.+) FROM (Contact|User)", query.get("q", [""])[0])
            if m is None:
                return 400, [{"message": "unexpected token", "errorCode": "MALFORMED_QUERY"}]
            self.locators.append([f.strip() for f in m.group(1).split(",")])
            locator, offset = len(self.locators) - 1, 0
        elif path.startswith(prefix + "/01gFAKE"):
            where, at = path.rsplit("/", 1)[1].removeprefix("01gFAKE").split("-")
            locator, offset = int(where), int(at)
        else:
            return 404, [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]
        size = min(batch, self.page_cap)
        records = [self.shape(p, self.locators[locator]) for p in self.people[offset : offset + size]]
        done = offset + size >= len(self.people)
        body: dict[str, Any] = {"totalSize": len(self.people), "done": done, "records": records}
        if not done:
            body["nextRecordsUrl"] = f"{prefix}/01gFAKE{locator}-{offset + size}"
        return 200, body

    def count(self, query: dict[str, list[str]]) -> tuple[int, Any] | None:
        if re.fullmatch(r"SELECT COUNT\(\) FROM (Contact|User)", query.get("q", [""])[0]) is None:
            return None
        return 200, {"totalSize": len(self.people), "done": True, "records": []}

    def bulk_create(self, body: Any) -> tuple[int, Any]:
        """``POST /jobs/query`` with ``{"operation": "query", "query": SOQL}``."""
        query = body.get("query", "") if isinstance(body, dict) else ""
        m = re.fullmatch(r"SELECT (.+) FROM (Contact|User)", query)
        if not isinstance(body, dict) or body.get("operation") != "query" or m is None:
            return 400, [{"message": "invalid job", "errorCode": "INVALIDJOB"}]
        job_id = f"750FAKE{len(self.jobs):011d}"
        self.jobs[job_id] = {"fields": [f.strip() for f in m.group(1).split(",")], "polls": 0}
        return 200, {
            "id": job_id,
            "operation": "query",
            "object": m.group(2),
            "state": "UploadComplete",
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(self.api_version[1:]),
            "lineEnding": "LF",
            "columnDelimiter": "COMMA",
        }

    def bulk_get(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        """``GET /jobs/query/{id}`` (InProgress for the first polls, then JobComplete) and
        ``GET /jobs/query/{id}/results?maxRecords=N&locator=L`` (CSV, Sforce-Locator, "null" at the end)."""
        job_id, _, tail = path.removeprefix(f"/services/data/{self.api_version}/jobs/query/").partition("/")
        job = self.jobs.get(job_id)
        if job is None:
            return 404, [{"message": "job not found", "errorCode": "NOT_FOUND"}], {}
        if tail == "":
            job["polls"] += 1
            state = "InProgress" if job["polls"] <= self.bulk_polls_in_progress else self.bulk_final_state
            return 200, {"id": job_id, "operation": "query", "state": state}, {}
        if tail != "results" or job["polls"] <= self.bulk_polls_in_progress or self.bulk_final_state != "JobComplete":
            return 400, [{"message": "job not complete", "errorCode": "INVALIDJOB"}], {}
        size = min(int(query["maxRecords"][0]), self.page_cap)
        offset = int(query.get("locator", ["0"])[0])
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(job["fields"])
        rows = self.people[offset : offset + size]
        for person in rows:
            record = self.shape(person, job["fields"])
            cells = []
            for name in job["fields"]:
                head, _, rest = name.partition(".")
                value = (record.get(head) or {}).get(rest) if rest else record.get(name)
                cells.append("" if value is None else str(value).lower() if isinstance(value, bool) else str(value))
            writer.writerow(cells)
        locator = str(offset + size) if offset + size < len(self.people) else "null"
        headers = {"Sforce-Locator": locator, "Sforce-NumberOfRecords": str(len(rows))}
        return 200, out.getvalue().encode(), headers

    def shape(self, person: dict[str, Any], fields: list[str]) -> dict[str, Any]:
        record: dict[str, Any] = {"attributes": {"type": "Contact", "url": f"/sobjects/Contact/{person['Id']}"}}
        for name in fields:
            head, _, rest = name.partition(".")
            if rest:
                parent = person.get(head)
                record[head] = None if parent is None else {"attributes": {"type": "Contact"}, rest: parent.get(rest)}
            else:
                record[name] = person.get(name)
        return record


def _handler(vendor: Vendor) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
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
            with vendor.lock:
                vendor.seen.append(seen)
            return seen

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length).decode()
            if self.path.endswith("/jobs/query") and isinstance(vendor, SalesforceVendor):
                return self._bulk_create(raw)
            form = parse_qs(raw)
            seen = self._seen(form)
            path = seen.path
            with vendor.lock:
                fault = vendor.fault_for(self.path)
            if fault is not None:
                seen.status = fault.status
                return self._reply(fault.status, {"error": "temporarily_unavailable"}, fault.headers)
            if not path.endswith("/token") or self.headers.get("Content-Type") != "application/x-www-form-urlencoded":
                seen.status = 400
                return self._reply(400, {"error": "invalid_request"})
            assert isinstance(vendor, GraphVendor | SalesforceVendor)
            with vendor.lock:
                status, body = vendor.token(form)
            seen.status = status
            self._reply(status, body)

        def _bulk_create(self, raw: str) -> None:
            assert isinstance(vendor, SalesforceVendor)
            seen = self._seen({})
            auth = self.headers.get("Authorization", "").removeprefix("Bearer ")
            with vendor.lock:
                if auth not in vendor.valid_tokens:
                    status, body = 401, vendor.unauthorized()
                elif self.headers.get("Content-Type") != "application/json":
                    status, body = 415, [{"message": "Content-Type", "errorCode": "UNSUPPORTED_MEDIA_TYPE"}]
                else:
                    status, body = vendor.bulk_create(json.loads(raw))
            seen.status = status
            self._reply(status, body)

        def do_GET(self) -> None:
            seen = self._seen({})
            auth = self.headers.get("Authorization", "")
            with vendor.lock:
                valid = auth.startswith("Bearer ") and auth.removeprefix("Bearer ") in vendor.valid_tokens
                # A planned fault or cut is spent on a request that gets past the token check only.
                fault = vendor.fault_for(self.path) if valid else None
                cut = next((part for part, times in vendor.cuts.items() if times > 0 and part in self.path), None)
                if cut is not None and valid and fault is None:
                    vendor.cuts[cut] -= 1
                else:
                    cut = None
            assert isinstance(vendor, GraphVendor | SalesforceVendor)
            if not valid:
                seen.status = 401
                headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
                return self._reply(401, vendor.unauthorized(), headers)
            if fault is not None:
                seen.status = fault.status
                error: Any = (
                    {"error": {"code": vendor.error_code or "TooManyRequests", "message": "throttled"}}
                    if isinstance(vendor, GraphVendor)
                    else [{"message": "server error", "errorCode": vendor.error_code or "SERVER_UNAVAILABLE"}]
                )
                return self._reply(fault.status, error, fault.headers)
            body: Any
            extra: dict[str, str] = {}
            with vendor.lock:
                if isinstance(vendor, GraphVendor):
                    status, body = vendor.api(seen.path, seen.query)
                elif "/jobs/query/" in seen.path:
                    status, body, extra = vendor.bulk_get(seen.path, seen.query)
                elif (counted := vendor.count(seen.query)) is not None:
                    status, body = counted
                else:
                    options = self.headers.get("Sforce-Query-Options", "batchSize=2000")
                    batch = re.fullmatch(r"batchSize=(\d+)", options)
                    if batch is None or not 200 <= int(batch.group(1)) <= 2000:
                        status, body = 400, [{"message": "batchSize", "errorCode": "INVALID_QUERY_OPTIONS"}]
                    else:
                        status, body = vendor.api(seen.path, seen.query, int(batch.group(1)))
                if cut is None and status == 200:
                    vendor.page_served()
            seen.status = status
            self._reply(status, body, extra, cut=cut is not None and status == 200)

    return Handler


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
