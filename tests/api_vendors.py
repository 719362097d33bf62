"""The two vendors the servers of tests/apiservers.py speak for: Microsoft Graph and Salesforce,
from the shapes in their public docs (../shared/reference/wave3-anchors.md §1 and §2):

- Graph: https://learn.microsoft.com/graph/auth-v2-service, /graph/api/user-list, /graph/paging;
- Salesforce: the client credentials and JWT bearer flows, api_rest resources_query.htm and
  resources_query_more_results.htm, api_asynch query_create_job.htm and query_get_job_results.htm.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from typing import Any

from tests.apiservers import CLIENT_ID, CLIENT_SECRET, Vendor

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
TENANT = "contoso.onmicrosoft.com"


def select(record: dict[str, Any], fields: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k in fields}


def selected(fields: list[str], manager: list[str] | None) -> tuple[frozenset[str], frozenset[str] | None]:
    """A request's $select (with the id Graph always sends) and $expand=manager($select=...), as
    sets made once per page: a bench page costs the server 100 records, not 100 list scans each."""
    return frozenset([*fields, "id"]), None if manager is None else frozenset(manager)


class GraphVendor(Vendor):
    """``POST /{tenant}/oauth2/v2.0/token``, ``GET /v1.0/users`` ($select, $expand=manager, $top,
    @odata.nextLink with an opaque $skiptoken) and ``GET /v1.0/users/delta`` (rounds ending with an
    @odata.deltaLink whose $deltatoken names what the round's client has seen; removed people as
    ``@removed``; no $top, as Graph refuses it there)."""

    #: What each deltaLink handed out had seen: person id -> the person as they were.
    snapshots: list[dict[str, str]] | None = None

    def delta(self, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        snapshots = self.snapshots if self.snapshots is not None else []
        self.snapshots = snapshots
        if "$skiptoken" in query or "$deltatoken" in query:
            if len(query) != 1:  # a link is followed whole, never added to
                return 400, {"error": {"code": "BadRequest", "message": "unexpected parameters"}}
            if "$skiptoken" in query:
                state = json.loads(bytes.fromhex(query["$skiptoken"][0]))
            else:
                state = {**json.loads(bytes.fromhex(query["$deltatoken"][0])), "offset": 0}
        else:
            if "$top" in query:
                return 400, {"error": {"code": "Request_UnsupportedQuery", "message": "$top is not supported"}}
            fields = query["$select"][0].split(",") if "$select" in query else ["id", "mail", "displayName"]
            m = re.fullmatch(r"manager\(\$select=([A-Za-z,]+)\)", query.get("$expand", ["manager($select=id)"])[0])
            if m is None:
                return 400, {"error": {"code": "BadRequest", "message": "bad $expand"}}
            manager = m.group(1).split(",") if "$expand" in query else None
            state = {"offset": 0, "fields": fields, "manager": manager, "since": None}
        now = {p["id"]: json.dumps(p, sort_keys=True) for p in self.people}
        before = snapshots[state["since"]] if state["since"] is not None else {}
        items: list[dict[str, Any]] = [p for p in self.people if before.get(p["id"]) != now[p["id"]]]
        items += [{"id": i, "@removed": {"reason": "deleted"}} for i in before if i not in now]
        offset = state["offset"]
        size = self.page_cap
        by_id = {p["id"]: p for p in self.people}
        keep, boss_keep = selected(state["fields"], state["manager"])
        value = [
            item if "@removed" in item else self.record(item, by_id, keep, boss_keep)
            for item in items[offset : offset + size]
        ]
        body: dict[str, Any] = {"@odata.context": f"{self.base_url}/v1.0/$metadata#users", "value": value}
        if offset + size < len(items):
            token = json.dumps({**state, "offset": offset + size}).encode().hex()
            body["@odata.nextLink"] = f"{self.base_url}/v1.0/users/delta?$skiptoken={token}"
        else:
            snapshots.append(now)
            token = json.dumps({"fields": state["fields"], "manager": state["manager"], "since": len(snapshots) - 1})
            body["@odata.deltaLink"] = f"{self.base_url}/v1.0/users/delta?$deltatoken={token.encode().hex()}"
        return 200, body

    def record(
        self, person: dict[str, Any], by_id: dict[str, Any], keep: frozenset[str], manager: frozenset[str] | None
    ) -> dict[str, Any]:
        record = select(person, keep)
        boss = by_id.get(person.get("_manager", ""))
        if manager is not None and boss is not None:
            record["manager"] = {"@odata.type": "#microsoft.graph.user", **select(boss, manager)}
        return record

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

    def fault_body(self) -> dict[str, Any]:
        return {"error": {"code": self.error_code or "TooManyRequests", "message": "throttled"}}

    def get(self, path: str, query: dict[str, list[str]], headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        status, body = self.api(path, query)
        return status, body, {}

    def api(self, path: str, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        if path == "/v1.0/users/delta":
            return self.delta(query)
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
        keep, boss_keep = selected(state["fields"], state["manager"])
        value = [self.record(person, by_id, keep, boss_keep) for person in self.people[offset : offset + size]]
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

    def fault_body(self) -> list[dict[str, str]]:
        return [{"message": "server error", "errorCode": self.error_code or "SERVER_UNAVAILABLE"}]

    def get(self, path: str, query: dict[str, list[str]], headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        if "/jobs/query/" in path:
            return self.bulk_get(path, query)
        if (counted := self.count(query)) is not None:
            return *counted, {}
        # The batch size is optional; when given, it must be one Salesforce accepts.
        batch = re.fullmatch(r"batchSize=(\d+)", headers.get("Sforce-Query-Options", "batchSize=2000"))
        if batch is None or not 200 <= int(batch.group(1)) <= 2000:
            return 400, [{"message": "batchSize", "errorCode": "INVALID_QUERY_OPTIONS"}], {}
        return *self.api(path, query, int(batch.group(1))), {}

    def takes_post(self, path: str) -> bool:
        return path.endswith("/jobs/query")

    def post(self, path: str, raw: str, headers: dict[str, str]) -> tuple[int, Any]:
        if headers.get("Content-Type") != "application/json":
            return 415, [{"message": "Content-Type", "errorCode": "UNSUPPORTED_MEDIA_TYPE"}]
        return self.bulk_create(json.loads(raw))

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
