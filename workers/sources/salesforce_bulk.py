"""Salesforce Bulk API 2.0 query jobs, for sets past ``bulk_threshold``: create the job, wait for
``JobComplete``, then read its CSV results page after page while ``Sforce-Locator`` is not the
string ``"null"``.

A page whose rows do not add up to its ``Sforce-NumberOfRecords`` header was cut off and is asked
again; a job that fails or is aborted, or outlasts ``bulk_timeout_s``, fails the fetch.
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from workers.http import ApiClient, FetchError
from workers.http.retry import Retry
from workers.sources.records import STATE_FIELDS, Page

#: Records asked for per results page (the server may send fewer).
RESULTS_PAGE = 50_000
_JOB_ID = re.compile(r"^[A-Za-z0-9]{15,18}$")
_MAX_POLL_S = 30.0


def _value(column: str, text: str) -> Any:
    """Bulk CSV has no nulls or booleans: an empty cell is a null, and a state field's text becomes
    the boolean the REST query would have given."""
    if text == "":
        return None
    if column.rsplit(".", 1)[-1] in STATE_FIELDS:
        return text == "true"
    return text


def _csv_page(response: httpx.Response) -> tuple[list[dict[str, Any]], str | None]:
    records: list[dict[str, Any]] = []
    try:
        for row in csv.DictReader(io.StringIO(response.text)):
            if None in row or None in row.values():  # more or fewer cells than the header
                raise Retry("a results page with a row that does not match its header (cut off)")
            records.append({k: _value(k, v) for k, v in row.items()})
    except csv.Error:
        raise Retry("a results page that did not parse as CSV") from None
    expected = response.headers.get("Sforce-NumberOfRecords")
    if expected is not None and expected.isdigit() and int(expected) != len(records):
        raise Retry("a results page shorter than its Sforce-NumberOfRecords (cut off)")
    locator = response.headers.get("Sforce-Locator")
    return records, None if locator in (None, "", "null") else locator


def _wait_done(client: ApiClient, url: str, sleep: Callable[[float], None]) -> None:
    api = client.api
    deadline = time.monotonic() + api.bulk_timeout_s
    interval = api.bulk_poll_s
    while True:
        job = client.get_json(url)
        state = job.get("state") if isinstance(job, dict) else None
        if state == "JobComplete":
            return
        if state in ("Failed", "Aborted"):
            # The job's errorMessage can quote the query's input: the state and the id are enough.
            raise FetchError(
                f"{client.name}: the Bulk API query job {url.rsplit('/', 1)[-1]} ended {state}; nothing was imported: "
                "check the mapped fields in Salesforce's Bulk Data Load Jobs page"
            )
        if state not in ("UploadComplete", "InProgress"):
            raise FetchError(f"{client.name}: the Bulk API query job answered an unknown state; nothing was imported")
        if time.monotonic() + interval > deadline:
            raise FetchError(
                f"{client.name}: the Bulk API query job did not complete within bulk_timeout_s "
                f"({api.bulk_timeout_s:g} s); nothing was imported: raise bulk_timeout_s or run it again later"
            )
        sleep(interval)
        interval = min(interval * 2, _MAX_POLL_S)


def pages(client: ApiClient, query: str, sleep: Callable[[float], None] = time.sleep) -> Iterator[Page]:
    jobs = f"/services/data/{client.api.api_version}/jobs/query"
    job = client.post_json(jobs, {"operation": "query", "query": query})
    job_id = job.get("id") if isinstance(job, dict) else None
    if not isinstance(job_id, str) or not _JOB_ID.match(job_id):
        raise FetchError(f"{client.name}: creating the Bulk API query job answered no job id; nothing was imported")
    _wait_done(client, f"{jobs}/{job_id}", sleep)
    locator: str | None = None
    while True:
        params = {"maxRecords": str(RESULTS_PAGE), **({"locator": locator} if locator else {})}
        # Results are read with the job's API version (another answers 409).
        records, locator = client.call(
            "GET", f"{jobs}/{job_id}/results", _csv_page, params=params, headers={"Accept": "text/csv"}
        )
        yield Page(records, more=locator is not None)
        if locator is None:
            return
