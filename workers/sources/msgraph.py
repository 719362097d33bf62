"""Microsoft Graph users (Entra ID): ``GET /v1.0/users`` with ``$select`` of the mapped fields and
the manager by ``$expand``, page after page by ``@odata.nextLink``.

Graph returns most user properties only when they are selected (accountEnabled, employeeId,
employeeType, department…), so ``$select`` names every mapped field's first part. A mapped
``manager.<field>`` becomes ``$expand=manager($select=<fields>)``; a user without a manager has no
``manager`` at all, and the cell is empty. Each nextLink is followed whole, as Graph requires.
"""

from __future__ import annotations

from collections.abc import Iterator

from schemas.api import ApiConfig
from workers.http import ApiClient, FetchError
from workers.sources.records import Page

USERS = "/v1.0/users"
#: Graph refuses a $top over 999 on /users.
MAX_TOP = 999


def query(fields: tuple[str, ...], api: ApiConfig) -> dict[str, str]:
    select: dict[str, None] = {"id": None}
    manager: dict[str, None] = {}
    for field in fields:
        head, _, rest = field.partition(".")
        if head.lower() == "manager" and rest:
            manager[rest.split(".")[0]] = None
        else:
            select[head] = None
    params = {"$select": ",".join(select), "$top": str(min(api.page_size, MAX_TOP))}
    if manager:
        params["$expand"] = f"manager($select={','.join(manager)})"
    return params


def pages(client: ApiClient, fields: tuple[str, ...]) -> Iterator[Page]:
    url: str | None = USERS
    params: dict[str, str] | None = query(fields, client.api)
    number = 0
    while url is not None:
        body = client.get_json(url, params)
        number += 1
        records = body.get("value") if isinstance(body, dict) else None
        if not isinstance(records, list):
            raise FetchError(
                f"{client.name}: page {number} of {USERS} has no 'value' list; the fetch was cut off and nothing "
                "was imported: check base_url points at Microsoft Graph"
            )
        link = body.get("@odata.nextLink")
        url, params = (link, None) if isinstance(link, str) and link else (None, None)
        yield Page(records, more=url is not None)
