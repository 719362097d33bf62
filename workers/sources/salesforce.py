"""Salesforce Contacts or Users: SOQL built from the mapping, through ``/services/data/vNN.N/query``,
page after page by ``nextRecordsUrl`` until ``done``.

Past ``bulk_threshold`` records (a ``COUNT()`` query says), a Bulk API 2.0 query job instead
(salesforce_bulk.py). Mapped fields are Salesforce field names, relationship fields dotted (``ReportsTo.Email`` on a
Contact, ``Manager.Email`` on a User); a null relationship comes back as null and its cell is empty.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from schemas.api import ApiConfig
from workers.http import ApiClient, FetchError
from workers.sources import salesforce_bulk
from workers.sources.records import Page

_FIELD = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,79}(\.[A-Za-z][A-Za-z0-9_]{0,79}){0,4}$")


def soql(fields: tuple[str, ...], api: ApiConfig, name: str) -> str:
    for field in fields:
        if not _FIELD.match(field):
            raise FetchError(
                f"{name}: the mapped field {field!r} is not a Salesforce field name: map API names such as "
                "'Email' or 'ReportsTo.Email'"
            )
    names = dict.fromkeys(["Id", *(f for f in fields if f.lower() != "id")])
    # SOQL, not SQL: field names checked above, the object a Literal of the config.
    return f"SELECT {', '.join(names)} FROM {api.object}"  # noqa: S608


def count(client: ApiClient) -> int:
    body = client.get_json(
        f"/services/data/{client.api.api_version}/query",
        {"q": f"SELECT COUNT() FROM {client.api.object}"},  # noqa: S608 -- SOQL, the object a Literal
    )
    total = body.get("totalSize") if isinstance(body, dict) else None
    if not isinstance(total, int):
        raise FetchError(f"{client.name}: the COUNT() query answered no totalSize; nothing was imported")
    return total


def pages(client: ApiClient, fields: tuple[str, ...]) -> Iterator[Page]:
    api = client.api
    query = soql(fields, api, client.name)
    if api.bulk_threshold is not None and count(client) > api.bulk_threshold:
        yield from salesforce_bulk.pages(client, query)
        return
    path = f"/services/data/{api.api_version}/query"
    # The header is sent again with every page: it is a request option, not part of the locator.
    headers = {"Sforce-Query-Options": f"batchSize={min(max(api.page_size, 200), 2000)}"}
    url: str | None = path
    params: dict[str, str] | None = {"q": query}
    number = 0
    while url is not None:
        body = client.get_json(url, params, headers)
        number += 1
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list):
            raise FetchError(
                f"{client.name}: page {number} of {path} has no 'records' list; the fetch was cut off and nothing "
                "was imported: check base_url points at the org"
            )
        link = body.get("nextRecordsUrl")
        done = body.get("done") is not False
        if not done and not (isinstance(link, str) and link):
            raise FetchError(
                f"{client.name}: page {number} of {path} says more records follow but gives no nextRecordsUrl; "
                "nothing was imported"
            )
        url, params = (None, None) if done else (link, None)
        yield Page(records, more=url is not None)
